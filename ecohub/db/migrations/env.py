"""Alembic environment: migrates the database the caller's engine points at.

The migrations are plain DDL and need no models. Autogeneration and the schema check
compare against every area's tables: the caller that wants that passes the full
metadata (``ecohub.schema.full_metadata()``, assembled by the composition root) as
``config.attributes["target_metadata"]``, so this ground-floor module imports nothing
above it.
"""

from __future__ import annotations

from alembic import context

from ecohub.db.engine import make_engine


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
        target_metadata=context.config.attributes.get("target_metadata"),
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
