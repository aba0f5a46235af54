"""The platform's one settings object, read from ``ECOHUB_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    """Settings of one EcoHub installation.

    ``database_url`` defaults to an SQLite file under ``./var/`` (WAL mode). A
    ``postgresql+psycopg://`` URL switches the whole platform to PostgreSQL; nothing
    else changes for the user.
    """

    model_config = SettingsConfigDict(env_prefix="ECOHUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR_DIR / 'ecohub.sqlite3'}",
        description="SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://...",
    )
    actor: str = Field(
        default="cli",
        description="Name recorded in the audit log for changes made by this process.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    hj212_host: str = Field(default="0.0.0.0", description="Address the HJ 212 gateway binds.")
    hj212_port: int = Field(default=9000, description="TCP port of the HJ 212 gateway.")
    hj212_idle_timeout: float = Field(
        default=600.0, description="Seconds of silence after which a logger connection is closed."
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="Time zone of the calendar days that daily values and rates follow.",
    )
    qc_thresholds: str | None = Field(
        default=None,
        description="CSV of quality-control thresholds overriding the shipped defaults.",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="MQTT broker to subscribe to."
    )
    mqtt_topic: str = Field(
        default="ecohub/measurements/#", description="Topic filter of measurement messages."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds.")
    api_port: int = Field(default=8000, description="TCP port of the HTTP API.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()
