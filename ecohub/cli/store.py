"""Commands of the ground and domain floors: ``ecohub init``, ``ecohub export``,
``ecohub registry`` (import, summary) and ``ecohub quarantine`` (list)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecohub.commands import (
    actor,
    console,
    engine,
    err_console,
    parse_time,
    print_counts,
    print_report,
    progress,
)
from ecohub.db.quarantine import list_quarantine
from ecohub.registry.importer import KINDS, import_file

registry_app = typer.Typer(help="Regions, sites, enterprises, permits, outlets and points.")
quarantine_app = typer.Typer(help="Rejected input kept for review.")


def init() -> None:
    """Create or upgrade the store's schema and load the parameter code table."""
    store = engine()
    console.print(f"store ready: {store.url.render_as_string(hide_password=True)}")


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

    Each file is checked whole first (UTF-8, structure, columns), then imported in one
    transaction (more than ECOHUB_IMPORT_CHUNK_RECORDS records: in chunks of that many,
    each committed and reported). Good records are imported even when others are
    rejected; rejected ones are printed with their line and reason and quarantined.

    Exit status: 0 all imported, 1 some records rejected (the rest imported), 2 a file
    could not be read (nothing of it imported), 3 the store refused (busy after its
    retries: what was stored is said; run the same import again to finish).
    """
    from rich.markup import escape

    from ecohub.config import get_settings
    from ecohub.registry.importer import ImportInterrupted, RegistryFileError

    settings = get_settings()
    store = engine()
    rejected = 0
    for path in paths:
        try:
            report = import_file(
                store,
                path,
                actor(),
                kind,
                chunk_records=settings.import_chunk_records,
                attempts=settings.store_busy_retries,
                lock_timeout=settings.store_busy_timeout,
            )
        except RegistryFileError as error:
            err_console.print(f"[red]error[/red] {escape(str(error))}; nothing of it imported")
            raise typer.Exit(2) from error
        except ImportInterrupted as error:
            if error.report.records:
                print_report(error.report, path.name)
            err_console.print(f"[red]stopped[/red] {path.name}: {escape(str(error))}")
            raise typer.Exit(3) from error
        print_report(report, path.name)
        if len(report.chunks) > 1:
            console.print(f"{path.name}: {len(report.chunks)} chunks committed", markup=False)
        rejected += len(report.rejected)
    if rejected:
        raise typer.Exit(1)


@registry_app.command("summary")
def registry_summary() -> None:
    """Print how many records of each kind the registry and store hold."""
    print_counts(engine())


def export(
    out: Annotated[Path, typer.Option(help="File to write.")],
    start: Annotated[str, typer.Option(help="Start (inclusive), ISO; no offset = UTC+8.")],
    end: Annotated[str, typer.Option(help="End (exclusive), ISO; no offset = UTC+8.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    interval: Annotated[str | None, typer.Option(help="Only rt, min, hour or day.")] = None,
    point: Annotated[str | None, typer.Option(help="Only this monitoring point code.")] = None,
) -> None:
    """Export observations of a time range to CSV or Parquet (timestamps in UTC)."""
    from ecohub.timeseries.export import count_range, export_range

    if fmt not in {"csv", "parquet"}:
        raise typer.BadParameter(f"format {fmt!r}: use csv or parquet", param_hint="--format")
    store = engine()
    begin, finish = parse_time(start), parse_time(end)
    if finish <= begin:
        raise typer.BadParameter("end must be after start", param_hint="--end")
    total = count_range(store, begin, finish, interval, point)
    with progress() as bar:
        task = bar.add_task(f"export {out.name}", total=total)
        written = export_range(
            store,
            out,
            fmt,
            begin,
            finish,
            interval=interval,
            point_code=point,
            progress=lambda n: bar.advance(task, n),
        )
    console.print(f"wrote {written:,} rows to {out}")


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
        repeated = f" ×{row.times}" if row.times > 1 else ""
        heading = f"{received} UTC {row.source}{peer} [{row.reason_code}]{repeated}"
        console.print(heading, soft_wrap=True, markup=False, style="bold")
        console.print(f"  reason: {row.reason}", soft_wrap=True, markup=False)
        console.print(f"  raw:    {row.raw}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    """Add these commands and groups to ``app``."""
    app.command()(init)
    app.command()(export)
    app.add_typer(registry_app, name="registry")
    app.add_typer(quarantine_app, name="quarantine")
