"""``ecohub partitions``: the monthly partitions of the observation and rollup tables on
PostgreSQL (:mod:`ecohub.timeseries.partitions`): list them, create months ahead or for an
import of old files, move months out of the DEFAULT partition, detach a month for the
lake and attach it again. On SQLite every command says there is nothing to do.

The store is opened here (settings, migrations) rather than through the command kit
(``ecohub.commands``), which stands on this package.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from ecohub.config import get_settings
from ecohub.db.engine import make_engine
from ecohub.timeseries import partitions

partitions_app = typer.Typer(
    help="Monthly partitions of observations and rollups (PostgreSQL): list, create, detach."
)
console = Console()
err_console = Console(stderr=True)


def _engine() -> Engine:
    from ecohub.db.migrate import upgrade

    created = make_engine(get_settings().database_url)
    upgrade(created)
    return created


def _month(text: str) -> dt.date:
    try:
        return partitions.parse_month(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error


def _partitioned(store: Engine) -> bool:
    if partitions.is_partitioned(store):
        return True
    console.print(f"[yellow]{partitions.NOT_PARTITIONED}[/yellow]")
    return False


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{message}[/red]")
    return typer.Exit(2)


def _created(names: list[str]) -> None:
    for name in names:
        console.print(f"created {name}")
    if not names:
        console.print("every partition already exists")


@partitions_app.command("list")
def partitions_list(
    exact: Annotated[
        bool, typer.Option("--exact", help="Count the rows (a scan of each partition).")
    ] = False,
) -> None:
    """List the partitions and detached months with their bounds and rows."""
    store = _engine()
    if not _partitioned(store):
        return
    found_partitions = partitions.list_partitions(store, exact=exact)
    table = Table("state", "rows", "from (UTC)", "to (UTC)")
    table.add_column(
        "partition", no_wrap=True, min_width=max(len(f.name) for f in found_partitions)
    )
    for found in found_partitions:
        rows = "?" if found.rows is None else f"{found.rows:,}"
        state = "attached" if found.attached else "detached"
        lower = upper = ""
        if found.month is not None:
            lower = f"{partitions.month_start(found.month):%Y-%m-%d %H:%M}"
            upper = f"{partitions.month_start(partitions.next_month(found.month)):%Y-%m-%d %H:%M}"
        table.add_row(state, rows, lower, upper, found.name)
    console.print(table)
    if not exact:
        console.print("rows: PostgreSQL's estimates (--exact counts them)")


@partitions_app.command("ahead")
def partitions_ahead(
    months: Annotated[int, typer.Option(min=0, max=120, help="Months after this one.")] = 3,
) -> None:
    """Create the partitions of this month and the next ones (idempotent)."""
    store = _engine()
    if _partitioned(store):
        _created(partitions.ensure_ahead(store, months))


@partitions_app.command("create")
def partitions_create(
    first: Annotated[str, typer.Argument(help="First month, YYYY-MM.")],
    last: Annotated[str | None, typer.Argument(help="Last month (default: the first).")] = None,
) -> None:
    """Create the partitions of a span of months, e.g. before importing old files."""
    start, end = _month(first), _month(last or first)
    if end < start or (end.year - start.year) * 12 + end.month - start.month > 1200:
        raise _fail(f"{first} … {last}: not a span of at most 100 years")
    wanted = [start]
    while wanted[-1] < end:
        wanted.append(partitions.next_month(wanted[-1]))
    store = _engine()
    if _partitioned(store):
        _created(partitions.ensure_months(store, wanted))


@partitions_app.command("split-default")
def partitions_split_default() -> None:
    """Give each month found in the DEFAULT partitions its own partition."""
    store = _engine()
    if _partitioned(store):
        _created(partitions.split_default(store))


@partitions_app.command("detach")
def partitions_detach(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM (not this or last month).")],
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop the detached tables (their rows are gone).")
    ] = False,
) -> None:
    """Detach a month's partitions without asking the lake (`ecohub lake detach` checks
    first that the lake holds the month, and marks it there: prefer it)."""
    store = _engine()
    if not _partitioned(store):
        return
    err_console.print(
        "[yellow]the lake is not checked: `ecohub lake detach` detaches a month only once "
        "the lake holds it[/yellow]"
    )
    try:
        names = partitions.detach(store, _month(month), keep_table=not drop)
    except (ValueError, LookupError) as error:
        raise _fail(str(error)) from error
    for name in names:
        console.print(f"{'dropped' if drop else 'detached'} {name}")


@partitions_app.command("attach")
def partitions_attach(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
) -> None:
    """Attach a detached month again, merging its rows that arrived meanwhile; the next
    `ecohub lake export` clears the lake's detached mark and exports the month again."""
    store = _engine()
    if not _partitioned(store):
        return
    try:
        names = partitions.attach(store, _month(month))
    except LookupError as error:
        raise _fail(str(error)) from error
    for name in names:
        console.print(f"attached {name}")
    if not names:
        console.print(f"{month}: already attached")


def register(app: typer.Typer) -> None:
    app.add_typer(partitions_app, name="partitions")
