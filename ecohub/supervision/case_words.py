"""Words of the supervision pages added with the case deadlines and the field form's
checks (Chinese first, English second), registered by ``pages.py``; the area's older
words live in :mod:`ecohub.web.i18n`."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "svc_credit": ("信用评价", "Credit rating"),
    "svc_more": ("另有 %d 件", "%d more"),
    "svc_field_inspected_at": ("检查时间", "Time of inspection"),
    "svc_field_longitude": ("经度", "Longitude"),
    "svc_field_latitude": ("纬度", "Latitude"),
    "svc_field_accuracy_m": ("定位精度（米）", "Position accuracy (m)"),
    "svc_not_number": ("{field}：“{value}”不是数字", "{field}: “{value}” is not a number"),
    "svc_not_time": (
        "{field}：“{value}”不是时间（例如 2025-10-09T10:30:00+08:00）",
        "{field}: “{value}” is not a time (e.g. 2025-10-09T10:30:00+08:00)",
    ),
    "svc_out_of_range": (
        "{field}：{value} 不在 {low} 至 {high} 之间",
        "{field}: {value} is outside {low} to {high}",
    ),
    "svc_no_inspectors": ("请选择执法人员（至少一名）", "Choose the inspectors (at least one)"),
    "svc_not_self": (
        "执法人员 {code} 只能提交列有本人的记录",
        "Inspector {code} files records naming themselves",
    ),
    "svc_file_refused": (
        "附件未通过检查，记录未保存：{detail}",
        "An attachment was refused; nothing was stored: {detail}",
    ),
    "svc_not_stored": ("记录未保存：{detail}", "The record was not stored: {detail}"),
    "svc_files_not_stored": (
        "记录已保存（#{id}），附件未保存：{detail}。可再次提交本表，记录不会重复保存。",
        "The record is stored (#{id}) but not its attachments: {detail}. Submitting this "
        "form again stores the record only once.",
    ),
}

TERMS: dict[str, dict[str, tuple[str, str]]] = {
    # The deadlines of data/case_deadlines.csv by rule key (Chinese: the table's name_zh).
    "case_deadline": {
        "decide_filing": ("初步审查并决定是否立案", "Decide whether to file"),
        "decide_case": ("自立案之日起作出处理决定", "Decide the case"),
        "request_hearing": ("当事人要求听证", "Party's window to ask for a hearing"),
        "serve_decision": ("当事人不在场时送达行政处罚决定书", "Serve the decision"),
        "pay_fine": ("自收到行政处罚决定书之日起缴纳罚款", "Pay the fine"),
    },
}
