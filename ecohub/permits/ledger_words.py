"""The ledger's words and terms in Chinese and English (环境管理台账, HJ 944-2018), registered
with the portal's i18n when the ledger pages are imported."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "lg_title": ("环境管理台账", "Environmental management ledger"),
    "lg_help": (
        "按 HJ 944-2018 记录：正常工况每日一次，非正常工况每个工况期一次；更正以新记录提交。",
        "Kept after HJ 944-2018: normal operation once a day, one record per abnormal "
        "period; a correction is a new entry.",
    ),
    "lg_facilities": ("设施", "Facilities"),
    "lg_facility": ("设施", "Facility"),
    "lg_facility_code": ("设施编号", "Facility code"),
    "lg_facility_name": ("设施名称", "Facility name"),
    "lg_facility_kind": ("设施类别", "Facility kind"),
    "lg_add_facility": ("登记设施", "Register facility"),
    "lg_entries": ("台账记录", "Entries"),
    "lg_new_entry": ("新增记录", "New entry"),
    "lg_kind": ("记录类别", "Record kind"),
    "lg_condition": ("工况", "Condition"),
    "lg_at": ("记录时间（北京时间）", "Time (Beijing time)"),
    "lg_operator": ("记录人", "Recorded by"),
    "lg_values": ("记录内容", "Values"),
    "lg_note": ("备注", "Note"),
    "lg_corrects": ("更正记录编号", "Corrects entry no."),
    "lg_corrected_by": ("已被记录 %s 更正", "Corrected by entry %s"),
    "lg_save": ("保存记录", "Save entry"),
    "lg_none": ("暂无记录", "No entries"),
    "lg_yes": ("是", "Yes"),
    "lg_no": ("否", "No"),
    "lg_open": ("台账", "Ledger"),
    "lg_completeness": ("环境管理台账执行情况", "Keeping of the environmental management ledger"),
    "lg_expected": ("应记", "Expected"),
    "lg_held": ("已记", "Held"),
    "lg_missing": ("缺记", "Missing"),
    "lg_events": ("非正常工况记录", "Abnormal periods recorded"),
    "lg_frequency": ("记录频次", "Frequency"),
    "lg_error": ("未能保存：%s", "Not saved: %s"),
    "lg_field_running": ("是否正常运行", "Running normally"),
    "lg_field_load_percent": ("生产负荷（%）", "Load (%)"),
    "lg_field_output": ("产品产量", "Output"),
    "lg_field_output_unit": ("产量单位", "Output unit"),
    "lg_field_materials": ("原辅料及燃料", "Materials and fuel"),
    "lg_field_reagent": ("药剂名称", "Reagent"),
    "lg_field_reagent_kg": ("药剂添加量（kg）", "Reagent added (kg)"),
    "lg_field_ended_at": ("结束时间（北京时间）", "Ended (Beijing time)"),
    "lg_field_concentration": ("排放浓度", "Concentration"),
    "lg_field_reason": ("原因", "Cause"),
    "lg_field_measures": ("应对措施", "Measures taken"),
    "lg_field_reported": ("是否报告", "Reported"),
    "lg_field_outlet_code": ("排放口编号", "Outlet code"),
    "lg_field_parameter_code": ("污染物代码", "Parameter code"),
    "lg_field_value": ("监测结果", "Result"),
    "lg_field_unit": ("单位", "Unit"),
    "lg_field_method": ("监测方法", "Method"),
    "lg_field_description": ("内容", "Description"),
}

TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "ledger_kind": {
        "basic": ("基本信息", "Basic information"),
        "production": ("生产设施运行管理信息", "Production facilities"),
        "treatment": ("污染防治设施运行管理信息", "Pollution control facilities"),
        "monitoring": ("监测记录信息", "Monitoring records"),
        "other": ("其他环境管理信息", "Other environmental management information"),
    },
    "ledger_condition": {
        "normal": ("正常", "Normal"),
        "abnormal": ("非正常", "Abnormal"),
    },
    "facility_kind": {
        "production": ("生产设施", "Production facility"),
        "treatment": ("污染防治设施", "Pollution control facility"),
    },
    "ledger_frequency": {
        "1次/日": ("1次/日", "Daily"),
        "1次/年": ("1次/年", "Yearly"),
        "per_event": ("1次/工况期", "Once per abnormal period"),
        "per_plan": ("按自行监测方案", "As the self-monitoring plan"),
        "as_required": ("按规范要求", "As required"),
    },
}
