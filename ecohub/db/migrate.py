"""Bring a database's schema to the newest migration (Alembic, run in-process)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData


def alembic_config(engine: Engine, target_metadata: MetaData | None = None) -> Config:
    """An Alembic config whose migrations run on ``engine``; ``target_metadata`` (every
    table, :func:`ecohub.schema.full_metadata`) is only needed to autogenerate a
    migration."""
    config = Config()
    config.attributes["target_metadata"] = target_metadata
    config.set_main_option("script_location", str(files("ecohub.db") / "migrations"))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent: a current schema is left as is)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def replace_check(table: str, name: str, old: str, new: str) -> None:
    """Inside a migration: make the CHECK constraint ``name`` of ``table`` say ``new``
    instead of ``old`` (both the constraint's SQL text), for a change that leaves every
    stored row valid (a list of allowed values widened).

    PostgreSQL drops and adds the constraint. SQLite cannot alter a CHECK, and copying the
    table (Alembic's batch mode) would drop the old one with foreign keys on, deleting
    what hangs on it through ON DELETE CASCADE; the stored schema is edited instead, as
    SQLite's documentation describes for such changes ("Making Other Kinds Of Table
    Schema Changes", https://www.sqlite.org/lang_altertable.html#otheralter)."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, new)
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    if old not in sql:
        raise RuntimeError(f"{table}: the CHECK {name} is not the expected one: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(old, new), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
