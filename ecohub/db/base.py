"""The declarative base and metadata shared by every table of every area.

Areas define their tables on :data:`Base` (ORM models) or :data:`metadata` (Core
tables); the migrations in :mod:`ecohub.db.migrations` create them.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so that Alembic migrations are identical on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every EcoHub table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata
