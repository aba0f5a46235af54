"""The portal's words in Chinese (the default) and English.

``text(lang)`` gives a page the mapping it renders with; a missing English word falls
back to Chinese, so a page never shows a bare key.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {
    "site_name": ("EcoHub 生态环境数据平台", "EcoHub eco-environment data platform"),
    "sv_nav": ("监管执法", "Supervision"),
    "sv_public_nav": ("执法公开", "Enforcement disclosure"),
    "sv_dashboard": ("精准监管：风险排序与案件办理", "Supervision: risk ranking and cases"),
    "sv_period": ("统计时段（北京时间）", "Period (Beijing time)"),
    "sv_risk_map": ("企业风险分布", "Enterprises by risk score"),
    "sv_risk_ranking": ("企业风险排序", "Enterprises ranked by risk"),
    "sv_score": ("风险分", "Risk score"),
    "sv_enterprise": ("企业", "Enterprise"),
    "sv_exceedance_hours": ("超标时长（小时）", "Exceedance (hours)"),
    "sv_anomaly_hours": ("数据异常（小时）", "Data anomalies (hours)"),
    "sv_offline_hours": ("离线（小时）", "Offline (hours)"),
    "sv_transmission": ("数据传输率", "Transmission rate"),
    "sv_penalties": ("处罚次数", "Penalties"),
    "sv_cases_by_step": ("在办案件（按环节）", "Open cases by step"),
    "sv_overdue": ("超期", "Overdue"),
    "sv_overdue_count": ("超期案件 %d 件", "%d overdue cases"),
    "sv_no_cases": ("无在办案件", "No open cases"),
    "sv_penalty_decisions": ("行政处罚决定公开", "Published penalty decisions"),
    "sv_credit_grades": ("企业环境信用评价结果", "Enterprise environmental credit grades"),
    "sv_draws": ("双随机抽查结果公开", "Double-random inspection draws"),
    "sv_violation": ("违法事实", "Violation"),
    "sv_legal_basis": ("处罚依据", "Legal basis"),
    "sv_penalty_yuan": ("罚款（元）", "Fine (yuan)"),
    "sv_decided_on": ("决定日期", "Decided on"),
    "sv_year": ("年度", "Year"),
    "sv_grade": ("信用等级", "Credit grade"),
    "sv_blacklist": ("黑名单", "Blacklist"),
    "sv_seed": ("随机种子", "Seed"),
    "sv_digest": ("输入摘要（SHA-256）", "Inputs digest (SHA-256)"),
    "sv_draw_title": ("抽查任务", "Draw"),
    "sv_drawn_at": ("抽取时间", "Drawn at"),
    "sv_verify_hint": (
        "任何人都可用公开的随机种子和输入重新抽取并核对结果（ecohub supervision verify）。",
        "Anyone can re-run a draw from its published seed and inputs and compare "
        "(ecohub supervision verify).",
    ),
    "sv_none_published": ("暂无公开信息", "Nothing published yet"),
    "map": ("一张图", "One map"),
    "ranking": ("城市排名", "City ranking"),
    "enterprises": ("企业信息公开", "Enterprise disclosure"),
    "alarms": ("报警处置", "Alarms"),
    "quarantine": ("隔离数据审核", "Quarantine review"),
    "catalogue": ("数据资源目录", "Data catalogue"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误。", "Wrong user name or password."),
    "login_throttled": (
        "登录失败次数过多，请稍后再试。",
        "Too many failed sign-ins; try again later.",
    ),
    "signed_in_as": ("当前用户", "Signed in as"),
    "layers": ("图层", "Layers"),
    "layer_air": ("空气质量站点（AQI）", "Air stations (AQI)"),
    "layer_water": ("地表水断面（水质类别）", "Surface water (class)"),
    "layer_sources": ("重点污染源（报警状态）", "Pollution sources (alarm state)"),
    "layer_cities": ("地市边界", "City boundaries"),
    "no_data": ("暂无数据", "No data"),
    "details": ("详情", "Details"),
    "aqi": ("空气质量指数", "AQI"),
    "level": ("级别", "Level"),
    "category": ("类别", "Category"),
    "primary": ("首要污染物", "Primary pollutant"),
    "updated": ("更新时间", "Updated"),
    "rank": ("排名", "Rank"),
    "city": ("城市", "City"),
    "stations": ("站点数", "Stations"),
    "hour": ("小时", "Hour"),
    "day": ("日", "Day"),
    "period": ("时段", "Period"),
    "station": ("监测站点", "Station"),
    "last_48h": ("近48小时AQI", "AQI, last 48 hours"),
    "last_30d": ("近30天日AQI", "Daily AQI, last 30 days"),
    "pollutants_48h": ("近48小时污染物浓度", "Pollutants, last 48 hours"),
    "water_class": ("水质类别", "Water class"),
    "water_status": ("水质状况", "Water status"),
    "alarm_state": ("报警状态", "Alarm state"),
    "state_alarm": ("有未关闭报警", "Open alarm"),
    "state_normal": ("正常", "Normal"),
    "industry": ("行业", "Industry"),
    "region": ("行政区划", "Region"),
    "uscc": ("统一社会信用代码", "Unified social credit code"),
    "outlets": ("排放口", "Outlets"),
    "points": ("监测点位", "Monitoring points"),
    "permits": ("排污许可证", "Discharge permits"),
    "permit_no": ("许可证编号", "Permit number"),
    "valid": ("有效期", "Valid"),
    "limits": ("许可排放限值", "Permitted limits"),
    "parameter": ("监测因子", "Parameter"),
    "limit": ("浓度限值", "Concentration limit"),
    "annual_mass": ("年许可排放量 (kg)", "Annual permitted mass (kg)"),
    "chart_point": ("监测数据", "Monitoring data"),
    "emissions": ("年度排放量", "Emitted masses"),
    "emitted": ("已排放 (kg)", "Emitted (kg)"),
    "share_of_limit": ("占许可量", "Share of permitted"),
    "no_emissions": ("本年尚无排放量数据。", "No emitted masses reported this year."),
    "kind": ("类型", "Kind"),
    "status": ("状态", "Status"),
    "summary": ("摘要", "Summary"),
    "started": ("开始时间", "Started"),
    "acknowledge": ("确认", "Acknowledge"),
    "close": ("关闭", "Close"),
    "close_reason": ("关闭原因", "Reason for closing"),
    "note": ("备注", "Note"),
    "no_alarms": ("没有未关闭的报警。", "No unclosed alarms."),
    "received": ("接收时间", "Received"),
    "source": ("来源", "Source"),
    "reason": ("原因", "Reason"),
    "raw": ("原始报文", "Raw data"),
    "review": ("审核", "Review"),
    "reviewed": ("已审核", "Reviewed"),
    "outcome": ("结论", "Outcome"),
    "dismissed": ("无需处理", "Dismissed"),
    "device_fault": ("设备故障", "Device fault"),
    "forwarded": ("移交处理", "Forwarded"),
    "unreviewed_only": ("仅未审核", "Unreviewed only"),
    "show_all": ("全部", "All"),
    "nothing_quarantined": ("没有隔离数据。", "Nothing quarantined."),
    "forbidden": ("无权访问此页面。", "You may not open this page."),
    "not_found": ("未找到。", "Not found."),
    "legend_aqi": ("AQI 图例（HJ 633-2012）", "AQI legend (HJ 633-2012)"),
    "offline_note": (
        "地图底图为本平台自带的行政区划边界，无需联网。",
        "The base map is the boundary GeoJSON shipped with the platform; no internet needed.",
    ),
    "sharing": ("共享类型", "Sharing"),
    "owner": ("提供单位", "Owner"),
    "frequency": ("更新频率", "Update frequency"),
    "unconditional": ("无条件共享", "Unconditional"),
    "conditional": ("有条件共享", "Conditional"),
    "not_shared": ("不予共享", "Not shared"),
    "dataset": ("数据资源", "Dataset"),
    "download": ("下载", "Download"),
    "all_kinds": ("全部类型", "All kinds"),
    "repeated": ("共收到 %d 次", "received %d times"),
    "last_time": ("最近一次", "last"),
    "beijing_time": ("北京时间", "Beijing time"),
    "enterprise_name": ("企业名称", "Enterprise"),
    "all_regions": ("全部地区", "All regions"),
    "severity": ("级别", "Severity"),
    "enterprise_uscc": ("企业信用代码", "Enterprise credit code"),
    "filter": ("筛选", "Filter"),
    "alarms_found": ("共 %d 条报警", "%d alarms"),
    "acknowledge_selected": ("确认所选报警", "Acknowledge the selected alarms"),
    "previous_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    "page_of": ("第 %d / %d 页", "Page %d of %d"),
    "status_unclosed": ("未关闭", "Not closed"),
    "status_open": ("未处理", "Open"),
    "status_acknowledged": ("已确认", "Acknowledged"),
    "status_closed": ("已关闭", "Closed"),
    "status_all": ("全部", "All"),
    # Annual assessment (ecohub/assessment): HJ 663-2013, GB 3095-2012.
    "as_title": ("年度空气质量评价", "Annual air quality assessment"),
    "as_card": ("年度空气质量报告卡", "annual air quality report card"),
    "as_nav": ("年度评价", "Annual assessment"),
    "as_year": ("年份", "Year"),
    "as_show": ("查看", "Show"),
    "as_computed_at": ("计算时间", "Computed"),
    "as_national": ("全国（参评城市）", "National figures (assessed cities)"),
    "as_cities_assessed": ("六项数据均有效的城市", "Cities with valid data for all six"),
    "as_share_grade_2": ("六项均达二级标准的城市比例", "Share meeting grade II in all six"),
    "as_city_mean": ("城市年评价值的平均", "Mean of the cities' annual values"),
    "as_cities_counted": ("参与平均的城市数", "Cities averaged"),
    "as_figures_note": (
        "SO2、NO2、PM10、PM2.5 为年平均浓度；CO 为日均值第95百分位数；"
        "O3 为日最大8小时平均第90百分位数（HJ 663-2013）。",
        "SO2, NO2, PM10 and PM2.5: annual means; CO: 95th percentile of daily means; "
        "O3: 90th percentile of daily maximum 8-hour means (HJ 663-2013).",
    ),
    "as_ranking": ("城市综合指数排名", "Cities ranked by the comprehensive index"),
    "as_ranking_note": (
        "综合指数越小空气质量越好；数据不满足 GB 3095-2012 表4 有效性要求的城市排在有效城市之后。",
        "A lower index is cleaner air; cities whose data fail GB 3095-2012 Table 4 "
        "follow the valid ones.",
    ),
    "as_index": ("综合指数", "Comprehensive index"),
    "as_largest": ("最大单项指数", "Largest single index"),
    "as_pollutant": ("污染物", "Pollutant"),
    "as_unit": ("单位", "Unit"),
    "as_annual_mean": ("年平均浓度", "Annual mean"),
    "as_percentile": ("日评价值百分位数", "Percentile of daily values"),
    "as_o3_8h": ("日最大8小时平均", "daily maximum 8-hour mean"),
    "as_grade_1_limit": ("一级限值（年/日）", "Grade I limit (annual / daily)"),
    "as_grade_2_limit": ("二级限值（年/日）", "Grade II limit (annual / daily)"),
    "as_multiple": ("超标倍数（二级）", "Exceedance multiple (grade II)"),
    "as_grade_1": ("一级达标", "Grade I"),
    "as_grade_2": ("二级达标", "Grade II"),
    "as_meets": ("达标", "meets"),
    "as_exceeds": ("超标", "exceeds"),
    "as_not_assessed": ("不评价", "not assessed"),
    "as_valid_days": ("有效天数", "Valid days"),
    "as_validity": ("数据有效性", "Validity"),
    "as_valid": ("有效", "valid"),
    "as_invalid": ("数据不足", "insufficient data"),
    "as_statistics": ("六项污染物年评价", "The six pollutants' annual figures"),
    "as_limits_note": (
        "限值：GB 3095-2012 表1（μg/m³，CO 为 mg/m³）；"
        "超标倍数 =（C − S）/ S，取年均值与百分位数两项中较大者。",
        "Limits: GB 3095-2012 Table 1 (μg/m³; CO mg/m³); exceedance multiple = (C − S) / S, "
        "the larger of the annual mean's and the percentile's.",
    ),
    "as_good_days": ("优良天数", "Good days"),
    "as_good_ratio": ("优良天数比例", "Good-day ratio"),
    "as_days": ("天", "days"),
    "as_category_days": ("各空气质量类别天数", "Days per AQI category"),
    "as_month_days": ("各月有效天数", "Valid days per month"),
    "as_validity_note": (
        "年评价有效：全年至少324个有效日均值，每月至少27个（2月至少25个）（GB 3095-2012 表4）。",
        "A valid year: at least 324 valid daily values, and 27 in each month (25 in "
        "February) (GB 3095-2012 Table 4).",
    ),
    "as_stations": ("城市站点", "The city's stations"),
    "as_control": ("对照点（不参与城市评价）", "control site (not in the city's figures)"),
    "as_method_note": (
        "城市日均值为非对照点站点有效日均值的算术平均（HJ 663-2013）；"
        "日AQI按 HJ 633-2012 由城市日均值计算；"
        "综合指数为六项污染物单项指数之和（《城市环境空气质量排名技术规定》，2018）。"
        "时间为北京时间。",
        "A city's daily value is the mean of its non-control stations' valid daily values "
        "(HJ 663-2013); its daily AQI is computed from those (HJ 633-2012); the "
        "comprehensive index is the sum of the six single indexes (city ranking rules, "
        "2018). Times are Beijing time.",
    ),
}


def text(lang: str) -> dict[str, str]:
    """The portal's words in ``lang`` (zh or en)."""
    index = 1 if lang == "en" else 0
    return {key: pair[index] or pair[0] for key, pair in WORDS.items()}


