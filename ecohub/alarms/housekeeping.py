"""The periodic alarm work of a running platform: the offline sweep, the sweeps other
areas hand in (overdue penalty-case steps), and the delivery of due notifications, every
``alarm_sweep_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from ecohub.alarms.events import Event
from ecohub.alarms.notify import Notifier
from ecohub.alarms.offline import sweep_offline

Sweep = Callable[[Engine], list[Event]]

log = logging.getLogger(__name__)


async def run_housekeeping(
    engine: Engine, stop: asyncio.Event, interval: float, sweeps: Sequence[Sweep] = ()
) -> None:
    """Sweep for offline points (and run ``sweeps``) and deliver notifications until
    ``stop`` is set."""
    notifier = Notifier(engine)
    try:
        while not stop.is_set():
            try:
                for sweep in (sweep_offline, *sweeps):
                    events = await asyncio.to_thread(sweep, engine)
                    if events:
                        log.info("%s: %d alarm events", sweep.__name__, len(events))
                report = await asyncio.to_thread(notifier.deliver_due)
                if report.sent or report.retried or report.failed:
                    log.info(
                        "notifications: %d sent, %d to retry, %d failed",
                        report.sent,
                        report.retried,
                        report.failed,
                    )
            except Exception:  # a bad round must not end the platform's alarm work
                log.exception("alarm housekeeping round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        notifier.close()
