"""``ecohub validate``: the standards library against published figures — the hourly AQI
and the moving averages of CNEMC's station files, the live-publication feed, and the
surface-water classes of the national automatic stations' release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ecohub.commands import console, err_console, fail, progress

validate_app = typer.Typer(help="Check the standards library against published figures.")


def _causes(causes: object, examples: dict[str, list[str]], limit: int = 3) -> None:
    for cause, count in causes.most_common():  # type: ignore[attr-defined]
        console.print(f"  {count:>9,}  {cause}", markup=False)
        for example in examples.get(cause, [])[:limit]:
            console.print(f"             e.g. {example}", markup=False, soft_wrap=True)


@validate_app.command("aqi")
def validate_aqi(
    paths: Annotated[
        list[Path], typer.Argument(help="china_sites_YYYYMMDD.csv files.", exists=True)
    ],
    so2_above_800: Annotated[
        str,
        typer.Option(
            help="SO2 1-h above 800 μg/m³: 24h (the standard's text: its 24-h IAQI), "
            "cap (CNEMC's practice: IAQI 200), omit (leave SO2 out)."
        ),
    ] = "24h",
) -> None:
    """Recompute every station-hour's AQI (HJ 633-2012) from the published 1-hour
    concentrations and compare it with the published AQI; mismatches grouped by cause."""
    from ecohub.ingest.cnemc_validation import validate_aqi_files
    from ecohub.standards.aqi import SO2_ABOVE_800_OPTIONS

    if so2_above_800 not in SO2_ABOVE_800_OPTIONS:
        raise fail(f"--so2-above-800 must be one of {', '.join(SO2_ABOVE_800_OPTIONS)}")
    files = sorted(paths)
    with progress() as bar:
        task = bar.add_task("validate AQI", total=len(files))
        report: Any = None
        for path in files:
            step = validate_aqi_files([path], so2_above_800=so2_above_800)
            report = step if report is None else _merge_aqi(report, step)
            bar.advance(task)
    console.print(
        f"{report.files} files; station-hours compared: {report.compared:,}; "
        f"publishing concentrations but no AQI (not compared): {report.withheld:,}"
    )
    console.print(f"exact AQI match: {report.exact:,} = {report.exact_rate:.5%}", soft_wrap=True)
    console.print(
        f"  of which with fewer than six concentrations: {report.incomplete_exact:,} of "
        f"{report.incomplete_compared:,}; SO2 1-h above 800 μg/m³: {report.so2_above_800_hours:,} "
        f"hours (rule: {report.so2_above_800})"
    )
    _causes(report.causes, report.examples)
    for note in report.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)


def _merge_aqi(total: object, step: object) -> object:
    """One report over several files (the validator runs per file for the progress bar)."""
    for name in (
        "files",
        "compared",
        "exact",
        "withheld",
        "so2_above_800_hours",
        "incomplete_compared",
        "incomplete_exact",
        "primary_compared",
        "primary_matched",
    ):
        setattr(total, name, getattr(total, name) + getattr(step, name))
    for cause, count in step.causes.items():  # type: ignore[attr-defined]
        total.causes[cause] += count  # type: ignore[attr-defined]
        kept = total.examples.setdefault(cause, [])  # type: ignore[attr-defined]
        kept.extend(step.examples.get(cause, [])[: max(0, 5 - len(kept))])  # type: ignore[attr-defined]
    total.withheld_examples.extend(step.withheld_examples[:5])  # type: ignore[attr-defined]
    total.notes.extend(step.notes)  # type: ignore[attr-defined]
    return total


@validate_app.command("moving-averages")
def validate_moving_averages(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="china_sites_YYYYMMDD.csv files, folders or archives (.tar.xz, .zip), in "
            "date order; files without the moving-average rows get them recomputed."
        ),
    ],
    published: Annotated[
        list[Path] | None,
        typer.Option(
            help="Full files whose published moving averages are compared on their dates "
            "(for archives that keep only the hourly types)."
        ),
    ] = None,
    rules: Annotated[
        str, typer.Option(help="auto, standard, cnemc or cnemc-2025 (see docs/standards.md).")
    ] = "auto",
    o3_8h_rows: Annotated[
        str, typer.Option(help="auto, as_labelled or swapped (the 2025 files swap them).")
    ] = "auto",
) -> None:
    """Recompute the moving averages (PM2.5_24h … O3_8h_24h) from the hourly values
    across file boundaries (consecutive days carry over) and report agreement with the
    published ones per type, and how many were recomputed where none is published."""
    from ecohub.ingest.cnemc_moving_averages import recompute_moving_averages
    from ecohub.ingest.cnemc_moving_averages import validate_moving_averages as validate
    from ecohub.ingest.cnemc_validation import CnemcFileError

    missing = [path for path in [*paths, *(published or [])] if not path.exists()]
    if missing:
        raise fail(f"no such file: {missing[0]}")
    plain = all(path.is_file() and path.suffix.lower() == ".csv" for path in paths)
    files: list[Path] = sorted(paths, key=lambda path: path.name)
    try:
        if plain and not published:
            report = validate(files, rules=rules, o3_8h_rows=o3_8h_rows)
        else:
            if rules != "auto" or o3_8h_rows != "auto":
                raise fail("--rules and --o3-8h-rows apply to plain files only")
            report = recompute_moving_averages(paths, _csv_files(published or []))
    except (CnemcFileError, ValueError) as error:
        raise fail(str(error)) from error
    runs = ", ".join(f"{first}..{last}" for first, last in report.runs)
    console.print(f"{report.files} files in runs of consecutive days: {runs}", soft_wrap=True)
    console.print(
        "type            full windows          all windows         first day of a run"
        "   recomputed, none published",
        markup=False,
        soft_wrap=True,
    )
    for name, agreement in report.types.items():
        console.print(
            f"{name:<12} {agreement.full_exact:>9,}/{agreement.full_compared:<9,} "
            f"{_rate(agreement.full_exact, agreement.full_compared):>8}  "
            f"{agreement.exact:>9,}/{agreement.compared:<9,} "
            f"{_rate(agreement.exact, agreement.compared):>8}  "
            f"{_rate(agreement.first_day_exact, agreement.first_day_compared):>8}  "
            f"{agreement.recomputed_not_published:>12,}",
            markup=False,
            soft_wrap=True,
        )
    console.print(f"rules used: {dict(report.rules)}", markup=False)
    if report.o3_8h_swapped:
        console.print(
            f"O3_8h and O3_8h_24h rows read swapped in: {', '.join(report.o3_8h_swapped)}"
        )
    for note in report.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)


def _csv_files(paths: list[Path]) -> list[Path]:
    """Folders replaced by the ``china_sites_*.csv`` files in them."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("china_sites_*.csv")) if path.is_dir() else [path])
    return found


