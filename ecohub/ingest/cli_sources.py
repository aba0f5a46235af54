"""``ecohub import live`` and ``ecohub import water``: CNEMC's national releases (the air
live-publication feed, the surface-water automatic stations' release) into the registry
and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecohub.commands import actor, console, engine, fail


def import_live(
    path: Annotated[Path, typer.Argument(help="The live-publication feed (GeoJSON).", exists=True)],
    o3_1h_field: Annotated[
        str,
        typer.Option(
            help="The property stored as the 1-hour O3: o3_24h (default: the feed's labels "
            "are swapped, see docs/standards.md) or o3."
        ),
    ] = "o3_24h",
) -> None:
    """Import one hour of the CNEMC live feed: stations the registry lacks become air
    sites (name, city, coordinates), and their concentrations hourly observations."""
    from ecohub.ingest.cnemc_live import LiveFeedError, parse_live_feed
    from ecohub.ingest.national import import_live_feed

    if o3_1h_field not in ("o3", "o3_24h"):
        raise fail("--o3-1h-field must be o3 or o3_24h")
    try:
        records = parse_live_feed(path.read_bytes())
    except LiveFeedError as error:
        raise fail(f"{path.name}: {error}") from error
    result = import_live_feed(engine(), records, actor(), o3_1h_field=o3_1h_field)
    _print(path, result, "stations")


def import_water(
    path: Annotated[
        Path,
        typer.Argument(help="The national automatic stations' release (JSON or CSV).", exists=True),
    ],
    year: Annotated[
        int | None, typer.Option(help="Year of its MM-DD times (default: the current year).")
    ] = None,
) -> None:
    """Import the surface-water automatic stations' real-time release: each section
    becomes a surface-water site in its province (with its basin and river or lake kind)
    and its readings hourly observations. Malformed rows are reported by row and field;
    the good rows are imported."""
    from ecohub.ingest.cnemc_water import CnemcWaterFormatError, read_release
    from ecohub.ingest.national import import_water_release

    rejected: list[str] = []
    try:
        records = read_release(path, year=year, rejected=rejected)
    except CnemcWaterFormatError as error:
        raise fail(f"{path.name}: {error}") from error
    result = import_water_release(engine(), records, actor())
    _print(path, result, "sections")
    for reason in rejected:
        console.print(f"[red]rejected[/red] {reason}", markup=True, soft_wrap=True)
    if rejected:
        raise typer.Exit(1)


def _print(path: Path, result: object, what: str) -> None:
    console.print(
        f"{path.name}: {result.records:,} {what} ({result.sites_registered:,} newly "  # type: ignore[attr-defined]
        f"registered), {result.values:,} values: {result.written:,} written, "  # type: ignore[attr-defined]
        f"{result.unchanged:,} already stored, {result.flagged:,} flagged by quality control"  # type: ignore[attr-defined]
    )
    if result.without_region:  # type: ignore[attr-defined]
        console.print(f"no region known for: {', '.join(sorted(result.without_region))}")  # type: ignore[attr-defined]


def add_commands(import_app: typer.Typer) -> None:
    """Add these commands to the ``import`` group."""
    import_app.command("live")(import_live)
    import_app.command("water")(import_water)
