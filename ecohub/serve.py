"""The composition root of ``ecohub serve``: one process running the HJ 212 gateway, the
MQTT door, the HTTP API with the portal and the alarm housekeeping, all doors sharing the
gateway's batch writer so that every value goes through one pipeline.

The areas provide the parts (:mod:`ecohub.ingest.hj212_gateway`,
:mod:`ecohub.ingest.mqtt`, :mod:`ecohub.app`, :mod:`ecohub.alarms.housekeeping`); this
module starts and stops them and passes the settings in. At start it raises the open-file
limit to the hard limit and keeps the gateway's connection cap below it, with room for
the API's connections (``api_max_connections``) and the database, journal and logs, so
that neither side can take the other's file descriptors (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from typing import Any

from sqlalchemy import Engine

from ecohub.alarms.housekeeping import run_housekeeping
from ecohub.complaints.overdue import sweep_overdue_complaints
from ecohub.config import Settings, get_settings
from ecohub.ingest.bus import BusConfig, BusPublisher, bus_config, fetch_bus_status
from ecohub.ingest.bus_writer import PARTITIONS_AHEAD_SECONDS
from ecohub.ingest.events import configure_logging, log_event
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.ingest.hj212_guard import GuardSettings
from ecohub.ingest.measurements import Resolver
from ecohub.ingest.upload import shared_writer_submit
from ecohub.runtime import run_event_loop, tune_garbage_collector, tune_memory_allocator
from ecohub.supervision.overdue import sweep_overdue_cases
from ecohub.timeseries.partitions import ensure_ahead

logger = logging.getLogger("ecohub.serve")


async def serve_forever(
    engine: Engine,
    host: str,
    port: int,
    idle_timeout: float,
    *,
    demo_loggers: bool = False,
    demo_interval: float = 60.0,
    mqtt: tuple[str, str] | None = None,
    api: tuple[str, int] | None = None,
) -> None:
    """Run the gateway until SIGINT or SIGTERM, then stop gracefully.

    With ``mqtt`` (broker URL, topic filter) the MQTT door runs too, and with ``api``
    (host, port) the HTTP API; all doors share the gateway's batch writer, so every value
    goes through one pipeline.

    With ``demo_loggers`` the registry's outlet loggers are simulated in the same
    process, sending real-time data every ``demo_interval`` seconds, so that a new
    installation has live data at once.
    """
    settings = get_settings()
    # With ECOHUB_BUS_URL the gateway publishes to NATS JetStream and answers once the
    # bus has the batch; writer processes (`ecohub bus writer`) store it (docs/bus.md).
    bus = bus_config(settings)
    gateway = HJ212Gateway(
        engine,
        idle_timeout=idle_timeout,
        journal_dir=None if bus else (settings.journal_dir or None),
        bus=BusPublisher(bus) if bus else None,
        journal_backlog_rows=settings.journal_backlog_rows,
        guard=guard_settings(settings, raise_file_limit()),
        raise_alarms=settings.alarms_enabled,
    )
    bound = await gateway.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    demo: asyncio.Task[object] | None = None
    if demo_loggers:
        from ecohub.simulate.hj212 import simulate
        from ecohub.simulate.points import registered_loggers

        loggers = await asyncio.to_thread(registered_loggers, engine)
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        demo = loop.create_task(
            simulate(loggers, port=bound, ticks=10**9, interval=demo_interval, start=now)
        )
        log_event(logger, "demo_loggers", count=len(loggers), interval=demo_interval)
    extras = await start_other_doors(engine, gateway, stop, mqtt, api, settings)
    extras += _housekeeping(engine, stop, settings, bus)
    await stop.wait()
    log_event(logger, "shutdown_requested")
    await asyncio.gather(*extras, return_exceptions=True)
    if demo is not None:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
    await gateway.close()


def _housekeeping(
    engine: Engine, stop: asyncio.Event, settings: Settings, bus: BusConfig | None
) -> list[asyncio.Task[None]]:
    """The background rounds until ``stop``: the coming months' partitions (always),
    the alarm housekeeping (when alarms are on) and the bus's status (with the bus)."""
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(
            _partitions_ahead(engine, stop, PARTITIONS_AHEAD_SECONDS), name="partitions-ahead"
        )
    ]
    if settings.alarms_enabled:
        sweeps = (sweep_overdue_cases, sweep_overdue_complaints)
        tasks.append(
            loop.create_task(
                run_housekeeping(engine, stop, settings.alarm_sweep_seconds, sweeps=sweeps),
                name="alarm-housekeeping",
            )
        )
    if bus is not None:
        tasks.append(loop.create_task(_report_bus(bus, stop), name="bus-status"))
    return tasks