def _rate(exact: int, compared: int) -> str:
    return f"{exact / compared:.2%}" if compared else "-"


@validate_app.command("live")
def validate_live(
    path: Annotated[Path, typer.Argument(help="The live-publication feed (GeoJSON).", exists=True)],
    o3_1h_field: Annotated[
        str,
        typer.Option(help="The property read as 1-hour O3: o3, o3_24h or per_station."),
    ] = "o3",
) -> None:
    """Recompute each station's AQI, primary pollutant and category (HJ 633-2012) from
    the CNEMC live feed's concentrations and compare them with the published ones."""
    from ecohub.ingest.cnemc_live import LiveFeedError, parse_live_feed, validate_live_feed

    try:
        report = validate_live_feed(parse_live_feed(path.read_bytes()), o3_1h_field=o3_1h_field)
    except (LiveFeedError, ValueError) as error:
        raise fail(f"{path.name}: {error}") from error
    console.print(f"{report.records:,} stations; AQI compared: {report.compared:,}")
    console.print(f"exact AQI match: {report.exact:,} = {report.exact_rate:.2%}")
    console.print(
        f"primary pollutant: {report.primary_matched:,}/{report.primary_compared:,}; "
        f"category: {report.quality_matched:,}/{report.quality_compared:,}"
    )
    console.print(
        f"1-hour O3 that reproduces each published AQI: {dict(report.o3_reproduces)}; "
        f"o3_24h below o3 / equal / above: {dict(report.o3_order)}",
        markup=False,
        soft_wrap=True,
    )
    _causes(report.causes, report.examples)


@validate_app.command("water")
def validate_water(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="The national automatic stations' release (JSON or CSV as published), "
            "or CSV of published results (site, time, class, water_body, parameters).",
            exists=True,
        ),
    ],
    year: Annotated[
        int | None,
        typer.Option(help="Year of the release's MM-DD times (default: the current year)."),
    ] = None,
) -> None:
    """Recompute each published section's GB 3838-2002 class and compare; rows without a
    published class are counted apart, every row the rule cannot explain is listed."""
    from ecohub.ingest.cnemc_water import CnemcWaterFormatError
    from ecohub.ingest.water_files import WaterValidation, validate_water_file

    report = WaterValidation()
    for path in paths:
        try:
            validate_water_file(path, report, year=year)
        except (CnemcWaterFormatError, ValueError) as error:
            raise fail(f"{path.name}: {error}") from error
    console.print(
        f"samples compared: {report.compared:,}; class match: {report.match_rate:.2%}; "
        f"without a published class (not compared): {report.unclassified:,}"
    )
    if report.water_bodies:
        console.print(f"water bodies (and how known): {dict(report.water_bodies)}", markup=False)
    for key, count in report.mismatches.most_common():
        console.print(f"  {count:>6,}  {key}", markup=False)
    for row in report.unexplained:
        console.print(f"  not explained: {row}", markup=False, soft_wrap=True)
    for rejected in report.rejected_rows:
        err_console.print(f"rejected {rejected}", markup=False)
