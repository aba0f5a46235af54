"""The ``ecohub`` command, end to end on both backends."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from ecohub.cli.main import app
from ecohub.config import get_settings
from ecohub.db.engine import make_engine
from ecohub.timeseries.observations import Observation, write_observations

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "registry", "export", "serve", "quarantine", "demo"):
        assert command in result.output
    for command in (["registry", "import"], ["export"], ["serve"], ["demo", "load"]):
        sub = runner.invoke(app, [*command, "--help"])
        assert sub.exit_code == 0, sub.output
        assert len(sub.output.splitlines()) > 3


def test_default_store_is_sqlite_under_var_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOHUB_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["init"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    database = tmp_path / "var" / "ecohub.sqlite3"
    assert database.exists()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_import_reports_rejections_and_exits_1(cli_env: str, tmp_path: Path) -> None:
    path = tmp_path / "enterprises.csv"
    path.write_text(
        "uscc,name\n914403001922038216,华为技术有限公司\n914403001922038217,错码\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["registry", "import", str(path)])
    assert result.exit_code == 1
    assert "imported 1 enterprises" in result.output
    assert "enterprises.csv:3" in result.output and "check character" in result.output
    listing = runner.invoke(app, ["quarantine", "list", "--source", "registry"])
    assert "914403001922038217" in listing.output
    # The same file again: nothing changes, and says so; the bad record is counted on
    # its quarantine row, not stored again.
    again = runner.invoke(app, ["registry", "import", str(path)])
    assert again.exit_code == 1 and "unchanged (1 records already as given)" in again.output
    engine = make_engine(cli_env)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT times FROM quarantine WHERE source = 'registry'"
        ).all()
    engine.dispose()
    assert rows == [(2,)]


def test_csv_of_unknown_kind_is_an_error(cli_env: str, tmp_path: Path) -> None:
    path = tmp_path / "stuff.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    result = runner.invoke(app, ["registry", "import", str(path)])
    assert result.exit_code == 2
    assert "pass --kind" in result.output


def test_demo_load_and_export(cli_env: str, tmp_path: Path) -> None:
    users_file = Path(__file__).resolve().parents[1] / "var" / "demo-credentials.txt"
    before = users_file.read_bytes() if users_file.exists() else None
    # Without the shared real data: the demo registry and labelled simulated values.
    empty = tmp_path / "no-cnemc"
    empty.mkdir()
    loaded = runner.invoke(app, ["demo", "load", "--days", "2", "--cnemc-dir", str(empty)])
    assert loaded.exit_code == 0, loaded.output
    assert "SIMULATED" in loaded.output
    # The supervision pages get a published draw of the demo enterprises, once.
    assert "10 simulated inspectors, draw 1 published" in " ".join(loaded.output.split())
    again = runner.invoke(app, ["demo", "load", "--days", "2", "--cnemc-dir", str(empty)])
    assert again.exit_code == 0 and "draw 2" not in again.output
    # The demo user's password went to the test's own folder, never the user's var/.
    assert (users_file.read_bytes() if users_file.exists() else None) == before
    assert (Path(get_settings().var_dir) / "demo-credentials.txt").exists()
    summary = runner.invoke(app, ["registry", "summary"])
    assert "monitoring points" in summary.output and "33" in summary.output
    engine = make_engine(cli_env)
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    write_observations(
        engine,
        [Observation(1, "a21026", "hour", t0 + dt.timedelta(hours=h), float(h)) for h in range(48)],
    )
    engine.dispose()
    out = tmp_path / "march.parquet"
    result = runner.invoke(
        app,
        [
            "export",
            "--out",
            str(out),
            "--format",
            "parquet",
            "--start",
            "2024-03-01T08:00",
            "--end",
            "2024-03-02T08:00",
        ],
    )  # no offset: China Standard Time, i.e. 00:00 to 24:00 UTC
    assert result.exit_code == 0, result.output
    assert "wrote 24 rows" in result.output
    assert pl.read_parquet(out)["value"].sum() == sum(range(24))
    bad = runner.invoke(
        app,
        [
            "export",
            "--out",
            str(out),
            "--format",
            "xlsx",
            "--start",
            "2024-03-01",
            "--end",
            "2024-03-02",
        ],
    )
    assert bad.exit_code == 2 and "use csv or parquet" in bad.output


def test_import_and_validate_cnemc_files(cli_env: str, tmp_path: Path) -> None:
    from tests.test_cnemc import write_file

    path = write_file(tmp_path / "china_sites_20240115.csv")
    result = runner.invoke(app, ["import", "cnemc", str(path), "--register-unknown"])
    assert result.exit_code == 0, result.output
    assert "registered 3 new stations" in result.output  # 9999X has an AQI only
    assert "24 written" in result.output
    validation = runner.invoke(app, ["validate", "aqi", str(path)])
    assert validation.exit_code == 0
    assert "station-hours compared: 6" in validation.output
    assert "exact AQI match: 4 = 66.66667%" in validation.output
    assert "no concentration published" in validation.output


def test_validate_water_file(cli_env: str, tmp_path: Path) -> None:
    path = tmp_path / "water.csv"
    path.write_text(
        "site,time,class,water_body,COD,NH3-N,DO,TP\n"
        "A,2024-01,III,river,18,0.8,6.5,0.15\n"
        "B,2024-01,II,river,30,0.8,6.5,0.15\n"
        "C,2024-01,X,river,18,0.8,6.5,0.15\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", "water", str(path)])
    assert result.exit_code == 0
    assert "samples compared: 2; class match: 50.00%" in result.output
    assert "published II, computed IV" in result.output
    assert "class 'X' is not I-V" in result.output


def test_alarm_commands_list_ack_annotate_close_and_subscribe(
    cli_env: str, demo_registry_path: Path
) -> None:
    from ecohub.ingest.pipeline import Pipeline

    assert runner.invoke(app, ["registry", "import", str(demo_registry_path)]).exit_code == 0
    engine = make_engine(cli_env)
    t0 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
    # P0001 (point id 1): SO2 30 mg/m³ against its permitted 10, with the flue-gas flow.
    rows = [
        Observation(1, "a21026", "hour", t0, 30.0, "N", 0, "t"),
        Observation(1, "a00000", "hour", t0, 80.0, "N", 0, "t"),
    ]
    Pipeline(engine).process(rows, now=t0 + dt.timedelta(days=1))
    engine.dispose()

    listed = runner.invoke(app, ["alarms", "list"])
    assert listed.exit_code == 0, listed.output
    assert "1 alarm(s)" in listed.output
    as_json = runner.invoke(app, ["alarms", "list", "--json"])
    assert '"kind": "source_exceedance"' in as_json.output
    assert runner.invoke(app, ["alarms", "ack", "1", "--note", "on it"]).exit_code == 0
    again = runner.invoke(app, ["alarms", "ack", "1"])
    assert again.exit_code == 2 and "already acknowledged" in again.output
    assert runner.invoke(app, ["alarms", "annotate", "1", "filter leak"]).exit_code == 0
    assert runner.invoke(app, ["alarms", "close", "1", "--reason", "fixed"]).exit_code == 0
    shown = runner.invoke(app, ["alarms", "show", "1"])
    assert shown.exit_code == 0
    for action in ("opened", "acknowledged", "annotated", "closed"):
        assert f'"{action}"' in shown.output
    assert "0 alarm(s)" in runner.invoke(app, ["alarms", "list"]).output
    closed = runner.invoke(app, ["alarms", "list", "--status", "closed", "--json"])
    assert '"manual: fixed"' in closed.output

    subscribed = runner.invoke(
        app, ["alarms", "subscribe", "duty", "--webhook", "http://127.0.0.1:9/hook"]
    )
    assert subscribed.exit_code == 0 and "signing secret" in subscribed.output
    bad = runner.invoke(app, ["alarms", "subscribe", "x", "--email", "nobody"])
    assert bad.exit_code == 2 and "not an e-mail address" in bad.output
    missing = runner.invoke(app, ["alarms", "show", "42"])
    assert missing.exit_code == 2 and "no alarm 42" in missing.output


def test_users_commands_manage_portal_accounts(cli_env: str) -> None:
    password = ["--password", "a long pass phrase 42"]
    added = runner.invoke(app, ["users", "add", "alice", "--role", "agency", *password])
    assert added.exit_code == 0, added.output
    assert "alice" in runner.invoke(app, ["users", "list"]).output
    again = runner.invoke(app, ["users", "add", "alice", "--role", "agency", *password])
    assert again.exit_code == 2  # the name is taken: said, nothing changed
    bad_role = runner.invoke(app, ["users", "add", "bob", "--role", "boss", *password])
    assert bad_role.exit_code == 2 and "role must be one of" in bad_role.output
    changed = runner.invoke(app, ["users", "passwd", "alice", "--password", "another one 43"])
    assert changed.exit_code == 0, changed.output
    assert runner.invoke(app, ["users", "disable", "alice"]).exit_code == 0
    listed = runner.invoke(app, ["users", "list"]).output
    assert "alice" in listed and "disabled" in listed and "bob" not in listed
    unknown = runner.invoke(app, ["users", "disable", "nobody"])
    assert unknown.exit_code == 2 and "nobody" in unknown.output


def test_serve_says_so_when_no_mqtt_broker_answers(
    cli_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import ecohub.serve

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("ECOHUB_MQTT_URL", f"mqtt://127.0.0.1:{closed}")
    get_settings.cache_clear()
    started: dict[str, object] = {}
    monkeypatch.setattr(ecohub.serve, "run_gateway", lambda store, **kw: started.update(kw))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "no broker answers" in result.output and "subscrib" not in result.output
    assert started["mqtt"] is None  # the door is not started, nor retried for ever


def test_simulate_clean_removes_the_simulated_points_and_their_data(cli_env: str) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from ecohub.registry.models import AuditEntry, Enterprise, MonitoringPoint
    from ecohub.simulate.points import SIM_USCC, register_simulated_points

    engine = make_engine(cli_env)
    simulated = register_simulated_points(engine, 3)
    with Session(engine) as session:
        ids = session.scalars(
            select(MonitoringPoint.id).where(MonitoringPoint.mn.in_([p.mn for p in simulated]))
        ).all()
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    write_observations(engine, [Observation(i, "a21026", "rt", t0, 1.0) for i in ids])
    result = runner.invoke(app, ["simulate", "clean"])
    assert result.exit_code == 0, result.output
    assert "removed 3 simulated points" in result.output and "3 stored values" in result.output
    with Session(engine) as session:
        assert session.scalars(select(Enterprise).filter_by(uscc=SIM_USCC)).first() is None
        left = session.scalar(
            select(func.count()).select_from(MonitoringPoint).where(MonitoringPoint.id.in_(ids))
        )
        deleted = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "delete")
        )
    outlets = int(re.search(r"(\d+) outlets", result.output).group(1))  # type: ignore[union-attr]
    assert left == 0 and outlets >= 1
    assert deleted == 3 + outlets + 1  # each point, outlet and the enterprise, audited
    again = runner.invoke(app, ["simulate", "clean"])
    assert "removed 0 simulated points" in again.output
    engine.dispose()


def test_complaint_commands_import_list_and_evidence(cli_env: str, tmp_path: Path) -> None:
    """A call centre's CSV through `ecohub complaints import`: the bad line named with its
    number (exit 1), the good ones filed and linked into one event; a re-import files
    nothing; `events`, `show` and `evidence` read them back."""
    assert runner.invoke(app, ["complaints", "agency", "SJZ", "石家庄", "130100"]).exit_code == 0
    calls = tmp_path / "calls.csv"
    calls.write_text(
        "ref,medium,text,longitude,latitude,observed_at\n"
        "A1,air,化工厂夜里排放刺鼻废气,114.539,38.042,2026-12-01 22:00\n"
        "A2,air,晚上化工厂废气味道很重,114.540,38.0425,2026-12-01 23:30\n"
        "A3,noise,,114.5,38.0,2026-12-01 23:00\n",
        "utf-8",
    )
    first = runner.invoke(app, ["complaints", "import", str(calls)])
    said = " ".join(first.output.split())  # rich wraps at the terminal's width
    assert first.exit_code == 1
    assert "line 4: missing text" in said  # after the path (rich may break it anywhere)
    assert "filed 2 complaints, 0 already filed, 1 lines refused" in said
    again = runner.invoke(app, ["complaints", "import", str(calls)])
    assert "filed 0 complaints, 2 already filed" in " ".join(again.output.split())
    listed = runner.invoke(app, ["complaints", "events"])
    assert listed.exit_code == 0 and "SJZ" in listed.output
    shown = runner.invoke(app, ["complaints", "show", "1"])
    assert shown.exit_code == 0 and '"complaint_count": 2' in shown.output
    assert '"contact": null' in shown.output
    assert runner.invoke(app, ["complaints", "evidence", "2"]).exit_code == 0
    assert runner.invoke(app, ["complaints", "show", "9"]).exit_code == 2
