"""The ``ecohub`` command: set up the store, import the registry, export data, serve.

Every command reads the database from ``ECOHUB_DATABASE_URL`` (default: an SQLite file
under ``./var/``).

Commands import the heavier libraries they alone use (Polars, Alembic, httpx, argon2)
when they run: the gateway's writer process imports this module again on start
(``multiprocessing`` spawns it from ``ecohub serve``), and these took 43 MB of its memory.
"""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine

from ecohub.config import get_settings
from ecohub.registry.importer import KINDS, ImportReport, import_file
from ecohub.store.db import make_engine
from ecohub.store.quarantine import list_quarantine
from ecohub.store.summary import counts

app = typer.Typer(
    help="EcoHub: eco-environment data platform (registry, HJ 212 ingest, store, open data).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
registry_app = typer.Typer(help="Regions, sites, enterprises, permits, outlets and points.")
quarantine_app = typer.Typer(help="Rejected input kept for review.")
demo_app = typer.Typer(help="Demo data for a first look.")
simulate_app = typer.Typer(help="Simulated field equipment, for demos, tests and benchmarks.")
import_app = typer.Typer(help="Import data files (CNEMC hourly station files, station lists).")
validate_app = typer.Typer(help="Check the standards library against published figures.")
app.add_typer(registry_app, name="registry")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(demo_app, name="demo")
app.add_typer(simulate_app, name="simulate")
app.add_typer(import_app, name="import")
app.add_typer(validate_app, name="validate")
keys_app = typer.Typer(help="API keys of machines uploading data or calling the API.")
app.add_typer(keys_app, name="keys")
from ecohub.cli.alarms import alarms_app  # noqa: E402 - after the shared helpers above
from ecohub.cli.users import users_app  # noqa: E402

app.add_typer(alarms_app, name="alarms")
app.add_typer(users_app, name="users")

console = Console()
err_console = Console(stderr=True)


def engine() -> Engine:
    """The engine of the configured store, migrated to the current schema."""
    from ecohub.store.migrate import upgrade

    created = make_engine(get_settings().database_url)
    upgrade(created)
    return created


def _parse_time(text: str) -> dt.datetime:
    """An ISO time; without an offset it is taken as China Standard Time (UTC+8)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time") from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return value


@app.command()
def init() -> None:
    """Create or upgrade the store's schema and load the parameter code table."""
    store = engine()
    console.print(f"store ready: {store.url.render_as_string(hide_password=True)}")


def _print_report(report: ImportReport, name: str) -> None:
    accepted = ", ".join(f"{count} {kind}" for kind, count in report.accepted.items()) or "nothing"
    console.print(f"{name}: imported {accepted}")
    for where, reason in report.rejected:
        err_console.print(f"[red]rejected[/red] {where}: {reason}")
    if report.rejected:
        err_console.print(
            f"{len(report.rejected)} record(s) rejected and quarantined "
            "(see `ecohub quarantine list --source registry`)"
        )


@registry_app.command("import")
def registry_import(
    paths: Annotated[list[Path], typer.Argument(help="CSV or JSON registry files.", exists=True)],
    kind: Annotated[
        str | None,
        typer.Option(
            help=f"What a CSV file holds: one of {', '.join(KINDS)} (default: file name)."
        ),
    ] = None,
) -> None:
    """Import sites, enterprises, permits, outlets and points from CSV or JSON.

    Good records are imported even when others are rejected; rejected ones are printed
    with their line and reason and quarantined. Exit status 1 if any was rejected.
    """
    store = engine()
    rejected = 0
    for path in paths:
        try:
            report = import_file(store, path, get_settings().actor, kind)
        except ValueError as error:
            err_console.print(f"[red]error[/red] {error}")
            raise typer.Exit(2) from error
        _print_report(report, path.name)
        rejected += len(report.rejected)
    if rejected:
        raise typer.Exit(1)


@registry_app.command("summary")
def registry_summary() -> None:
    """Print how many records of each kind the registry and store hold."""
    _print_counts(engine())


def _print_counts(store: Engine) -> None:
    table = Table("what", "count", title="EcoHub store")
    for name, count in counts(store).items():
        table.add_row(name, f"{count:,}")
    console.print(table)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="File to write.")],
    start: Annotated[str, typer.Option(help="Start (inclusive), ISO; no offset = UTC+8.")],
    end: Annotated[str, typer.Option(help="End (exclusive), ISO; no offset = UTC+8.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    interval: Annotated[str | None, typer.Option(help="Only rt, min, hour or day.")] = None,
    point: Annotated[str | None, typer.Option(help="Only this monitoring point code.")] = None,
) -> None:
    """Export observations of a time range to CSV or Parquet (timestamps in UTC)."""
    from ecohub.store.export import count_range, export_range

    if fmt not in {"csv", "parquet"}:
        raise typer.BadParameter(f"format {fmt!r}: use csv or parquet", param_hint="--format")
    store = engine()
    begin, finish = _parse_time(start), _parse_time(end)
    if finish <= begin:
        raise typer.BadParameter("end must be after start", param_hint="--end")
    total = count_range(store, begin, finish, interval, point)
    with _progress() as progress:
        task = progress.add_task(f"export {out.name}", total=total)
        written = export_range(
            store,
            out,
            fmt,
            begin,
            finish,
            interval=interval,
            point_code=point,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(f"wrote {written:,} rows to {out}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=err_console,
    )


@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option(help="Only this input (hj212, registry…).")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """Show the newest quarantined input with its reason and raw text."""
    rows = list_quarantine(engine(), source=source, limit=limit)
    if not rows:
        console.print("quarantine is empty")
    for row in rows:
        received = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        peer = f" from {row.peer}" if row.peer else ""
        heading = f"{received} UTC {row.source}{peer} [{row.reason_code}]"
        console.print(heading, soft_wrap=True, markup=False, style="bold")
        console.print(f"  reason: {row.reason}", soft_wrap=True, markup=False)
        console.print(f"  raw:    {row.raw}", soft_wrap=True, markup=False)


DEMO_CREDENTIALS = Path("var") / "demo-credentials.txt"


@demo_app.command("load")
def demo_load(
    days: Annotated[int, typer.Option(min=1, max=366, help="Days of air and water data.")] = 30,
    cnemc_dir: Annotated[
        Path, typer.Option(help="Folder of real CNEMC china_sites_YYYYMMDD.csv files.")
    ] = Path("../shared/data/cnemc"),
) -> None:
    """Load the demo: the registry (air and water sites, enterprises, permits, outlets,
    points), real CNEMC data when the folder holds it (else labelled simulated values),
    and an agency user whose password is printed and kept in var/demo-credentials.txt."""
    import secrets

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.api.keys import Role
    from ecohub.api.users import User, create_user
    from ecohub.demo import backfill

    store = engine()
    path = Path(str(files("ecohub.demo") / "registry.json"))
    report = import_file(store, path, "demo")
    _print_report(report, "demo registry")
    real = sorted(cnemc_dir.glob("china_sites_*.csv")) if cnemc_dir.is_dir() else []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        if real:
            task = progress.add_task("real CNEMC files", total=min(days, len(real)))
            loaded = backfill.load_cnemc(
                store, cnemc_dir, days, lambda n: progress.advance(task, n)
            )
        else:
            task = progress.add_task("simulated stations", total=backfill.station_count(store))
            loaded = backfill.simulate(store, days, progress=lambda n: progress.advance(task, n))
    if loaded.source == "simulated" and loaded.values == 0:
        console.print("simulated demo values are up to date")
    elif loaded.source == "cnemc":
        console.print(f"loaded {loaded.values:,} real values from {loaded.files} CNEMC files")
    else:
        console.print(
            f"[yellow]{cnemc_dir} holds no CNEMC files: loaded {loaded.values:,} SIMULATED air "
            f"and water values for the last {days} days (source '{backfill.SIMULATED_SOURCE}'), "
            "so that the map and charts have something to show. They are not measurements.[/yellow]"
        )
    with Session(store) as session:
        if session.scalars(select(User).filter_by(username="agency")).first() is None:
            password = secrets.token_urlsafe(12)
            create_user(
                session, username="agency", password=password, role=Role.AGENCY, actor="demo"
            )
            session.commit()
            DEMO_CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
            DEMO_CREDENTIALS.write_text(f"agency {password}\n", encoding="utf-8")
            DEMO_CREDENTIALS.chmod(0o600)
            console.print(f"demo agency user: agency / {password} (kept in {DEMO_CREDENTIALS})")
        elif DEMO_CREDENTIALS.exists():
            console.print(f"demo agency user: see {DEMO_CREDENTIALS}")


@simulate_app.command("hj212")
def simulate_hj212(
    points: Annotated[int, typer.Option(help="Number of simulated data loggers.")] = 10,
    interval: Annotated[float, typer.Option(help="Real seconds between a logger's ticks.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Real seconds to run.")] = 60.0,
    bad_ratio: Annotated[
        float, typer.Option(help="Share of ticks with a bad packet, a retransmission, a drop.")
    ] = 0.0,
    host: Annotated[str, typer.Option(help="Gateway address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Gateway port (default 9000).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (runs are repeatable).")] = 212,
) -> None:
    """Run N simulated HJ 212 loggers (flue-gas CEMS and waste water) against a gateway.

    Registers the loggers as monitoring points SIM00000… (idempotently), sends real-time,
    minute, hourly and daily data on a one-minute virtual clock, checks every 9014 answer
    and prints what was sent and how fast it was answered.
    """

    from ecohub.runtime import run_event_loop, tune_garbage_collector
    from ecohub.simulate.hj212 import register_simulated_points, simulate

    if interval <= 0 or duration <= 0 or points < 1:
        raise typer.BadParameter("points, interval and duration must be positive")
    if not 0 <= bad_ratio <= 1:
        raise typer.BadParameter("bad ratio must be between 0 and 1", param_hint="--bad-ratio")
    simulated = register_simulated_points(engine(), points)
    tune_garbage_collector()  # a collector pause would be measured as answer latency
    report = run_event_loop(
        simulate(
            simulated,
            host=host,
            port=port or get_settings().hj212_port,
            ticks=max(1, int(duration / interval)),
            interval=interval,
            bad_ratio=bad_ratio,
            seed=seed,
        )
    )
    console.print(report.summary(), soft_wrap=True)
    if report.missing_acks:
        raise typer.Exit(1)


@import_app.command("cnemc")
def import_cnemc(
    paths: Annotated[
        list[Path], typer.Argument(help="china_sites_YYYYMMDD.csv files.", exists=True)
    ],
    register_unknown: Annotated[
        bool,
        typer.Option(help="Register stations missing from the registry (code only) first."),
    ] = False,
) -> None:
    """Import CNEMC hourly station files into the store (hourly PM2.5, PM10, SO2, NO2,
    O3, CO per station), with a progress bar.

    Each station needs a monitoring point whose code is the station code (see
    `ecohub import stations`); values of other stations are skipped and reported in the
    quarantine, once per station and file. Re-importing a file changes nothing.
    """
    from ecohub.ingest.cnemc import (
        ImportResult,
        import_file_into_store,
        read_hourly_file,
        register_stations,
        site_points,
    )

    store = engine()
    files = sorted(paths)
    if register_unknown:
        codes: set[str] = set()
        for path in files:
            codes |= set(read_hourly_file(path)["station"].unique().to_list())
        known = site_points(store)
        added = register_stations(store, codes - set(known), get_settings().actor)
        console.print(f"registered {added} new stations")
    from ecohub.ingest.pipeline import Pipeline

    points = site_points(store)
    result = ImportResult()
    pipeline = Pipeline(store)
    with _progress() as progress:
        task = progress.add_task("import CNEMC files", total=len(files))
        for path in files:
            progress.update(task, description=f"import {path.name}")
            import_file_into_store(store, path, points, result, pipeline)
            progress.advance(task)
    console.print(
        f"{result.files} files, {result.values_read:,} values read: {result.written:,} "
        f"written, {result.unchanged:,} already stored"
    )
    if result.unknown_stations:
        err_console.print(
            f"{len(result.unknown_stations)} stations not in the registry were skipped "
            "(see `ecohub quarantine list --source cnemc`; `--register-unknown` adds them)"
        )
    for name, reason in result.bad_files:
        err_console.print(f"[red]bad file[/red] {name}: {reason}")
    if result.bad_files:
        raise typer.Exit(1)


@import_app.command("stations")
def import_stations(
    path: Annotated[Path, typer.Argument(help="CNEMC station list CSV.", exists=True)],
) -> None:
    """Import a CNEMC station list (监测点编码, 监测点名称, 城市, 经度, 纬度) as air sites
    with one monitoring point each."""
    from ecohub.ingest.cnemc import CnemcFormatError, station_records
    from ecohub.registry.importer import import_records

    try:
        records = station_records(path)
    except CnemcFormatError as error:
        err_console.print(f"[red]error[/red] {error}")
        raise typer.Exit(2) from error
    report = import_records(
        engine(),
        [
            (str(item["kind"]), f"{path.name}:{index // 2 + 2}", item["record"])  # type: ignore[misc]
            for index, item in enumerate(records)
        ],
        get_settings().actor,
    )
    _print_report(report, path.name)
    if report.rejected:
        raise typer.Exit(1)


@validate_app.command("aqi")
def validate_aqi(
    paths: Annotated[
        list[Path], typer.Argument(help="china_sites_YYYYMMDD.csv files.", exists=True)
    ],
) -> None:
    """Recompute every station-hour's AQI (HJ 633-2012) from the published
    concentrations and compare it with the published AQI."""
    from ecohub.ingest.cnemc import (
        AQIValidation,
        read_hourly_file,
        station_hours,
        validate_aqi_frame,
    )

    report = AQIValidation()
    with _progress() as progress:
        task = progress.add_task("validate AQI", total=len(paths))
        for path in sorted(paths):
            validate_aqi_frame(station_hours(read_hourly_file(path)), report)
            progress.advance(task)
    console.print(
        f"station-hours compared: {report.compared:,} "
        f"(skipped without a published AQI: {report.skipped_no_published:,})"
    )
    console.print(f"exact AQI match: {report.exact:,} = {report.exact_rate:.4%}", soft_wrap=True)
    for cause, count in report.causes.most_common():
        console.print(f"  {count:>8,}  {cause}", markup=False)
        for example in report.examples.get(cause, []):
            console.print(f"            e.g. {example}", markup=False, soft_wrap=True)
    console.print(
        "primary pollutant: not published in these files"
        if not report.primary_compared
        else f"primary pollutant match: {report.primary_matched / report.primary_compared:.4%}"
    )


@validate_app.command("water")
def validate_water(
    paths: Annotated[list[Path], typer.Argument(help="Published water results CSV.", exists=True)],
) -> None:
    """Recompute each published sample's GB 3838-2002 class and compare (CSV columns:
    site, time, class, water_body, and one column per parameter)."""
    from ecohub.ingest.water_files import WaterValidation, validate_water_file

    report = WaterValidation()
    for path in paths:
        validate_water_file(path, report)
    console.print(f"samples compared: {report.compared:,}; class match: {report.match_rate:.2%}")
    for key, count in report.mismatches.most_common():
        console.print(f"  {count:>6,}  {key}", markup=False)
    for example in report.examples:
        console.print(f"  e.g. {example}", markup=False)
    for rejected in report.rejected_rows:
        err_console.print(f"rejected {rejected}", markup=False)


@app.command()
def serve(
    hj212_port: Annotated[
        int | None, typer.Option(help="TCP port of the HJ 212 gateway (default 9000).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 0.0.0.0).")] = None,
    demo_loggers: Annotated[
        bool,
        typer.Option(help="Also simulate the registry's outlet loggers (for the demo)."),
    ] = False,
    demo_interval: Annotated[
        float, typer.Option(help="Seconds between the simulated loggers' real-time packets.")
    ] = 60.0,
    mqtt: Annotated[
        bool, typer.Option(help="Subscribe to the MQTT broker (ECOHUB_MQTT_URL, _TOPIC).")
    ] = True,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the HTTP API (default ECOHUB_API_PORT, 8000).")
    ] = None,
) -> None:
    """Run the platform: the HJ 212 gateway, the MQTT subscriber and the HTTP API, all
    feeding one ingestion pipeline, after printing the store summary.

    Senders are answered once their data are in the journal (ECOHUB_JOURNAL_DIR).
    Stops gracefully on Ctrl-C or SIGTERM: every value already answered is stored, or,
    if the store does not take it within a minute, kept in the journal for the next
    start (`ecohub journal` shows it).
    """
    from ecohub.ingest.hj212_gateway import run_gateway

    settings = get_settings()
    store = engine()
    _print_counts(store)
    port = hj212_port or settings.hj212_port
    console.print(
        f"HJ 212 gateway listening on {host or settings.hj212_host}:{port}"
        + (" with the demo loggers streaming" if demo_loggers else "")
        + " — Ctrl-C to stop"
    )
    api = (settings.api_host, api_port or settings.api_port)
    console.print(
        f"[bold green]Portal (the one map): http://{api[0]}:{api[1]}/[/bold green]  "
        f"API docs: http://{api[0]}:{api[1]}/docs"
    )
    if mqtt:
        console.print(f"MQTT: subscribed to {settings.mqtt_topic} at {settings.mqtt_url}")
    from rich.markup import escape

    from ecohub.ingest.journal import JournalError

    try:
        run_gateway(
            store,
            host=host or settings.hj212_host,
            port=port,
            idle_timeout=settings.hj212_idle_timeout,
            demo_loggers=demo_loggers,
            demo_interval=demo_interval,
            mqtt=(settings.mqtt_url, settings.mqtt_topic) if mqtt else None,
            api=api,
        )
    except JournalError as error:
        err_console.print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(2) from error


@app.command("journal")
def journal_status(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Journal directory (default ECOHUB_JOURNAL_DIR, var/journal)."),
    ] = None,
) -> None:
    """Show what the gateway's journal holds: batches answered but not yet known to be
    in the store (the next `ecohub serve` writes them first). Read-only; safe while the
    gateway runs."""
    from rich.markup import escape

    from ecohub.config import DEFAULT_VAR_DIR
    from ecohub.ingest.journal import JournalError, inspect_journal
    from ecohub.ingest.writer_process import payload_counts

    where = directory or Path(get_settings().journal_dir or DEFAULT_VAR_DIR / "journal")
    try:
        status = inspect_journal(where)
    except JournalError as error:
        err_console.print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    counts = [payload_counts(record.payload) for record in status.pending]
    rows = sum(count for count, _rejected in counts)
    rejected = sum(count for _rows, count in counts)
    state = "in use by a running gateway" if status.in_use else "not in use"
    console.print(f"journal {status.directory} ({state})", markup=False)
    console.print(
        f"  {status.segments} segment file(s), {status.bytes:,} bytes; "
        f"committed through batch {status.committed}",
        markup=False,
    )
    if status.pending:
        first, last = status.pending[0].sequence, status.pending[-1].sequence
        console.print(
            f"  waiting for the store: {len(status.pending):,} batch(es) ({first}-{last}), "
            f"{rows:,} values and {rejected:,} rejected inputs",
            markup=False,
        )
    else:
        console.print("  waiting for the store: nothing", markup=False)
    for problem in status.problems:
        console.print(f"  cut off at the next start: {problem}", markup=False)


