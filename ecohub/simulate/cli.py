"""``ecohub simulate hj212``: simulated HJ 212 data loggers against a gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from ecohub.clock import utcnow
from ecohub.commands import actor, console, engine, parse_time
from ecohub.config import get_settings

simulate_app = typer.Typer(help="Simulated field equipment, for demos, tests and benchmarks.")


@simulate_app.command("hj212")
def simulate_hj212(
    points: Annotated[int, typer.Option(help="Number of simulated data loggers.")] = 10,
    interval: Annotated[float, typer.Option(help="Real seconds between a logger's ticks.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Real seconds to run.")] = 60.0,
    bad_ratio: Annotated[
        float, typer.Option(help="Share of ticks with a bad packet, a retransmission, a drop.")
    ] = 0.0,
    host: Annotated[str, typer.Option(help="Gateway address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Gateway port (default 9000).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (runs are repeatable).")] = 212,
    start: Annotated[
        str | None,
        typer.Option(help="Virtual clock's start, ISO (no offset = Beijing time); default now."),
    ] = None,
) -> None:
    """Run N simulated HJ 212 loggers (flue-gas CEMS and waste water) against a gateway.

    Registers the loggers as monitoring points SIM00000… of the simulated enterprise
    (idempotently), sends real-time, minute, hourly and daily data on a one-minute virtual
    clock starting now (so that the portal shows it), checks every 9014 answer and prints
    what was sent and how fast it was answered. `ecohub simulate clean` removes the
    simulated enterprise, its points and their data again.
    """

    from ecohub.runtime import run_event_loop, tune_garbage_collector
    from ecohub.simulate.hj212 import simulate
    from ecohub.simulate.points import register_simulated_points

    if interval <= 0 or duration <= 0 or points < 1:
        raise typer.BadParameter("points, interval and duration must be positive")
    if not 0 <= bad_ratio <= 1:
        raise typer.BadParameter("bad ratio must be between 0 and 1", param_hint="--bad-ratio")
    simulated = register_simulated_points(engine(), points)
    tune_garbage_collector()  # a collector pause would be measured as answer latency
    report = run_event_loop(
        simulate(
            simulated,
            host=host,
            port=port or get_settings().hj212_port,
            ticks=max(1, int(duration / interval)),
            interval=interval,
            bad_ratio=bad_ratio,
            seed=seed,
            start=parse_time(start) if start else utcnow().replace(second=0, microsecond=0),
        )
    )
    console.print(report.summary(), soft_wrap=True)
    console.print(
        "the simulated points stay registered (SIM…); `ecohub simulate clean` removes them "
        "and their data"
    )
    if report.missing_acks:
        raise typer.Exit(1)


@simulate_app.command("clean")
def simulate_clean() -> None:
    """Remove what the simulator registered: the simulated enterprise, its outlets and
    SIM… points, and their stored data, rollups, alarms and quarantined input (the
    registry's audit log keeps the removal)."""
    from ecohub.simulate.points import remove_simulated

    removed = remove_simulated(engine(), actor())
    console.print(
        f"removed {removed.points} simulated points, {removed.outlets} outlets and "
        f"{removed.values:,} stored values"
    )


def register(app: typer.Typer) -> None:
    """Add this group to ``app``."""
    app.add_typer(simulate_app, name="simulate")
