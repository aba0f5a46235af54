"""``ecohub complaints``: the handling agencies and their staff, a call centre's CSV
records, the events with their deadlines, one event, the evidence beside a complaint,
the statistics, and the overdue sweep (under the actor ``ECOHUB_ACTOR``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ecohub.clock import local_time, utcnow
from ecohub.commands import actor, console, fail, progress
from ecohub.commands import engine as _engine
from ecohub.complaints import handling, queries, service
from ecohub.complaints.evidence import evidence_for
from ecohub.complaints.intake import ComplaintError
from ecohub.complaints.overdue import sweep_overdue_complaints
from ecohub.config import get_settings

complaints_app = typer.Typer(
    help="Public complaints (12369): agencies, CSV intake, events, evidence, statistics.",
    no_args_is_help=True,
)


def _print(document: Any) -> None:
    console.print_json(json.dumps(document, default=str, ensure_ascii=False))


@complaints_app.command("agency")
def add_agency(
    code: str,
    name: str,
    region: Annotated[str, typer.Argument(help="GB/T 2260 code of its area")],
    medium: Annotated[list[str] | None, typer.Option(help="media it handles (repeatable)")] = None,
    parent: Annotated[str | None, typer.Option(help="the agency above it")] = None,
) -> None:
    """Add or change a handling agency."""
    try:
        handling.add_agency(_engine(), code, name, region, actor(), tuple(medium or ()), parent)
    except ComplaintError as error:
        raise fail(str(error)) from None
    console.print(f"agency {code} saved")


@complaints_app.command("handler")
def add_handler(account: str, agency: str) -> None:
    """Make a user or key (by its name) staff of an agency."""
    try:
        handling.add_handler(_engine(), account, agency, actor())
    except ComplaintError as error:
        raise fail(str(error)) from None
    console.print(f"{account} handles complaints for {agency}")


@complaints_app.command("import")
def import_csv(path: Path) -> None:
    """File a call centre's records (CSV, UTF-8: ref, medium, text, longitude, latitude,
    observed_at; optional address, contact, anonymous, channel). Bad lines are listed
    and skipped; the good ones filed; a re-import files nothing twice."""
    settings = get_settings()
    engine = _engine()
    data = path.read_bytes()
    rows = max(data.count(b"\n") - 1, 0)
    with progress() as bar:
        task = bar.add_task(f"filing {path.name}", total=rows)
        try:
            report = service.import_csv(
                engine,
                settings,
                data,
                str(path),
                actor(),
                progress=lambda done: bar.advance(task, done),
            )
        except ComplaintError as error:
            raise fail(str(error)) from None
        bar.update(task, completed=rows)  # refused lines count as read
    for line in report.errors[:50]:
        console.print(f"[yellow]{line}[/yellow]")
    if len(report.errors) > 50:
        console.print(f"[yellow]… and {len(report.errors) - 50} more refused lines[/yellow]")
    console.print(
        f"filed {len(report.filed):,} complaints, {report.repeated:,} already filed, "
        f"{len(report.errors):,} lines refused"
    )
    if report.errors:
        raise typer.Exit(1)


@complaints_app.command("events")
def list_events(
    agency: Annotated[str | None, typer.Option(help="an agency's events (default: all)")] = None,
    overdue: bool = False,
    status: str | None = None,
    limit: int = 50,
) -> None:
    """Events with their deadlines."""
    rows = queries.list_events(_engine(), [agency] if agency else None, status, overdue, limit)
    table = Table("id", "medium", "status", "agency", "complaints", "received", "overdue", "title")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["medium"],
            row["status"],
            row["agency_code"] or "-",
            str(row["complaint_count"]),
            local_time(row["received_at"]),
            ", ".join(d["rule"] for d in row["deadlines"] if d["overdue"]) or "",
            row["title"][:40],
        )
    console.print(table)


@complaints_app.command("show")
def show(event_id: int) -> None:
    """One event with its complaints and steps (no contact details here)."""
    found = queries.get_event(_engine(), event_id, None, None)
    if found is None:
        raise fail(f"no event {event_id}")
    _print(found)


@complaints_app.command("evidence")
def evidence(complaint_id: int, radius_m: float = 3000.0, hours: int = 6) -> None:
    """The evidence beside one complaint."""
    found = evidence_for(_engine(), complaint_id, radius_m, hours)
    if found is None:
        raise fail(f"no complaint {complaint_id}")
    _print(found)


@complaints_app.command("stats")
def stats(days: int = 365) -> None:
    """Public statistics of the last ``days`` days."""
    end = utcnow()
    _print(queries.statistics_of(_engine(), end - dt.timedelta(days=days), end))


@complaints_app.command("sweep")
def sweep() -> None:
    """Open and close overdue-handling alarms; close events past their review window."""
    events = sweep_overdue_complaints(_engine())
    console.print(f"{len(events)} alarm events")


def register(app: typer.Typer) -> None:
    app.add_typer(complaints_app, name="complaints")
