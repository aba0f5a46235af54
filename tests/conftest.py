"""Test fixtures: every store test runs on SQLite and on the PostgreSQL of this machine.

PostgreSQL is reached at ``ECOHUB_TEST_POSTGRES_URL`` (default: the local server with
trust auth). Each test session creates its own database and drops it afterwards. Set
``ECOHUB_TEST_SKIP_POSTGRES=1`` to run SQLite only (CI never does).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

import ecohub.schema  # noqa: F401 - every area's tables on Base.metadata
from ecohub.db.base import Base
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "ECOHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SKIP_POSTGRES = os.environ.get("ECOHUB_TEST_SKIP_POSTGRES") == "1"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Tables whose rows are data loaded by migrations, kept between tests.
_REFERENCE_TABLES = {"parameters", "alembic_version"}


@pytest.fixture(autouse=True)
def _no_writes_to_the_users_var(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Tests never touch the user's ``var/`` (store, journal, demo credentials): every
    test gets its own working folder through the settings."""
    from ecohub.config import get_settings

    var = tmp_path_factory.mktemp("var")
    monkeypatch.setenv("ECOHUB_VAR_DIR", str(var))
    monkeypatch.setenv("ECOHUB_JOURNAL_DIR", str(var / "journal"))
    if "ECOHUB_DATABASE_URL" not in os.environ:
        monkeypatch.setenv("ECOHUB_DATABASE_URL", f"sqlite:///{var / 'ecohub.sqlite3'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if SKIP_POSTGRES:
        pytest.skip("ECOHUB_TEST_SKIP_POSTGRES=1")
    name = f"ecohub_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(engine: Engine) -> None:
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in _REFERENCE_TABLES]
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated store on the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "ecohub.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = str(request.getfixturevalue("postgres_url"))
    engine = make_engine(url)
    _truncate_postgres(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    created = make_engine(database_url)
    yield created
    created.dispose()


@pytest.fixture
def demo_registry_path() -> Path:
    from importlib.resources import files

    return Path(str(files("ecohub.demo") / "registry.json"))


@pytest.fixture
def points(engine: Engine, demo_registry_path: Path) -> dict[str, int]:
    """The demo registry loaded into the test store: point code → id."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.registry.importer import import_file
    from ecohub.registry.models import MonitoringPoint

    import_file(engine, demo_registry_path, "test")
    with Session(engine) as session:
        return {p.code: p.id for p in session.scalars(select(MonitoringPoint))}


# The counts the bus tests record (``record_property("bus_counts", …)``): shown at the end
# of every run, passed or failed, since pytest hides a passing test's printed output.
COUNTS_PROPERTY = "bus_counts"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, value in getattr(report, "user_properties", ()):
                if name == COUNTS_PROPERTY and report.when == "call":
                    lines.append(f"{report.nodeid} ({outcome}): {value}")
    if lines:
        terminalreporter.write_sep("=", "ingestion bus: acknowledged and stored values")
        for line in lines:
            terminalreporter.write_line(line)
