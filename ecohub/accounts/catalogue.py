"""The resource catalogue (政务数据资源目录): every dataset the API serves, with its owner,
update frequency and sharing class, and the access rule that enforces that class.

The sharing classes are those of the State Council's 《政务信息资源共享管理暂行办法》
(国发〔2016〕51号), article 9: 无条件共享 (unconditional: anyone), 有条件共享
(conditional: the callers the dataset names, under its condition), 不予共享 (not shared:
only the owning agency's own staff). Open data published to the public is unconditional.

Every API route that serves data depends on :func:`dataset_access` with its dataset's
id, so the catalogue is the one place that says who may read what; a test checks that no
data route is missing from it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from ecohub.accounts.auth import optional_principal
from ecohub.accounts.keys import Principal, Role

AGENCY_ROLES = frozenset({Role.ADMIN, Role.AGENCY})


class Sharing(enum.StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


@dataclass(frozen=True)
class Dataset:
    """One catalogue entry."""

    id: str
    title: str
    title_en: str
    owner: str
    update_frequency: str  # real-time, hourly, daily, on change
    sharing: Sharing
    roles: frozenset[Role] = frozenset()  # who may read a conditional dataset
    condition: str = ""  # the condition, in words
    paths: tuple[str, ...] = ()

    def allows(self, caller: Principal | None) -> bool:
        if self.sharing == Sharing.UNCONDITIONAL:
            return True
        if caller is None:
            return False
        if self.sharing == Sharing.NOT_SHARED:
            return caller.role in AGENCY_ROLES
        return caller.role in self.roles


OWNER = "生态环境主管部门 (ecology and environment bureau)"
OWN_ENTERPRISE = "an enterprise sees its own records only"

DATASETS: dict[str, Dataset] = {
    dataset.id: dataset
    for dataset in (
        Dataset(
            "sites",
            "监测站点",
            "Monitoring sites",
            OWNER,
            "on change",
            Sharing.UNCONDITIONAL,
            paths=("/api/v1/sites", "/api/v1/parameters"),
        ),
        Dataset(
            "air_quality",
            "环境空气质量（小时、日均值与AQI）",
            "Ambient air quality: hourly and daily means, AQI",
            OWNER,
            "hourly",
            Sharing.UNCONDITIONAL,
            paths=(
                "/api/v1/aqi/latest",
                "/api/v1/sites/{code}/aqi",
                "/api/v1/ranking/cities",
                "/api/v1/cities",
                "/api/v1/cities/{code}/aqi",
            ),
        ),
        Dataset(
            "air_assessment",
            "环境空气质量年度评价（HJ 663-2013：站点与城市年评价、综合指数排名、优良天数比例）",
            "Annual air quality assessment (HJ 663-2013): stations, cities, ranking, good days",
            OWNER,
            "yearly",
            Sharing.UNCONDITIONAL,
            paths=(
                "/api/v1/assessment/annual/cities",
                "/api/v1/assessment/annual/stations",
                "/api/v1/assessment/annual/cities/{code}",
            ),
        ),
        Dataset(
            "water_quality",
            "地表水水质类别",
            "Surface water quality class (GB 3838-2002)",
            OWNER,
            "daily",
            Sharing.UNCONDITIONAL,
            paths=("/api/v1/water/classes",),
        ),
        Dataset(
            "site_series",
            "监测站点小时与日均值序列",
            "Hourly and daily means of a monitoring site",
            OWNER,
            "hourly",
            Sharing.UNCONDITIONAL,
            paths=("/api/v1/sites/{code}/series",),
        ),
        Dataset(
            "enterprise_disclosure",
            "企业环境信息依法披露（排污许可、排放口、自动监测数据）",
            "Enterprise disclosure: permits, outlets, continuous-monitoring data",
            OWNER,
            "hourly",
            Sharing.UNCONDITIONAL,
            condition="disclosure required by 《企业环境信息依法披露管理办法》",
            paths=(
                "/api/v1/enterprises",
                "/api/v1/enterprises/{uscc}",
                "/api/v1/enterprises/{uscc}/emissions",
                "/api/v1/points/{code}/series",
                "/api/v1/sources",
            ),
        ),
        Dataset(
            "alarms",
            "超标与异常报警",
            "Exceedance and anomaly alarms",
            OWNER,
            "real-time",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}),
            condition=OWN_ENTERPRISE,
            paths=("/api/v1/alarms",),
        ),
        Dataset(
            "transmission_rates",
            "数据传输率与有效率",
            "Transmission and effective-data rates",
            OWNER,
            "daily",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}),
            condition=OWN_ENTERPRISE,
            paths=("/api/v1/reports/transmission",),
        ),
        Dataset(
            "quarantine",
            "隔离的异常报文与数据",
            "Quarantined packets and rows",
            OWNER,
            "real-time",
            Sharing.NOT_SHARED,
            paths=("/api/v1/quarantine",),
        ),
        Dataset(
            "supervision_disclosure",
            "双随机抽查结果、行政处罚决定与企业环境信用评价结果公开",
            "Published inspection draws, penalty decisions and credit grades",
            OWNER,
            "on change",
            Sharing.UNCONDITIONAL,
            paths=("/api/v1/supervision/public",),
        ),
        Dataset(
            "supervision_cases",
            "行政处罚案件与企业环境信用评价",
            "Penalty cases and enterprise credit ratings",
            OWNER,
            "on change",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}),
            condition=OWN_ENTERPRISE,
            paths=("/api/v1/supervision/cases", "/api/v1/supervision/credit"),
        ),
        Dataset(
            "supervision_directory",
            "双随机检查对象名录、执法人员名录、抽查记录与企业风险证据",
            "Inspection directories, draws, and enterprises' evidence and risk scores",
            OWNER,
            "on change",
            Sharing.NOT_SHARED,
            paths=(
                "/api/v1/supervision/objects",
                "/api/v1/supervision/inspectors",
                "/api/v1/supervision/draws",
                "/api/v1/supervision/risk",
                "/api/v1/supervision/evidence",
            ),
        ),
        Dataset(
            "supervision_assignments",
            "执法人员的检查任务与现场检查记录",
            "Inspectors' assignments and field inspection records",
            OWNER,
            "on change",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.INSPECTOR}),
            condition="an inspector sees the assignments and inspections naming their badge code",
            paths=("/api/v1/supervision/assignments", "/api/v1/supervision/inspections"),
        ),
        Dataset(
            "complaints_public",
            "信访举报统计与举报人自助查询",
            "Complaint statistics, and a complainant's self-query by ticket and query code",
            OWNER,
            "on change",
            Sharing.UNCONDITIONAL,
            condition="the self-query answers only the ticket's own holder (ticket and code)",
            paths=("/api/v1/complaints/statistics", "/api/v1/complaints/self-query"),
        ),
        Dataset(
            "complaints_intake",
            "信访举报受理（热线、微信等系统接入）",
            "Complaint intake from the hotline's and other operators' systems",
            OWNER,
            "real-time",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.OPERATOR}),
            condition="operators' systems file complaints; they read back only their tickets",
            paths=("/api/v1/complaints/intake",),
        ),
        Dataset(
            "complaints_handling",
            "信访举报事件办理、证据与办理单位",
            "Complaint events, their handling and evidence, and the handling agencies",
            OWNER,
            "on change",
            Sharing.NOT_SHARED,
            condition="complainants' contact details only for the handling agency's staff",
            paths=("/api/v1/complaints/events", "/api/v1/complaints/agencies"),
        ),
        Dataset(
            "permits_tax",
            "排放量核算与环境保护税计算",
            "Emissions accounting and environmental protection tax per month",
            OWNER,
            "on change",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}),
            condition=OWN_ENTERPRISE,
            paths=("/api/v1/permits",),
        ),
        Dataset(
            "permits_service",
            "排污许可证申请、审批、版本与执行报告",
            "Discharge-permit applications, decisions, versions and execution reports",
            OWNER,
            "on change",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY, Role.ENTERPRISE}),
            condition=OWN_ENTERPRISE,
            paths=(
                "/api/v1/permits/applications",
                "/api/v1/permits/versions",
                "/api/v1/permits/reports",
                "/api/v1/permits/ledgers",
            ),
        ),
        Dataset(
            "permits_exchange",
            "环境保护税涉税信息交换与对账",
            "Records exchanged with the tax authority and the reconciliation of declared tax",
            OWNER,
            "monthly",
            Sharing.CONDITIONAL,
            roles=frozenset({Role.ADMIN, Role.AGENCY}),
            condition="the ecology-environment and tax authorities only",
            paths=("/api/v1/permits/exchange",),
        ),
        Dataset(
            "registry",
            "污染源与监测点位名录（含设备与口令配置）",
            "Registry with device settings, and its audit log",
            OWNER,
            "on change",
            Sharing.NOT_SHARED,
            paths=("/api/v1/registry", "/api/v1/audit"),
        ),
    )
}


def dataset_access(dataset_id: str) -> Callable[..., Awaitable[Principal | None]]:
    """A route dependency: the caller, if the dataset's sharing class admits it."""
    dataset = DATASETS[dataset_id]

    async def check(
        caller: Annotated[Principal | None, Depends(optional_principal)],
    ) -> Principal | None:
        if dataset.allows(caller):
            return caller
        if caller is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"dataset {dataset.id!r} is {dataset.sharing.value}: sign in or send an API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"dataset {dataset.id!r} is {dataset.sharing.value}"
            + (f" ({dataset.condition})" if dataset.condition else "")
            + f"; role {caller.role.value} may not read it",
        )

    check.dataset_id = dataset_id  # type: ignore[attr-defined]
    return check


router = APIRouter(prefix="/api/v1", tags=["catalogue"])


@router.get("/catalogue", summary="Every dataset with owner, update frequency and sharing class")
async def catalogue(
    caller: Annotated[Principal | None, Depends(optional_principal)],
) -> list[dict[str, object]]:
    return [
        {
            "id": d.id,
            "title": d.title,
            "title_en": d.title_en,
            "owner": d.owner,
            "update_frequency": d.update_frequency,
            "sharing": d.sharing.value,
            "condition": d.condition or None,
            "roles": sorted(role.value for role in d.roles) or None,
            "paths": list(d.paths),
            "you_may_read": d.allows(caller),
        }
        for d in DATASETS.values()
    ]
