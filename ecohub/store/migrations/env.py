"""Alembic environment: migrates the database the caller's engine points at."""

from __future__ import annotations

from alembic import context

import ecohub.alarms.tables
import ecohub.api.keys
import ecohub.api.users
import ecohub.registry.models
import ecohub.store.tables
from ecohub.store.db import Base, make_engine

target_metadata = Base.metadata
_ = (ecohub.registry.models, ecohub.api.keys, ecohub.api.users, ecohub.alarms.tables)


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
