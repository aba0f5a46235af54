"""Schemathesis against the API's own OpenAPI document: generated requests for every
operation, with an agency key (so that protected routes get past authorisation), must
never produce a server error (5xx). The store is SQLite with the demo registry and a
few values; the run is in-process (ASGI), 30 examples per operation by default
(``ECOHUB_SCHEMATHESIS_EXAMPLES`` raises it for a deeper run).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.importer import import_file
from ecohub.registry.models import MonitoringPoint
from ecohub.timeseries.observations import Observation

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _app():  # type: ignore[no-untyped-def]
    directory = Path(tempfile.mkdtemp(prefix="ecohub-schema-"))
    engine = make_engine(f"sqlite:///{directory / 'schema.sqlite3'}")
    upgrade(engine)
    import_file(engine, Path(str(files("ecohub.demo") / "registry.json")), "test")
    start = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    with Session(engine) as session:
        ids = {p.code: p.id for p in session.scalars(select(MonitoringPoint))}
        key = issue_key(
            session, name="fuzz", role=Role.AGENCY, created_by="test", rate_limit=1_000_000
        )
        session.commit()
    rows = [
        Observation(
            ids["1001A"], "a34004", "hour", start + dt.timedelta(hours=h), 40.0 + h % 5, "N", 0, "t"
        )
        for h in range(48)
    ]
    Pipeline(engine).process(rows, now=start + dt.timedelta(days=3))
    return create_app(engine), key


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx: object, value: object) -> bytes:
    """The upload's line formats are described as strings: sent as they come."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else str(value).encode()


APP, KEY = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


# One test per operation, named by it: schemathesis' own ``schema.parametrize()`` gives
# every operation the same test id, and pytest-xdist (which `make test` uses) then runs
# only the first of them.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_server_errors(operation: APIOperation) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=int(os.environ.get("ECOHUB_SCHEMATHESIS_EXAMPLES", "30")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error]
        )

    check()
