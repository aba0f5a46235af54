"""``ecohub import`` (CNEMC hourly station files, station lists, measurement files) and
``ecohub validate`` (the standards against published figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID

from ecohub.commands import actor, console, engine, err_console, fail, print_report, progress

import_app = typer.Typer(help="Import data files (CNEMC hourly station files, station lists).")


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
        added = register_stations(store, codes - set(known), actor())
        console.print(f"registered {added} new stations")
    from ecohub.ingest.pipeline import Pipeline

    points = site_points(store)
    result = ImportResult()
    pipeline = Pipeline(store)
    with progress() as bar:
        task = bar.add_task("import CNEMC files", total=len(files))
        for path in files:
            bar.update(task, description=f"import {path.name}")
            import_file_into_store(store, path, points, result, pipeline)
            bar.advance(task)
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
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="The stations/ folder of the CNEMC lists (站点列表-<date>起.csv, the old "
            "946-station list, match1.csv), or single list files.",
            exists=True,
        ),
    ],
) -> None:
    """Import the official CNEMC station lists as air sites, one monitoring point each,
    and their cities as regions (GB/T 2260).

    All list versions are read and merged into one station history: every station ever
    listed becomes a site with the name, city and coordinates of its latest listing,
    active, suspended (marked 停运) or decommissioned (gone from the latest list), and
    control sites (对照点) are marked so that city AQI leaves them out. Re-importing
    changes nothing.
    """
    from ecohub.registry.importer import import_records
    from ecohub.registry.station_lists import (
        StationList,
        StationListError,
        parse_old_station_list,
        parse_station_list,
        read_station_lists,
    )
    from ecohub.registry.stations import build_history, list_changes, registry_records

    lists: list[StationList] = []
    try:
        for path in paths:
            if path.is_dir():
                lists += read_station_lists(path)
            elif "旧" in path.name:
                lists.append(parse_old_station_list(_text(path), path.name))
            else:
                lists.append(parse_station_list(_text(path), path.name))
    except (StationListError, UnicodeDecodeError) as error:
        raise fail(f"error: {error}") from error
    if not lists:
        raise fail("no station lists found (站点列表-<date>起.csv)")
    history = build_history(lists)
    result = registry_records(history)
    changes = list_changes(history)
    console.print(
        f"{len(lists)} station lists, {len(result.records)} records: "
        f"{sum(len(c.opened) for c in changes)} stations opened, "
        f"{sum(len(c.closed) for c in changes)} closed and "
        f"{sum(len(c.moved) for c in changes)} moved between list versions; "
        f"{len(result.control_points)} control sites, {len(result.suspended)} suspended, "
        f"{len(result.decommissioned)} decommissioned"
    )
    if result.unmapped:
        console.print(
            f"{len(result.unmapped)} stations in cities without a GB/T 2260 code "
            f"(national new areas: {', '.join(sorted(set(result.unmapped.values())))}) "
            "have no region"
        )
    report = import_records(engine(), result.as_import_rows(), actor())
    print_report(report, "station lists")
    if report.rejected:
        raise typer.Exit(1)


def _text(path: Path) -> str:
    """A station list's text: UTF-8, with or without a byte-order mark."""
    return path.read_bytes().decode("utf-8-sig")


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
    with progress() as bar:
        for path in sorted(paths):
            task = bar.add_task(f"import {path.name}", total=count_rows(path))

            def advance(done: int, task_id: TaskID = task) -> None:
                bar.update(task_id, completed=done)

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






def register(app: typer.Typer) -> None:
    """Add these groups to ``app``."""
    from ecohub.ingest.cli_sources import add_commands
    from ecohub.ingest.cli_validate import validate_app

    add_commands(import_app)
    app.add_typer(import_app, name="import")
    app.add_typer(validate_app, name="validate")
