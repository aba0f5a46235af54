"""``ecohub lake``: export closed months to the Parquet lake, check it against its
manifest, query it with SQL on DuckDB, and run the national analyses over it on DuckDB
or Spark (``--engine spark --master spark://host:7077``)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ecohub.clock import utcnow
from ecohub.commands import console, fail, progress
from ecohub.commands import engine as _engine
from ecohub.config import get_settings
from ecohub.textio import csv_cell

lake_app = typer.Typer(
    help="The Parquet lake: export, query, national analyses.", no_args_is_help=True
)

LakeOption = Annotated[
    Path | None, typer.Option("--lake", help="The lake's folder; default: <var>/lake.")
]
EngineOption = Annotated[str, typer.Option("--engine", help="duckdb or spark.")]
MasterOption = Annotated[
    str, typer.Option("--master", help="Spark master URL (local[2], spark://host:7077, yarn).")
]


def _lake(path: Path | None) -> Path:
    return path if path is not None else Path(get_settings().var_dir) / "lake"


@lake_app.command("export")
def export_command(
    lake: LakeOption = None,
    delay: Annotated[
        float, typer.Option(help="Hours after a month's end before it is closed.")
    ] = 72.0,
    table: Annotated[
        list[str] | None, typer.Option(help="observations, rollups or station_aqi (repeat).")
    ] = None,
) -> None:
    """Export every closed month the lake lacks or holds in an older state."""
    from ecohub.lake.export import TABLES, DetachedMonthChanged, export

    tables = tuple(table or TABLES)
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise fail(f"unknown table(s): {', '.join(sorted(unknown))}")
    folder = _lake(lake)
    refused: DetachedMonthChanged | None = None
    with progress() as bar:
        task = bar.add_task("export", total=0)  # known after the first month
        try:
            report = export(
                _engine(),
                folder,
                now=utcnow(),
                delay=dt.timedelta(hours=delay),
                timezone=get_settings().timezone,
                tables=tables,
                on_progress=lambda done, total, what: bar.update(
                    task, completed=done, total=total, description=what
                ),
            )
        except DetachedMonthChanged as error:
            refused, report = error, error.report
    for what in report.written:
        console.print(f"written {what}")
    for what in report.removed:
        console.print(f"removed {what} (no rows left in the store)")
    console.print(
        f"{len(report.written)} month(s) written ({report.rows:,} rows), {report.unchanged} "
        f"unchanged, {len(report.detached)} detached (kept), {len(report.open)} open; points "
        f"{'written' if report.points_written else 'unchanged'}; lake {folder}"
    )
    if refused is not None:
        raise fail("refused: " + "\n".join(refused.report.refused))


@lake_app.command("detach")
def detach_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM (a Beijing month, as the partitions)")],
    lake: LakeOption = None,
    drop: Annotated[
        bool, typer.Option(help="drop the detached tables (the lake keeps the month)")
    ] = False,
) -> None:
    """Detach an old month's partitions from the store (PostgreSQL) once the lake holds it."""
    from ecohub.lake.detach import NotInLake, detach_exported

    try:
        first = dt.date.fromisoformat(f"{month}-01")
        names = detach_exported(
            _engine(), _lake(lake), first, timezone=get_settings().timezone, drop=drop
        )
    except (NotInLake, LookupError, ValueError) as error:
        raise fail(str(error)) from None
    if not names:
        console.print("the store is not partitioned (SQLite): nothing to detach")
    for name in names:
        console.print(f"{'dropped' if drop else 'detached'} {name}")


@lake_app.command("check")
def check_command(lake: LakeOption = None) -> None:
    """Check every file of the lake against the manifest (size and SHA-256)."""
    from ecohub.lake.manifest import check

    report = check(_lake(lake))
    for kind, paths in (
        ("missing", report.missing),
        ("corrupted", report.corrupted),
        ("unlisted", report.unlisted),
    ):
        for path in paths:
            console.print(f"[red]{kind}[/red] {path}")
    console.print(f"{report.checked} file(s) checked: {'ok' if report.ok else 'problems'}")
    if not report.ok:
        raise typer.Exit(1)


