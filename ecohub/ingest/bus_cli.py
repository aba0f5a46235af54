"""``ecohub bus``: the ingestion bus's writer processes, a gateway that publishes to the
bus, and the bus's backlog (:mod:`ecohub.ingest.bus`, docs/bus.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Annotated, Any

import typer

from ecohub.commands import console, fail
from ecohub.config import get_settings
from ecohub.ingest.bus import BusConfig, PartitionMismatch, bus_config

bus_app = typer.Typer(help="The ingestion bus (NATS JetStream): writers, gateway, backlog.")


def _config() -> BusConfig:
    config = bus_config(get_settings())
    if config is None:
        raise fail("ECOHUB_BUS_URL is not set: the bus is off (the local journal is used)")
    return config


def _until_signalled() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    return stop


@bus_app.command("writer")
def writer(
    partitions: Annotated[
        str | None,
        typer.Option(help="Partitions to take, e.g. 0,1,2 (default: every partition)."),
    ] = None,
    index: Annotated[
        int | None, typer.Option(help="This writer's number, 0-based, of --count writers.")
    ] = None,
    count: Annotated[int, typer.Option(help="Writers sharing the partitions.")] = 1,
) -> None:
    """Store the bus's batches: take partitions (each held by one writer at a time) and
    write their batches through the pipeline, acknowledging each once committed."""
    from ecohub.db.engine import make_engine
    from ecohub.ingest.bus_writer import BusWriter, partitions_of
    from ecohub.ingest.events import configure_logging
    from ecohub.runtime import run_event_loop

    settings = get_settings()
    config = _config()
    if partitions:
        taken = [int(part) for part in partitions.split(",") if part.strip()]
    elif index is not None:
        taken = partitions_of(index, count, config.partitions)
    else:
        taken = list(range(config.partitions))
    if not taken or any(not 0 <= p < config.partitions for p in taken):
        raise fail(f"partitions must be within 0..{config.partitions - 1}")
    configure_logging(logging.getLevelNamesMapping().get(settings.log_level.upper(), 20))
    engine = make_engine(settings.database_url)

    async def main() -> None:
        stop = _until_signalled()
        await BusWriter(engine, config, taken, rollup_delay=settings.rollup_delay).run(stop)

    try:
        run_event_loop(main())
    except PartitionMismatch as error:
        raise fail(str(error)) from error
    finally:
        engine.dispose()


@bus_app.command("gateway")
def gateway(
    host: Annotated[str | None, typer.Option(help="Address to bind (ECOHUB_HJ212_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (ECOHUB_HJ212_PORT).")] = None,
) -> None:
    """An HJ 212 gateway that answers once a batch is on the bus and writes nothing
    itself (for gateway hosts without the API; `ecohub serve` does the same with
    ECOHUB_BUS_URL set)."""
    from ecohub.db.engine import make_engine
    from ecohub.ingest.bus import BusPublisher
    from ecohub.ingest.events import configure_logging
    from ecohub.ingest.hj212_gateway import HJ212Gateway
    from ecohub.runtime import run_event_loop

    settings = get_settings()
    config = _config()
    configure_logging(logging.getLevelNamesMapping().get(settings.log_level.upper(), 20))
    engine = make_engine(settings.database_url)

    async def main() -> None:
        stop = _until_signalled()
        server = HJ212Gateway(
            engine,
            idle_timeout=settings.hj212_idle_timeout,
            bus=BusPublisher(config),
            raise_alarms=settings.alarms_enabled,
        )
        await server.start(host or settings.hj212_host, port or settings.hj212_port)
        await stop.wait()
        await server.close()

    try:
        run_event_loop(main())
    except PartitionMismatch as error:
        raise fail(str(error)) from error
    finally:
        engine.dispose()


@bus_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """The bus's backlog: the stream, and per partition's consumer the messages not yet
    delivered, delivered and not yet acknowledged, and redelivered. Exits with 1 when
    NATS does not answer; a stream not made yet (no gateway has published) is no error."""
    from ecohub.ingest.bus import bus_status

    report = bus_status(_config(), max_age=0)
    if as_json:
        console.print_json(json.dumps(report))
    else:
        for line in status_lines(report):
            console.print(line, markup=False)
    if "error" in report:
        raise typer.Exit(1)


def status_lines(report: dict[str, Any]) -> list[str]:
    """What ``ecohub bus status`` prints of a :func:`~ecohub.ingest.bus.fetch_bus_status`."""
    if "error" in report:
        return [f"bus {report['url']}: cannot be read: {report['error']}"]
    if report.get("absent"):
        return [
            f"stream {report['stream']}: not created yet (no gateway has published); "
            "nothing waits on the bus"
        ]
    lines = [
        f"stream {report['stream']}: {report['messages']:,} messages, {report['bytes']:,} bytes"
    ]
    for consumer in report["consumers"]:
        if consumer.get("missing"):
            lines.append(f"  partition {consumer['partition']}: no writer yet")
            continue
        lines.append(
            f"  partition {consumer['partition']}: backlog {consumer['backlog']:,} "
            f"(undelivered {consumer['pending']:,}, unacknowledged "
            f"{consumer['ack_pending']:,}), redelivered {consumer['redelivered']:,}"
        )
    if report.get("omitted"):
        lines.append(f"  … {report['omitted']:,} more partitions not shown")
    return lines


def register(app: typer.Typer) -> None:
    """Add the ``bus`` group to ``app``."""
    app.add_typer(bus_app, name="bus")


if __name__ == "__main__":
    bus_app()
