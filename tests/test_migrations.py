"""The migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import ecohub.api.keys  # noqa: F401  (its table is part of the schema)
from ecohub.store.db import Base
from ecohub.store.migrate import upgrade


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_installs_revision_trigger(engine: Engine) -> None:
    upgrade(engine)  # already at head: nothing to do, nothing fails
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            triggers = (
                connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .scalars()
                .all()
            )
        else:
            triggers = (
                connection.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
                .scalars()
                .all()
            )
    assert "trg_observations_revision" in triggers
    assert "observations" in inspect(engine).get_table_names()