# The values of the platform's enumerations as pages show them: a page never prints a
# raw value such as ``ambient_exceedance`` or ``on change`` (``term``; a test renders the
# pages and fails on any that slips through).
TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "alarm_kind": {
        "source_exceedance": ("排放超标", "Emission above the permit"),
        "mass_overrun": ("排放量超许可", "Emitted mass above the permit"),
        "ambient_exceedance": ("环境质量超标", "Ambient limit exceeded"),
        "aqi": ("空气质量指数超阈值", "AQI above the threshold"),
        "data_anomaly": ("数据异常", "Data anomaly"),
        "offline": ("离线", "Offline"),
        "heavy_pollution": ("重污染天气预警", "Heavy-pollution warning"),
        "password_guessing": ("口令猜测", "Password guessing"),
    },
    "alarm_status": {
        "open": ("未处理", "Open"),
        "acknowledged": ("已确认", "Acknowledged"),
        "closed": ("已关闭", "Closed"),
    },
    "severity": {
        "warning": ("一般", "Warning"),
        "serious": ("严重", "Serious"),
        "yellow": ("黄色预警", "Yellow"),
        "orange": ("橙色预警", "Orange"),
        "red": ("红色预警", "Red"),
    },
    "site_kind": {
        "air": ("环境空气", "Ambient air"),
        "surface_water": ("地表水", "Surface water"),
        "groundwater": ("地下水", "Groundwater"),
        "noise": ("声环境", "Noise"),
        "radiation": ("辐射", "Radiation"),
        "pollution_source": ("污染源", "Pollution source"),
    },
    "site_status": {
        "active": ("运行", "Active"),
        "suspended": ("停运", "Suspended"),
        "decommissioned": ("撤销", "Decommissioned"),
    },
    "outlet_kind": {"gas": ("废气", "Flue gas"), "water": ("废水", "Waste water")},
    "water_body": {
        "river": ("河流", "River"),
        "lake": ("湖泊", "Lake"),
        "reservoir": ("水库", "Reservoir"),
    },
    "region_level": {
        "province": ("省级", "Province"),
        "city": ("地市级", "City"),
        "county": ("县级", "County"),
    },
    "review_outcome": {
        "dismissed": ("无需处理", "Dismissed"),
        "device_fault": ("设备故障", "Device fault"),
        "forwarded": ("移交处理", "Forwarded"),
    },
    "frequency": {
        "real-time": ("实时", "Real time"),
        "hourly": ("每小时", "Hourly"),
        "daily": ("每日", "Daily"),
        "on change": ("变更时", "On change"),
        "yearly": ("每年", "Yearly"),
        "monthly": ("每月", "Monthly"),
    },
    "sharing": {
        "unconditional": ("无条件共享", "Unconditional"),
        "conditional": ("有条件共享", "Conditional"),
        "not_shared": ("不予共享", "Not shared"),
    },
    "period": {"hour": ("小时", "Hour"), "day": ("日", "Day")},
    "case_step": {
        "discovered": ("发现线索", "Discovered"),
        "filed": ("立案", "Filed"),
        "investigated": ("调查终结", "Investigated"),
        "notified": ("告知", "Notified"),
        "decided": ("处罚决定", "Decided"),
        "executed": ("执行", "Executed"),
        "closed": ("结案", "Closed"),
    },
    "credit_grade": {
        "green": ("环保诚信（绿牌）", "Trustworthy (green)"),
        "blue": ("环保良好（蓝牌）", "Good (blue)"),
        "yellow": ("环保警示（黄牌）", "Warning (yellow)"),
        "red": ("环保不良（红牌）", "Poor (red)"),
    },
}


def term(lang: str, category: str, value: object) -> str:
    """An enumeration's value in ``lang``; an unknown value is shown as it is (and the
    page test names it)."""
    pair = TERMS.get(category, {}).get(str(getattr(value, "value", value)))
    if pair is None:
        return str(value)
    return pair[1] if lang == "en" and pair[1] else pair[0]
