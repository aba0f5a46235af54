"""Change counters: a version per derived table that readers cache (the newest AQI of
each station, the rollups), bumped in the same transaction as every change, so that a
cache keyed on it is never stale."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, String, Table
from sqlalchemy.dialects import postgresql, sqlite

from ecohub.db.base import metadata

change_counters = Table(
    "change_counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False, server_default="0"),
)


def bump_counter(connection: Connection, name: str) -> int:
    """Add one to the ``change_counters`` row ``name`` (created at 1), in the caller's
    transaction; returns its new value."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    bump = dialect.insert(change_counters).values(name=name, version=1)
    statement = bump.on_conflict_do_update(
        index_elements=["name"], set_={"version": change_counters.c.version + 1}
    ).returning(change_counters.c.version)
    return int(connection.execute(statement).scalar_one())
