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
        list[Path],
        typer.Argument(
            help="china_sites_YYYYMMDD.csv files, folders of them, or archives of them "
            "(.tar.xz and other tar compressions, .zip) as distributed.",
            exists=True,
        ),
    ],
    register_unknown: Annotated[
        bool,
        typer.Option(help="Register stations missing from the registry (code only) first."),
    ] = False,
) -> None:
    """Import CNEMC hourly station files into the store (hourly PM2.5, PM10, SO2, NO2,
    O3, CO per station) with a progress bar over files and values: quality flags,
    hourly and daily rollups and station AQI as the ingestion pipeline computes them,
    checked and rolled up a day at a time (bulk import of history raises no live alarms).

    Archives are read member by member without unpacking. Each station needs a
    monitoring point whose code is the station code (see `ecohub import stations`);
    values of other stations are skipped and reported in the quarantine, once per
    station and file. A file or member that cannot be read is reported by name and
    quarantined, and the others are imported (exit code 1; 0 when every file was
    read). Re-importing a file changes nothing; a file overlapping stored hours with
    other values goes through the pipeline.
    """
    from ecohub.ingest.cnemc import register_stations, site_points
    from ecohub.ingest.cnemc_bulk import count_members, header_stations, import_station_files

    store = engine()
    if register_unknown:
        codes = header_stations(paths)
        added = register_stations(store, codes - set(site_points(store)), actor())
        console.print(f"registered {added} new stations")
    total = count_members(paths)
    with progress() as bar:
        files = bar.add_task("CNEMC files", total=total)
        values = bar.add_task("values", total=0)
        seen = {"files": 0, "values": 0}

        def on_file(name: str, count: int) -> None:
            seen["files"] += 1
            seen["values"] += count
            # Values still to come, estimated from the files read so far.
            expected = seen["values"] * total // max(seen["files"], 1)
            bar.update(files, advance=1, description=f"import {name}")
            bar.update(values, advance=count, total=max(expected, seen["values"]))

        result = import_station_files(store, paths, on_file=on_file)
        bar.update(values, total=seen["values"])
    days = ", ".join(f"{count} {path}" for path, count in result.days.items() if count)
    console.print(
        f"{result.files} files, {result.values_read:,} values read: {result.written:,} "
        f"written ({result.flagged:,} with a quality flag), {result.unchanged:,} already "
        f"stored" + (f"; days: {days}" if days else "")
    )
    if result.reflagged:
        console.print(f"{result.reflagged:,} stored values re-flagged by the new ones")
    if result.unknown_stations:
        err_console.print(
            f"{len(result.unknown_stations)} stations not in the registry were skipped "
            "(see `ecohub quarantine list --source cnemc`; `--register-unknown` adds them)"
        )
    for name, reason in result.bad_files:
        err_console.print(f"[red]bad file[/red] {name}: {reason}")
    if result.bad_files:
        err_console.print(
            f"{len(result.bad_files)} file(s) rejected and quarantined; the others were imported"
        )
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
    optionally interval (rt, min, hour, day) and flag (HJ 212 data flag). Each file is
    checked whole first (UTF-8, header, CSV structure): one that cannot be read is
    refused, naming its line, before anything is stored. Bad rows are quarantined with
    their line number and reason; the good rows around them are stored. Re-importing a
    file changes nothing.

    Exit status: 0 all imported, 1 some rows rejected (the rest imported), 2 a file could
    not be read (nothing of it imported), 3 the store refused (busy after its retries:
    the lines stored are said; import the file again to finish).
    """
    from rich.markup import escape

    from ecohub.config import get_settings
    from ecohub.ingest.files import FileFormatError, ImportStopped, check_file
    from ecohub.ingest.files import import_measurement_file as import_file
    from ecohub.ingest.pipeline import Pipeline

    attempts = get_settings().store_busy_retries
    pipeline = Pipeline(engine())
    status = 0
    with progress() as bar:
        for path in sorted(paths):
            try:
                total = check_file(path)
            except FileFormatError as error:
                err_console.print(f"[red]{escape(str(error))}[/red]; nothing of it imported")
                status = max(status, 2)
                continue
            task = bar.add_task(f"import {path.name}", total=total)

            def advance(done: int, task_id: TaskID = task) -> None:
                bar.update(task_id, completed=done)

            try:
                result = import_file(
                    pipeline, path, progress=advance, attempts=attempts, check=False
                )
            except FileFormatError as error:  # changed since it was checked
                err_console.print(f"[red]{escape(str(error))}[/red]")
                status = max(status, 2)
                continue
            except ImportStopped as error:
                err_console.print(f"[red]stopped[/red] {escape(str(error))}")
                status = 3
                break
            console.print(
                f"{path.name}: {result.rows:,} rows, {result.values:,} values — "
                f"{result.written:,} written, {result.unchanged:,} already stored, "
                f"{result.flagged:,} flagged by quality control, {result.rejected:,} rejected"
                + (f" ({result.reasons})" if result.reasons else ""),
                markup=False,
            )
            for reason in result.rejections:
                err_console.print(f"rejected {reason}", markup=False)
            if result.rejected > len(result.rejections):
                err_console.print(
                    f"… {result.rejected - len(result.rejections):,} more rejected rows "
                    "(`ecohub quarantine list --source file`)",
                    markup=False,
                )
            if result.rejected:
                status = max(status, 1)
    if status:
        raise typer.Exit(status)


def register(app: typer.Typer) -> None:
    """Add these groups to ``app``."""
    from ecohub.ingest.cli_sources import add_commands
    from ecohub.ingest.cli_validate import validate_app

    add_commands(import_app)
    app.add_typer(import_app, name="import")
    app.add_typer(validate_app, name="validate")
