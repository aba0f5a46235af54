"""Counts of what the registry and the store hold, for the CLI and the start-up banner."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from ecohub.db.quarantine import quarantine
from ecohub.registry.models import (
    AuditEntry,
    Enterprise,
    MonitoringPoint,
    Outlet,
    Parameter,
    Permit,
    Region,
    Site,
)
from ecohub.timeseries.tables import observation_revisions, observations

_COUNTED = {
    "regions": Region.__table__,
    "sites": Site.__table__,
    "enterprises": Enterprise.__table__,
    "outlets": Outlet.__table__,
    "permits": Permit.__table__,
    "monitoring points": MonitoringPoint.__table__,
    "parameters": Parameter.__table__,
    "observations": observations,
    "revisions": observation_revisions,
    "quarantined": quarantine,
    "audit entries": AuditEntry.__table__,
}


def counts(engine: Engine) -> dict[str, int]:
    """Row counts of the registry and store tables, by a readable name."""
    with engine.connect() as connection:
        return {
            name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in _COUNTED.items()
        }
