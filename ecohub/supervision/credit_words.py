"""The words and terms of the enterprise credit page and the risk explanation page in
Chinese and English, registered with the portal's i18n when
:mod:`ecohub.supervision.credit_pages` is imported."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "cr_title": ("企业环境信用", "Enterprise environmental credit"),
    "cr_years": ("评价年度", "Years rated"),
    "cr_none": ("暂无可查看的信用评价", "No credit rating to show"),
    "cr_status": ("状态", "Status"),
    "cr_grade_now": ("现行等级", "Grade in effect"),
    "cr_score": ("加权得分", "Weighted score"),
    "cr_reason": ("评定理由", "Why this grade"),
    "cr_review_closes": ("异议期截止（北京时间）", "Review window closes (Beijing time)"),
    "cr_objection": ("企业异议", "Enterprise's objection"),
    "cr_decision": ("复核决定", "Agency decision"),
    "cr_indicators": ("评价指标", "Indicators"),
    "cr_indicator": ("指标", "Indicator"),
    "cr_weight": ("权重（%）", "Weight (%)"),
    "cr_result": ("结果（档次或分值）", "Result (band or score)"),
    "cr_points": ("得分", "Score"),
    "cr_given_by": ("来源", "Given by"),
    "cr_measured": ("平台监测数据", "Platform data"),
    "cr_agency": ("执法部门认定", "Agency finding"),
    "cr_outlets": (
        "各排污口达标率（许可限值污染物）",
        "Compliance per outlet (permit-limited pollutants)",
    ),
    "cr_outlet": ("排污口", "Outlet"),
    "cr_valid_hours": ("有效小时", "Valid hours"),
    "cr_exceedance_hours": ("超标小时", "Exceedance hours"),
    "cr_compliance": ("达标率", "Compliance"),
    "cr_worst": ("最差排污口决定档次", "The worst outlet decides the band"),
    "cr_evidence": ("证据", "Evidence"),
    "cr_direct": ("一票否决情形（直接评为环保不良）", "Direct-to-red conditions (一票否决)"),
    "cr_found": ("认定", "Found"),
    "cr_not_found": ("未认定", "Not found"),
    "cr_consequences": ("信用等级的后果", "Consequences of the grade"),
    "cr_repairs": ("信用修复", "Credit repair"),
    "cr_repair_pending": (
        "信用修复公示中：%s 起调整为 %s",
        "Credit repair in public notice: %s from %s",
    ),
    "cr_effective_at": ("生效时间（北京时间）", "In effect from (Beijing time)"),
    "cr_risk_link": ("风险评分说明", "Risk score explained"),
    "cr_credit_link": ("信用评价", "Credit rating"),
    "cr_risk_title": ("企业风险评分说明", "Risk score explained"),
    "cr_risk_formula": (
        "风险分 = 100 × Σ 权重 × min(1, 计入值 ÷ 上限) ÷ Σ 权重；传输率只计低于目标值的差额。",
        "Score = 100 × Σ weight × min(1, counted ÷ cap) ÷ Σ weight; the transmission rate "
        "counts only its shortfall below the target.",
    ),
    "cr_component": ("构成", "Component"),
    "cr_value": ("数值", "Value"),
    "cr_target": ("目标", "Target"),
    "cr_counted": ("计入值", "Counted"),
    "cr_cap": ("上限", "Cap"),
    "cr_scaled": ("归一化", "Scaled"),
    "cr_silent": ("未上传数据的许可限值序列", "Permit-limited series that sent nothing"),
    "cr_sources": ("证据来源", "Evidence sources"),
    "cr_alarms": ("报警", "Alarms"),
    "cr_cases": ("案件", "Cases"),
    "cr_complaint_events": ("信访举报", "Complaint events"),
    "cr_total": ("合计", "Total"),
    "cr_draw_number": ("编号", "No."),
    "cr_draw_voided": ("已作废", "Voided"),
    "cr_void_reason": ("作废理由：%s", "Reason voided: %s"),
}

TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "rating_status": {
        "draft": ("初评（异议期）", "Draft (review window)"),
        "objected": ("企业已提出异议", "Objected"),
        "decided": ("已复核决定", "Decided"),
        "published": ("已公开", "Published"),
    },
    "risk_component": {
        "exceedance_hours": ("超标时长（小时）", "Exceedance (hours)"),
        "max_multiple": ("最大超标倍数", "Largest exceedance multiple"),
        "mass_overruns": ("排放量超许可（次）", "Mass overruns"),
        "anomaly_hours": ("数据异常（小时）", "Data anomalies (hours)"),
        "offline_hours": ("离线（小时）", "Offline (hours)"),
        "transmission_gap": ("数据传输缺口", "Transmission gap"),
        "penalties": ("行政处罚（次）", "Penalties"),
        "overdue_rectifications": ("逾期未整改（件）", "Overdue rectifications"),
        "complaint_events": ("查实的信访举报（件）", "Complaints traced to it"),
    },
}
