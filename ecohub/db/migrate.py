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