@import_app.command("measurements")
def import_measurements(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CSV (.csv) or JSON-lines (.jsonl) files of measurements.", exists=True
        ),
    ],
) -> None:
    """Backfill measurements from files, through the ingestion pipeline (quality control,
    store, rollups), with a progress bar.

    CSV columns: point (or mn), parameter, ts (ISO 8601 with a UTC offset), value, and
    optionally interval (rt, min, hour, day) and flag (HJ 212 data flag). Bad rows are
    quarantined with their line number; the good rows around them are stored.
    Re-importing a file changes nothing.
    """
    from ecohub.ingest.files import FileFormatError, count_rows, import_measurement_file
    from ecohub.ingest.pipeline import Pipeline

    pipeline = Pipeline(engine())
    failed = False
    with _progress() as progress:
        for path in sorted(paths):
            task = progress.add_task(f"import {path.name}", total=count_rows(path))

            def advance(done: int, task_id: TaskID = task) -> None:
                progress.update(task_id, completed=done)

            try:
                result = import_measurement_file(pipeline, path, progress=advance)
            except (FileFormatError, UnicodeDecodeError) as error:
                err_console.print(f"[red]{path.name}[/red]: {error}")
                failed = True
                continue
            console.print(
                f"{path.name}: {result.rows:,} rows, {result.values:,} values — "
                f"{result.written:,} written, {result.unchanged:,} already stored, "
                f"{result.flagged:,} flagged by quality control, {result.rejected:,} rejected"
                + (f" ({result.reasons})" if result.reasons else "")
            )
    if failed:
        raise typer.Exit(1)


