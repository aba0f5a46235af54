"""``ecohub permits``: a month's emissions accounting and environmental protection tax of
an enterprise from its monitoring data."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ecohub.commands import console, fail
from ecohub.commands import engine as _engine
from ecohub.permits.accounting import AccountingError, enterprise_year
from ecohub.permits.api import parse_month
from ecohub.permits.tax import month_tax

permits_app = typer.Typer(
    help="Permits: emissions accounting and the environmental protection tax.",
    no_args_is_help=True,
)


@permits_app.command("tax")
def tax(
    uscc: str,
    month: Annotated[str, typer.Argument(help="YYYY-MM (Beijing calendar)")],
    zone: Annotated[str | None, typer.Option(help="the province's rate zone (河北: 一档…)")] = None,
) -> None:
    """The month's emissions of every outlet and its tax, every step (JSON)."""
    try:
        year, number = parse_month(month)
        found = month_tax(_engine(), uscc, year, number, zone=zone)
    except (AccountingError, ValueError) as error:
        raise fail(str(error)) from None
    console.print_json(json.dumps(found, default=str, ensure_ascii=False))


@permits_app.command("emissions")
def emissions(uscc: str, year: int) -> None:
    """The year's emissions of every outlet's pollutants against the permit's annual mass
    limits, month by month (JSON)."""
    try:
        found = enterprise_year(_engine(), uscc, year)
    except AccountingError as error:
        raise fail(str(error)) from None
    console.print_json(json.dumps(found, default=str, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(permits_app, name="permits")
