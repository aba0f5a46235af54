"""The composition root of ``ecohub serve``: one process running the HJ 212 gateway, the
MQTT door, the HTTP API with the portal and the alarm housekeeping, all doors sharing the
gateway's batch writer so that every value goes through one pipeline.

The areas provide the parts (:mod:`ecohub.ingest.hj212_gateway`,
:mod:`ecohub.ingest.mqtt`, :mod:`ecohub.app`, :mod:`ecohub.alarms.housekeeping`); this
module starts and stops them and passes the settings in.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal

from sqlalchemy import Engine

from ecohub.alarms.housekeeping import run_housekeeping
from ecohub.config import Settings, get_settings
from ecohub.ingest.events import configure_logging, log_event
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.ingest.measurements import Resolver
from ecohub.ingest.upload import shared_writer_submit
from ecohub.runtime import run_event_loop, tune_garbage_collector, tune_memory_allocator

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
    gateway = HJ212Gateway(
        engine,
        idle_timeout=idle_timeout,
        journal_dir=settings.journal_dir or None,
        journal_backlog_rows=settings.journal_backlog_rows,
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
    extras = await _start_other_doors(engine, gateway, stop, mqtt, api, settings)
    if settings.alarms_enabled:
        extras.append(
            loop.create_task(
                run_housekeeping(engine, stop, settings.alarm_sweep_seconds),
                name="alarm-housekeeping",
            )
        )
    await stop.wait()
    log_event(logger, "shutdown_requested")
    await asyncio.gather(*extras, return_exceptions=True)
    if demo is not None:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
    await gateway.close()


async def _start_other_doors(
    engine: Engine,
    gateway: HJ212Gateway,
    stop: asyncio.Event,
    mqtt: tuple[str, str] | None,
    api: tuple[str, int] | None,
    settings: Settings,
) -> list[asyncio.Task[None]]:

    submit = shared_writer_submit(gateway.writer)
    tasks: list[asyncio.Task[None]] = []
    if mqtt is not None:
        from ecohub.ingest.mqtt import consume

        resolver = await asyncio.to_thread(Resolver, engine)
        url, topic = mqtt
        tasks.append(
            asyncio.create_task(
                consume(submit, resolver, url=url, topic=topic, stop=stop), name="mqtt"
            )
        )
    if api is not None:
        import uvicorn

        from ecohub.app import create_app
        from ecohub.runtime import tune_garbage_collector

        app = await asyncio.to_thread(create_app, engine, submit)
        tune_garbage_collector()  # again: the app lives as long as the process
        server = uvicorn.Server(
            uvicorn.Config(app, host=api[0], port=api[1], log_level="warning", lifespan="off")
        )

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