@app.command("rates")
def rates(
    day: Annotated[
        str | None, typer.Option(help="Local day YYYY-MM-DD (default: yesterday).")
    ] = None,
    point: Annotated[list[str] | None, typer.Option(help="Point code(s); default all.")] = None,
) -> None:
    """Transmission and effective-data rates per monitoring point for one day
    (received ÷ expected readings, valid ÷ expected, from each point's interval)."""
    import datetime as dt

    from rich.table import Table

    from ecohub.analytics.rates import daily_rates

    try:
        wanted = dt.date.fromisoformat(day) if day else dt.date.today() - dt.timedelta(days=1)
    except ValueError:
        err_console.print(f"[red]--day {day!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    table = Table(title=f"Data rates on {wanted}")
    for column in ("point", "expected", "received", "valid", "transmission", "effective"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for rate in daily_rates(engine(), wanted, point_codes=point or None):
        table.add_row(
            rate.point_code,
            str(rate.expected),
            str(rate.received),
            str(rate.valid),
            f"{rate.transmission_rate:.1%}",
            f"{rate.effective_rate:.1%}",
        )
    console.print(table)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    role: Annotated[str, typer.Option(help="admin, agency, enterprise or operator.")] = "operator",
    enterprise: Annotated[
        str | None, typer.Option(help="Unified social credit code (enterprise keys).")
    ] = None,
) -> None:
    """Issue an API key; it is printed once and stored only as a hash."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.api.keys import Role, issue_key
    from ecohub.registry.models import Enterprise

    try:
        chosen = Role(role)
    except ValueError:
        err_console.print(f"[red]role must be one of {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None
    with Session(engine()) as session:
        enterprise_id = None
        if enterprise:
            found = session.scalars(select(Enterprise).filter_by(uscc=enterprise)).one_or_none()
            if found is None:
                err_console.print(f"[red]no enterprise with USCC {enterprise}[/red]")
                raise typer.Exit(2)
            enterprise_id = found.id
        try:
            key = issue_key(
                session,
                name=name,
                role=chosen,
                created_by=get_settings().actor,
                enterprise_id=enterprise_id,
            )
        except ValueError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (name, role, lookup id, created, revoked) — never the secrets."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.api.keys import ApiKey

    with Session(engine()) as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            console.print(f"{key.lookup}  {key.role:<10} {key.name}  ({state})")


@keys_app.command("revoke")
def keys_revoke(lookup: Annotated[str, typer.Argument(help="The key's 8-character id.")]) -> None:
    """Revoke an API key at once."""
    from sqlalchemy.orm import Session

    from ecohub.api.keys import revoke_key

    with Session(engine()) as session:
        if not revoke_key(session, lookup):
            err_console.print(f"[red]no active key {lookup}[/red]")
            raise typer.Exit(1)
        session.commit()
    console.print(f"revoked {lookup}")


if __name__ == "__main__":
    app()
