"""``ecohub assess annual``: compute and store a year's HJ 663-2013 assessment of every
air station and city from the store's daily rollups, and print the national figures
and the cleanest and most polluted cities (or one city's report card)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from ecohub.assessment import service
from ecohub.assessment.rules import POLLUTANTS
from ecohub.commands import console, fail, progress
from ecohub.commands import engine as _engine

assess_app = typer.Typer(help="Annual air quality assessment (HJ 663-2013).", no_args_is_help=True)


def _figure(value: float | None, pollutant: str) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if pollutant == "CO" else f"{round(value):d}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _verdict(value: bool | None) -> str:
    return "not assessed" if value is None else ("meets" if value else "exceeds")


def _national(report: dict[str, Any]) -> None:
    nation = report["national"]
    console.print(
        f"[bold]{report['year']}[/bold]: {nation['stations']} stations, {nation['cities']} "
        f"cities, {nation['cities_assessed']} with a valid year of all six pollutants "
        "(GB 3095-2012 Table 4)"
    )
    table = Table("national", *POLLUTANTS, title="Mean of the cities' annual values")
    table.add_row("value", *(_figure(nation["means"][p], p) for p in POLLUTANTS))
    table.add_row("unit", *(report["limits"][p]["unit"] for p in POLLUTANTS))
    table.add_row("cities", *(str(nation["cities_counted"][p]) for p in POLLUTANTS))
    console.print(table)
    console.print(
        f"cities meeting grade II in all six: {nation['cities_meeting_grade_2']} of "
        f"{nation['cities_assessed']} ({_percent(nation['share_meeting_grade_2'])}); "
        f"mean good-day ratio {_percent(nation['good_ratio'])}"
    )


def _cities(title: str, cities: list[dict[str, Any]]) -> None:
    # The city's name and code are never cut short, however narrow the terminal.
    city_column = Column("city", min_width=14, overflow="fold")
    table = Table(
        "rank", city_column, "index", "primary", *POLLUTANTS, "good days", "valid", title=title
    )
    for city in cities:
        table.add_row(
            str(city["rank"]) if city["rank"] is not None else "—",
            f"{city['name']} {city['code']}",
            "—" if city["index"] is None else f"{city['index']:.2f}",
            city["primary"] or "",
            *(_figure(city["pollutants"][p]["figure"], p) for p in POLLUTANTS),
            _percent(city["good_ratio"]),
            "yes" if city["valid"] else "no",
        )
    console.print(table)


def _card(card: dict[str, Any]) -> None:
    city = card["city"]
    console.print(
        f"[bold]{city['name']} {city['code']}[/bold] {card['year']}: rank "
        f"{city['rank'] if city['rank'] is not None else '—'} of {card['cities_ranked']}, "
        f"index {city['index'] if city['index'] is not None else '—'}, grade II "
        f"{_verdict(city['compliant_grade_2'])}, good days {city['good_days']} of "
        f"{city['aqi_days']} ({_percent(city['good_ratio'])}), {city['stations']} stations"
    )
    table = Table(
        "pollutant", "unit", "mean", "percentile", "multiple II", "grade II", "valid days", "valid"
    )
    for name in POLLUTANTS:
        f = city["pollutants"][name]
        table.add_row(
            name,
            f["unit"],
            _figure(f["mean"], name),
            f"{_figure(f['percentile'], name)} (P{f['percentile_rank']})",
            "—" if f["multiple_grade_2"] is None else f"{f['multiple_grade_2']:.2f}",
            _verdict(f["compliant_grade_2"]),
            str(f["valid_days"]),
            "yes" if f["valid"] else "no",
        )
    console.print(table)


@assess_app.command("annual")
def annual(
    year: Annotated[
        int | None, typer.Option(help="Local calendar year; default: the newest with data.")
    ] = None,
    city: Annotated[str | None, typer.Option(help="Print this city's report card.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False,
    top: Annotated[int, typer.Option(min=0, help="Cities listed at each end.")] = 10,
) -> None:
    """Compute and store the year's annual assessment (HJ 663-2013): every station and
    city, the comprehensive-index ranking, good-day ratios and the national figures."""
    store = _engine()
    year = year if year is not None else service.newest_year(store)
    if year is None:
        raise fail("no daily air-quality data in the store")
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"assess {year}: stations read", total=1)
        report = service.assess(
            store, year, lambda done, total: bar.update(task, completed=done, total=total)
        )
    if report is None:
        raise fail(f"no valid daily air-quality data in {year}")
    seconds = time.perf_counter() - started
    try:
        found: dict[str, Any] = (
            service.fetch_city(store, year, city) if city else service.fetch_cities(store, year)
        )
    except service.NoAssessment as error:
        raise fail(str(error)) from error
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=1))
        return
    if city:
        _card(found)
        return
    _national(found)
    ranked = [c for c in found["cities"] if c["rank"] is not None and c["valid"]]
    if ranked and top:
        _cities(f"Cleanest {min(top, len(ranked))} cities", ranked[:top])
        _cities(f"Most polluted {min(top, len(ranked))} cities", ranked[-top:][::-1])
    elif top:
        console.print("no city has a valid year: the ranking below uses incomplete data")
        _cities("Cities by the comprehensive index (invalid years)", found["cities"][:top])
    console.print(
        f"assessed {len(report.stations)} stations and {len(report.cities)} cities in "
        f"{seconds:.1f} s; stored (see /assessment/annual?year={year})"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(assess_app, name="assess")