async def _partitions_ahead(engine: Engine, stop: asyncio.Event, every: float) -> None:
    """On PostgreSQL, this month's and the next three months' partitions of the
    observations and rollups (docs/partitions.md), now and every ``every`` seconds,
    whether alarms are on or not (the bus writers do the same); a failure is logged, not
    fatal: a value of a month without its partition is kept in the DEFAULT partition."""
    while not stop.is_set():
        try:
            created = await asyncio.to_thread(ensure_ahead, engine)
        except Exception:  # a lock timeout: the next round tries again
            logger.exception("creating the coming months' partitions failed")
        else:
            if created:
                log_event(logger, "partitions_created", names=created)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _report_bus(config: BusConfig, stop: asyncio.Event, every: float = 60.0) -> None:
    """Log the bus's backlog per consumer every minute (the status of `ecohub serve`),
    with a warning while no writer consumes any partition (senders are answered, but
    nothing is stored until `ecohub bus writer` runs)."""
    while not stop.is_set():
        try:
            found = await fetch_bus_status(config)
            if "error" not in found and not any(
                not consumer.get("missing") for consumer in found.get("consumers", [])
            ):
                log_event(
                    logger,
                    "bus_without_writer",
                    logging.WARNING,
                    stream=config.stream,
                    hint="no writer consumes the bus: start `ecohub bus writer` (docs/bus.md)",
                )
            log_event(
                logger,
                "bus_status",
                stream=found.get("stream"),
                messages=found.get("messages"),
                backlog={c["name"]: c.get("backlog") for c in found.get("consumers", [])},
                error=found.get("error"),
            )
        except Exception:  # the status must not stop the gateway
            logger.exception("bus status failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def start_other_doors(
    engine: Engine,
    gateway: HJ212Gateway,
    stop: asyncio.Event,
    mqtt: tuple[str, str] | None,
    api: tuple[str, int] | None,
    settings: Settings,
    mqtt_client_id: str = "ecohub-ingest",
) -> list[asyncio.Task[None]]:
    """The MQTT door and the HTTP API on the gateway's batch writer (and so on its
    journal or bus), until ``stop``."""
    submit = shared_writer_submit(gateway.writer)
    tasks: list[asyncio.Task[None]] = []
    if mqtt is not None:
        from ecohub.ingest.mqtt import consume

        resolver = await asyncio.to_thread(Resolver, engine)
        url, topic = mqtt
        tasks.append(
            asyncio.create_task(
                consume(
                    submit, resolver, url=url, topic=topic, client_id=mqtt_client_id, stop=stop
                ),
                name="mqtt",
            )
        )
    if api is not None:
        import uvicorn

        from ecohub.app import create_app
        from ecohub.db.limits import open_store
        from ecohub.runtime import tune_garbage_collector

        app = await asyncio.to_thread(create_app, engine, submit)
        # Opened here, not at the first request: the log says at start where the
        # rate-limit counters live (Redis, or the database when none answers).
        app.state.limits_store = await asyncio.to_thread(
            open_store, engine, settings.limits_redis_url
        )
        tune_garbage_collector()  # again: the app lives as long as the process
        server = uvicorn.Server(api_config(app, api[0], api[1], settings))

        async def run_api() -> None:
            await server.serve()
            stop.set()  # uvicorn took the signal: stop everything

        async def stop_api() -> None:
            await stop.wait()
            server.should_exit = True

        tasks.append(asyncio.create_task(run_api(), name="api"))
        tasks.append(asyncio.create_task(stop_api(), name="api-stop"))
        log_event(logger, "api_started", host=api[0], port=api[1])
    return tasks


def api_config(app: Any, host: str, port: int, settings: Settings) -> Any:
    """uvicorn's configuration of the API: forwarded headers (X-Forwarded-For, -Proto)
    only from the proxies in ``forwarded_allow_ips`` (uvicorn would otherwise trust them
    from 127.0.0.1, so that any local sender could pick its own address for the rate
    limits and sign-in throttles), and at most ``api_max_connections`` at once."""
    import uvicorn

    proxies = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        limit_concurrency=settings.api_max_connections,
    )


def raise_file_limit() -> int:
    """Raise the process's open-file limit (RLIMIT_NOFILE) to its hard limit; returns
    the limit now in force."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 8192
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            log_event(logger, "file_limit_kept", logging.WARNING, limit=soft, error=repr(error))
    return int(soft)


def guard_settings(settings: Settings, file_limit: int) -> GuardSettings:
    """The gateway's limits from the settings, its connection cap kept below the file
    limit with room for the API's connections and the database, journal and logs."""
    room = file_limit - settings.hj212_fd_headroom - settings.api_max_connections
    total = max(16, min(settings.hj212_max_connections, room))
    if total < settings.hj212_max_connections:
        log_event(
            logger,
            "connection_cap_lowered",
            logging.WARNING,
            configured=settings.hj212_max_connections,
            cap=total,
            file_limit=file_limit,
            headroom=settings.hj212_fd_headroom,
            api_connections=settings.api_max_connections,
        )
    guard = GuardSettings(
        max_connections=total,
        max_connections_per_address=min(total, settings.hj212_max_connections_per_address),
        first_packet_timeout=settings.hj212_first_packet_timeout,
        raw_bytes=settings.hj212_quarantine_raw_bytes,
        junk_close_bytes=settings.hj212_junk_close_bytes,
        quota_rows=settings.hj212_quarantine_quota_rows,
        quota_bytes=settings.hj212_quarantine_quota_bytes,
        auth_delay_after=settings.hj212_auth_delay_after,
        auth_block_after=settings.hj212_auth_block_after,
        auth_window=settings.hj212_auth_window,
        auth_block_seconds=settings.hj212_auth_block_seconds,
    )
    log_event(
        logger,
        "limits",
        file_limit=file_limit,
        hj212_connections=guard.max_connections,
        hj212_per_address=guard.max_connections_per_address,
        api_connections=settings.api_max_connections,
    )
    return guard


def run_gateway(
    engine: Engine,
    *,
    host: str,
    port: int,
    idle_timeout: float,
    demo_loggers: bool = False,
    demo_interval: float = 60.0,
    mqtt: tuple[str, str] | None = None,
    api: tuple[str, int] | None = None,
) -> None:
    """Blocking entry point used by ``ecohub serve``."""
    tune_memory_allocator()
    configure_logging(logging.getLevelNamesMapping().get(get_settings().log_level.upper(), 20))
    tune_garbage_collector()
    run_event_loop(
        serve_forever(
            engine,
            host,
            port,
            idle_timeout,
            demo_loggers=demo_loggers,
            demo_interval=demo_interval,
            mqtt=mqtt,
            api=api,
        )
    )
