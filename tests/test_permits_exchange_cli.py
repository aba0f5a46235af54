"""``ecohub permits exchange-import``: a file with one bad line is imported but for that
line (named, exit 1), or with ``--strict`` refused whole (nothing written, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from ecohub.cli.main import app
from ecohub.config import get_settings
from ecohub.permits import exchange
from ecohub.permits.exchange_schema import FORMAT_VERSION, Kind
from tests.test_permits_exchange_schema import EXAMPLES


def _file(tmp_path: Path) -> Path:
    good = EXAMPLES[Kind.MONITORING]
    bad = {**good, "report_no": "JC-2024-0312", "sampled_on": "2024-02-30"}
    path = tmp_path / "supervisory_monitoring.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"format": FORMAT_VERSION, "kind": Kind.MONITORING.value, "record": r},
                ensure_ascii=False,
            )
            + "\n"
            for r in (good, bad)
        ),
        "utf-8",
    )
    return path


def test_strict_refuses_the_file_and_lenient_skips_the_line(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    path = _file(tmp_path)
    strict = CliRunner().invoke(app, ["permits", "exchange-import", "--strict", str(path)])
    assert strict.exit_code == 2 and ":2" in strict.output and "nothing imported" in strict.output
    assert exchange.records(engine, Kind.MONITORING.value) == []
    lenient = CliRunner().invoke(app, ["permits", "exchange-import", str(path)])
    assert lenient.exit_code == 1 and "1 new" in lenient.output and "1 refused" in lenient.output
    assert len(exchange.records(engine, Kind.MONITORING.value)) == 1
    get_settings.cache_clear()
