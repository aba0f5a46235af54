"""``ecohub serve`` (the whole platform in one process) and ``ecohub journal`` (what the
gateway's journal still owes the store), and ``ecohub rates``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecohub.commands import console, engine, err_console, print_counts
from ecohub.config import Settings, get_settings


def serve(
    hj212_port: Annotated[
        int | None, typer.Option(help="TCP port of the HJ 212 gateway (default 9000).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 0.0.0.0).")] = None,
    demo_loggers: Annotated[
        bool,
        typer.Option(help="Also simulate the registry's outlet loggers (for the demo)."),
    ] = False,
    demo_interval: Annotated[
        float, typer.Option(help="Seconds between the simulated loggers' real-time packets.")
    ] = 60.0,
    mqtt: Annotated[
        bool, typer.Option(help="Subscribe to the MQTT broker (ECOHUB_MQTT_URL, _TOPIC).")
    ] = True,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the HTTP API (default ECOHUB_API_PORT, 8000).")
    ] = None,
) -> None:
    """Run the platform: the HJ 212 gateway, the MQTT subscriber and the HTTP API, all
    feeding one ingestion pipeline, after printing the store summary.

    Senders are answered once their data are in the journal (ECOHUB_JOURNAL_DIR), or,
    with ECOHUB_BUS_URL set, once NATS JetStream has them (writer processes, `ecohub bus
    writer`, store them; docs/bus.md). Stops gracefully on Ctrl-C or SIGTERM: every value
    already answered is stored, or kept in the journal for the next start (`ecohub
    journal` shows it) if the store does not take it within a minute, or left on the bus
    for the writers.
    """
    from ecohub.serve import run_gateway

    settings = get_settings()
    store = engine()
    print_counts(store)
    port = hj212_port or settings.hj212_port
    console.print(
        f"HJ 212 gateway listening on {host or settings.hj212_host}:{port}"
        + (" with the demo loggers streaming" if demo_loggers else "")
        + " — Ctrl-C to stop"
    )
    api = (settings.api_host, api_port or settings.api_port)
    console.print(
        f"[bold green]Portal (the one map): http://{api[0]}:{api[1]}/[/bold green]  "
        f"API docs: http://{api[0]}:{api[1]}/docs"
    )
    console.print(_limits_line(settings), markup=False)
    if mqtt:
        mqtt = _broker_reachable(settings.mqtt_url)
        if mqtt:
            console.print(f"MQTT: subscribing to {settings.mqtt_topic} at {settings.mqtt_url}")
        else:
            console.print(
                f"[yellow]MQTT: no broker answers at {settings.mqtt_url}: the MQTT door is "
                "off (optional; start Mosquitto or set ECOHUB_MQTT_URL, and restart; "
                "--no-mqtt skips this check)[/yellow]"
            )
    from rich.markup import escape

    from ecohub.ingest.bus import PartitionMismatch
    from ecohub.ingest.journal import JournalError

    try:
        run_gateway(
            store,
            host=host or settings.hj212_host,
            port=port,
            idle_timeout=settings.hj212_idle_timeout,
            demo_loggers=demo_loggers,
            demo_interval=demo_interval,
            mqtt=(settings.mqtt_url, settings.mqtt_topic) if mqtt else None,
            api=api,
        )
    except (JournalError, PartitionMismatch) as error:
        err_console.print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(2) from error


def journal_status(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Journal directory (default ECOHUB_JOURNAL_DIR, var/journal)."),
    ] = None,
) -> None:
    """Show what the gateway's journal holds: batches answered but not yet known to be
    in the store (the next `ecohub serve` writes them first). Read-only; safe while the
    gateway runs."""
    from rich.markup import escape

    from ecohub.config import DEFAULT_VAR_DIR
    from ecohub.ingest.journal import JournalError, inspect_journal
    from ecohub.ingest.writer_process import payload_counts

    where = directory or Path(get_settings().journal_dir or DEFAULT_VAR_DIR / "journal")
    try:
        status = inspect_journal(where)
    except JournalError as error:
        err_console.print(f"[red]error[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    counts = [payload_counts(record.payload) for record in status.pending]
    rows = sum(count for count, _rejected in counts)
    rejected = sum(count for _rows, count in counts)
    state = "in use by a running gateway" if status.in_use else "not in use"
    console.print(f"journal {status.directory} ({state})", markup=False)
    console.print(
        f"  {status.segments} segment file(s), {status.bytes:,} bytes; "
        f"committed through batch {status.committed}",
        markup=False,
    )
    if status.pending:
        first, last = status.pending[0].sequence, status.pending[-1].sequence
        console.print(
            f"  waiting for the store: {len(status.pending):,} batch(es) ({first}-{last}), "
            f"{rows:,} values and {rejected:,} rejected inputs",
            markup=False,
        )
    else:
        console.print("  waiting for the store: nothing", markup=False)
    for problem in status.problems:
        console.print(f"  cut off at the next start: {problem}", markup=False)


def rates(
    day: Annotated[
        str | None, typer.Option(help="Local day YYYY-MM-DD (default: yesterday).")
    ] = None,
    point: Annotated[list[str] | None, typer.Option(help="Point code(s); default all.")] = None,
) -> None:
    """Transmission and effective-data rates per monitoring point for one day
    (received ÷ expected readings, valid ÷ expected, from each point's interval)."""
    import datetime as dt

    from rich.table import Table

    from ecohub.timeseries.rates import daily_rates

    try:
        wanted = dt.date.fromisoformat(day) if day else dt.date.today() - dt.timedelta(days=1)
    except ValueError:
        err_console.print(f"[red]--day {day!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    table = Table(title=f"Data rates on {wanted}")
    for column in ("point", "expected", "received", "valid", "transmission", "effective"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for rate in daily_rates(engine(), wanted, point_codes=point or None):
        table.add_row(
            rate.point_code,
            str(rate.expected),
            str(rate.received),
            str(rate.valid),
            f"{rate.transmission_rate:.1%}",
            f"{rate.effective_rate:.1%}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(serve)
    app.command("journal")(journal_status)
    app.command("rates")(rates)


def _limits_line(settings: Settings) -> str:
    """What ``serve`` says of its limits (docs/security.md)."""
    where = (
        f"Redis at {settings.limits_redis_url} (the database if it does not answer)"
        if settings.limits_redis_url
        else "the database (ECOHUB_LIMITS_REDIS_URL: Redis instead)"
    )
    return (
        f"Limits: at most {settings.hj212_max_connections:,} logger connections "
        f"({settings.hj212_max_connections_per_address:,} per address, lowered to fit the "
        f"file limit); rate limits and sign-in throttles counted in {where}"
    )


def _broker_reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the MQTT broker of ``url`` opens within ``timeout``."""
    import socket

    from ecohub.ingest.mqtt import broker_address

    try:
        host, port = broker_address(url)
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
