"""The periodic alarm work of a running platform: the offline sweep and the delivery of
due notifications, every ``alarm_sweep_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine

from ecohub.alarms.notify import Notifier
from ecohub.alarms.offline import sweep_offline

log = logging.getLogger(__name__)


async def run_housekeeping(engine: Engine, stop: asyncio.Event, interval: float) -> None:
    """Sweep for offline points and deliver notifications until ``stop`` is set."""
    notifier = Notifier(engine)
    try:
        while not stop.is_set():
            try:
                events = await asyncio.to_thread(sweep_offline, engine)
                if events:
                    log.info("offline sweep: %d alarm events", len(events))
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
