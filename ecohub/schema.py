"""The whole schema: every area's tables on the one metadata of :mod:`ecohub.db.base`.

The migrations are plain DDL and do not need this; what does is what compares the
models with the migrated database (``tests/test_migrations.py``), Alembic's
autogeneration of a new migration (``alembic_config(engine, full_metadata())``), and
tooling that walks every table. A new area adds its tables module here.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import ecohub.accounts.keys
import ecohub.accounts.users
import ecohub.alarms.tables
import ecohub.assessment.tables
import ecohub.complaints.tables
import ecohub.db.counters
import ecohub.db.quarantine
import ecohub.permits.ledger_tables
import ecohub.permits.tables
import ecohub.registry.models
import ecohub.supervision.tables
import ecohub.timeseries.tables
from ecohub.db.base import metadata

TABLE_MODULES = (
    ecohub.db.counters,
    ecohub.db.quarantine,
    ecohub.registry.models,
    ecohub.accounts.keys,
    ecohub.accounts.users,
    ecohub.timeseries.tables,
    ecohub.alarms.tables,
    ecohub.assessment.tables,
    ecohub.supervision.tables,
    ecohub.complaints.tables,
    ecohub.permits.tables,
    ecohub.permits.ledger_tables,
)


def full_metadata() -> MetaData:
    """The metadata holding every table of every area."""
    return metadata
