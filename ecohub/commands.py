"""The kit every area's command group (``<area>/cli.py``) shares: the consoles, the store
of the configured installation, times as users type them, progress bars and the import
report.

The ``ecohub`` command itself is assembled in :mod:`ecohub.cli.main`. Commands import
the heavier libraries they alone use (Polars, Alembic, httpx, argon2) when they run: the
gateway's writer process imports the command modules again on start (``multiprocessing``
spawns it from ``ecohub serve``), and these took 43 MB of its memory.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine

from ecohub.clock import CST
from ecohub.config import get_settings
from ecohub.db.engine import make_engine

console = Console()
err_console = Console(stderr=True)


def engine() -> Engine:
    """The engine of the configured store, migrated to the current schema."""
    from ecohub.db.migrate import upgrade

    created = make_engine(get_settings().database_url)
    upgrade(created)
    return created


def actor() -> str:
    """The name this process writes to the audit log (``ECOHUB_ACTOR``)."""
    return get_settings().actor


def parse_time(text: str) -> dt.datetime:
    """An ISO time; without an offset it is taken as China Standard Time (UTC+8)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not an ISO date or time") from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return value


def progress() -> Progress:
    """A progress bar on standard error: description, bar, done/total, time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=err_console,
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` in red on standard error; returns the exit to raise."""
    err_console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


def print_report(report: Any, name: str) -> None:
    """A registry import report: what was imported (new or changed, and unchanged), what
    was rejected and where."""
    changed = {
        kind: count - report.unchanged.get(kind, 0) for kind, count in report.accepted.items()
    }
    written = ", ".join(f"{count} {kind}" for kind, count in changed.items() if count)
    same = sum(report.unchanged.values())
    if written:
        console.print(f"{name}: imported {written}" + (f"; {same} unchanged" if same else ""))
    elif same:
        console.print(f"{name}: unchanged ({same} records already as given)")
    else:
        console.print(f"{name}: imported nothing")
    for where, reason in report.rejected:
        err_console.print(f"[red]rejected[/red] {where}: {reason}")
    if report.rejected:
        err_console.print(
            f"{len(report.rejected)} record(s) rejected and quarantined "
            "(see `ecohub quarantine list --source registry`)"
        )


def print_counts(store: Engine) -> None:
    """How many records of each kind the registry and store hold."""
    from ecohub.timeseries.summary import counts

    table = Table("what", "count", title="EcoHub store")
    for name, count in counts(store).items():
        table.add_row(name, f"{count:,}")
    console.print(table)