@lake_app.command("query")
def query_command(
    sql: Annotated[
        str, typer.Argument(help="SQL over observations, rollups, station_aqi, points.")
    ],
    lake: LakeOption = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
) -> None:
    """Run SQL over the lake with DuckDB and print the answer as a table or CSV."""
    import duckdb

    from ecohub.lake.query import run

    try:
        frame = run(_lake(lake), sql)
    except duckdb.Error as error:
        raise fail(str(error)) from error
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(frame.columns)
        writer.writerows([csv_cell(v) for v in row] for row in frame.iter_rows())
        return
    table = Table(*frame.columns)
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def _assess(lake: Path, year: int, engine: str, master: str) -> Any:
    from ecohub.lake import analyses

    if engine == "duckdb":
        return analyses.assess_duckdb(lake, year)
    if engine == "spark":
        from ecohub.lake.spark_jobs import assess_spark, session

        return assess_spark(session(master), lake, year)
    raise fail(f"unknown engine {engine!r}: duckdb or spark")


@lake_app.command("assess")
def assess_command(
    year: Annotated[int, typer.Option(help="Local calendar year.")],
    lake: LakeOption = None,
    engine: EngineOption = "duckdb",
    master: MasterOption = "local[2]",
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON.")] = False,
    top: Annotated[int, typer.Option(min=0, help="Cities listed.")] = 20,
) -> None:
    """The year's annual assessment (HJ 663-2013) of every station and city over the
    lake: the ranking, good-day ratios and national figures (as `ecohub assess annual`)."""
    started = time.perf_counter()
    report = _assess(_lake(lake), year, engine, master)
    if report is None:
        raise fail(f"the lake holds no daily values of {year}")
    seconds = time.perf_counter() - started
    if as_json:
        document = {
            "year": year,
            "stations": report.stations,
            "cities": report.cities,
            "national": report.nation,
        }
        typer.echo(json.dumps(document, ensure_ascii=False, indent=1))
        return
    table = Table("rank", "city", "index", "primary", "PM2.5", "good days", "valid")
    for city in report.cities[:top]:
        table.add_row(
            "—" if city["rank"] is None else str(city["rank"]),
            f"{city['name']} {city['code']}",
            "—" if city["index"] is None else f"{city['index']:.2f}",
            city["primary"] or "",
            str(city["pollutants"]["PM2.5"]["figure"]),
            "—" if city["good_ratio"] is None else f"{100 * city['good_ratio']:.1f}%",
            "yes" if city["valid"] else "no",
        )
    console.print(table)
    nation = report.nation
    console.print(
        f"{year}: {nation['stations']} stations, {nation['cities']} cities "
        f"({nation['cities_assessed']} with a valid year), mean good-day ratio "
        f"{nation['good_ratio']}; {engine} in {seconds:.1f} s"
    )


@lake_app.command("trend")
def trend_command(
    years: Annotated[str, typer.Option(help="First and last year, e.g. 2015-2019.")],
    pollutant: Annotated[str, typer.Option(help="SO2, NO2, PM10, PM2.5, CO or O3.")] = "PM2.5",
    scope: Annotated[str, typer.Option(help="city or station.")] = "city",
    lake: LakeOption = None,
    engine: EngineOption = "duckdb",
    master: MasterOption = "local[2]",
) -> None:
    """Mann-Kendall trend and Sen's slope of each city's annual figure over the years."""
    from ecohub.lake.analyses import trends

    first, _, last = years.partition("-")
    try:
        span = range(int(first), int(last or first) + 1)
    except ValueError as error:
        raise fail(f"--years {years!r}: expected e.g. 2015-2019") from error
    folder = _lake(lake)
    try:
        if engine == "spark":  # one session for every year
            from ecohub.lake.spark_jobs import session, trends_spark

            found = trends_spark(session(master), folder, list(span), pollutant, scope)
        else:
            reports = [r for y in span if (r := _assess(folder, y, engine, master)) is not None]
            found = trends(reports, pollutant, scope)
    except ValueError as error:
        raise fail(str(error)) from error
    table = Table(scope, "years", "S", "p", "Sen's slope/yr", "trend")
    for row in found:
        table.add_row(
            f"{row['name']} {row['code']}",
            str(len(row["years"])),
            str(row["s"]),
            "—" if row["p"] is None else f"{row['p']:.3f}",
            "—" if row["slope"] is None else f"{row['slope']:.2f}",
            row["trend"],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(lake_app, name="lake")
