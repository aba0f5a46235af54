"""The tax page's words and terms in Chinese and English (registered with the portal's
i18n by :mod:`ecohub.permits.tax_pages`): the data source of each pollutant, the ranking,
the reductions and their reasons, the rate's source and the units of 附表二."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "tx_zone": ("税额档次/地区", "Rate zone"),
    "tx_zone_any": ("（按所在地区）", "(from the division)"),
    "tx_zone_needed": (
        "该省按地区分档确定税额，无法从排污单位所在区划确定档次：请选择档次。",
        "This province sets its rates by zone and the enterprise's division does not say "
        "which: choose the zone.",
    ),
    "tx_sources": ("数据来源（环境保护税法第十条）", "Data source (Tax Law article 10)"),
    "tx_source": ("来源", "Source"),
    "tx_article": ("依据", "Article"),
    "tx_basis": ("浓度取值", "Concentration used"),
    "tx_quantity": ("排放量", "Quantity"),
    "tx_unsourced": (
        "无可用数据来源，未计税（由税务机关核定）",
        "No usable data source: not taxed here (the tax office determines it)",
    ),
    "tx_unsourced_why": (
        "自动监测缺失时段超过25%或无数据，无当月监督性监测结果（或无流量），平台未保存排污系数和物料衡算数据。",
        "Automatic monitoring missing more than 25 % of the hours or absent, no supervisory "
        "result of the month (or no flow), and the platform holds no emission factors or "
        "material balance.",
    ),
    "tx_records": ("监测报告", "Reports"),
    "tx_flow": ("流量（立方米/小时）", "Flow (m³/h)"),
    "tx_hours": ("排放小时", "Operating hours"),
    "tx_exceeded": (
        "当月有排放口浓度超过排放标准，不予减征（财税〔2018〕117号 二）：",
        "A concentration above its standard at an outlet this month: no reduction for the "
        "taxpayer (财税〔2018〕117号 二):",
    ),
    "tx_ranking": ("排序", "Ranking"),
    "tx_rank_of": ("第%s位，共%s项，前%s项征税", "rank %s of %s, the first %s taxed"),
    "tx_not_ranked": ("同组只征一项", "only one of its group is levied"),
    "tx_reduction": ("减征", "Reduction"),
    "tx_rate_source": ("税额依据", "Rate source"),
    "tx_rate_given": ("指定税额", "rate given"),
    "tx_equivalent_value": ("污染当量值", "Equivalent value"),
    "tx_incomplete": (
        "部分污染物无法计税，合计不完整。",
        "Some pollutants could not be taxed: the total is incomplete.",
    ),
    "tx_mean": ("月均浓度", "Month mean"),
    "tx_highest": ("最高小时值", "Highest hour"),
    "tx_o2": ("折算至基准氧含量%s%%", "at the reference O2 of %s %%"),
}

TERMS: dict[str, dict[str, tuple[str, str]]] = {
    "tax_source": {
        "automatic": ("自动监测", "Automatic monitoring"),
        "agency": ("监测机构监测（监督性监测）", "Monitoring agency (supervisory monitoring)"),
        "self": ("自行监测", "Self-monitoring"),
        "factor": ("排污系数", "Emission factors"),
        "balance": ("物料衡算", "Material balance"),
        "sampling": ("抽样测算（核定）", "Sampling (determined by the tax office)"),
    },
    "tax_concentration_basis": {
        "measured": ("实测小时均值", "measured hourly means"),
        "converted": ("折算后小时均值", "hourly means at the reference O2"),
        "unconverted": ("无法折算（缺氧含量）", "not convertible (no O2)"),
        "mean": ("监测数据平均值", "mean of the results"),
        "flow-weighted mean": ("以流量为权的加权平均值", "flow-weighted mean of the results"),
    },
    "tax_reduction": {
        "below_50": (
            "低于标准50%，减按50%征收（第十三条）",
            "below the standard by 50 %: 50 % (art. 13)",
        ),
        "below_30": (
            "低于标准30%，减按75%征收（第十三条）",
            "below the standard by 30 %: 75 % (art. 13)",
        ),
        "not_below_30": ("未低于标准30%，不减征", "not 30 % below the standard: no reduction"),
        "no_concentration": (
            "无浓度或标准值，不减征",
            "no concentration or standard: no reduction",
        ),
        "no_highest": ("无当月最高值，不减征（条例第十条）", "no highest value: no reduction"),
        "value_exceeded": (
            "当月有小时值或监测值超过标准，不减征（条例第十条）",
            "a value of the month above the standard: no reduction (regulation art. 10)",
        ),
        "taxpayer_exceeded": (
            "纳税人有排放口超标，不减征（财税〔2018〕117号）",
            "an outlet of the taxpayer exceeded: no reduction (财税〔2018〕117号)",
        ),
        "unconverted": (
            "部分小时无法折算至基准氧含量，不减征",
            "hours not convertible to the reference O2: no reduction",
        ),
    },
    "tax_unit": {
        "kg": ("千克", "kg"),
        "吨污水": ("吨污水", "t of wastewater"),
        "吨水·倍": ("吨水·倍", "t of water × multiple"),
    },
    "tax_group": {
        "air": ("大气污染物", "air pollutants"),
        "first": ("第一类水污染物", "first-class water pollutants"),
        "other": ("其他类水污染物", "other water pollutants"),
    },
}
