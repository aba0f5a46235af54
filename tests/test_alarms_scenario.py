"""Alarm scenarios end to end: HJ 212 simulator → gateway → pipeline → rules → alarms →
a real local webhook receiver; and a point that falls silent, on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ecohub.alarms.housekeeping import run_housekeeping
from ecohub.alarms.lifecycle import alarm_history, list_alarms
from ecohub.alarms.notify import Notifier, create_subscription, sign
from ecohub.alarms.tables import notifications
from ecohub.config import get_settings
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.registry import service
from ecohub.registry.models import MonitoringPoint
from ecohub.registry.schemas import PermitIn, PermitLimitIn
from ecohub.simulate.hj212 import simulate
from ecohub.simulate.points import SIM_USCC, register_simulated_points
from tests.webhook_receiver import WebhookReceiver

CST = dt.timezone(dt.timedelta(hours=8))
ORIGIN = dt.datetime(2024, 1, 1, tzinfo=CST)
SO2_LIMIT = 50.0  # mg/m³, the permit's hourly concentration limit in this scenario
EXCEEDING_HOURS = {1, 2, 3}


def so2_script(mn: str, cn: int, data_time: dt.datetime, code: str) -> float | None:
    """SO2 at 20 mg/m³, except 80 mg/m³ in hours 1-3; varied a little so that quality
    control does not see a flat line."""
    if code != "a21026":
        return None
    hour = int((data_time - ORIGIN) / dt.timedelta(hours=1))
    base = 80.0 if hour in EXCEEDING_HOURS else 20.0
    return base + hour * 0.5 + (data_time.minute * 7 % 11) * 0.1


def _permit(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        service.upsert_permit(
            session,
            PermitIn(
                permit_no="SIM-PERMIT-001",
                enterprise_uscc=SIM_USCC,
                valid_from=dt.date(2023, 1, 1),
                valid_to=dt.date(2027, 12, 31),
                limits=[
                    PermitLimitIn(
                        outlet_code="DA000",
                        parameter_code="a21026",
                        concentration_limit=SO2_LIMIT,
                        unit="mg/m³",
                    )
                ],
            ),
            "test",
        )


def test_an_outlet_over_its_permit_for_3_hours_opens_one_alarm_and_notifies_once(
    engine: Engine,
) -> None:
    points = register_simulated_points(engine, 1)
    _permit(engine)
    with WebhookReceiver() as receiver:
        _, secret = create_subscription(
            engine,
            name="supervisor",
            channel="webhook",
            target=receiver.url,
            actor="test",
            kinds=["source_exceedance"],
        )
        assert secret is not None
        notifier = Notifier(engine)

        async def run(start: dt.datetime, ticks: int) -> None:
            gateway = HJ212Gateway(engine, idle_timeout=30)
            port = await gateway.start("127.0.0.1", 0)
            try:
                report = await simulate(
                    points, port=port, ticks=ticks, interval=0, start=start, script=so2_script
                )
                assert report.missing_acks == 0
            finally:
                await gateway.close()

        # Hours 0-3: normal, then three hours over the limit.
        asyncio.run(run(ORIGIN, 4 * 60))
        found = list_alarms(engine, status="all", kind="source_exceedance")
        assert len(found) == 1, found
        alarm = found[0]
        assert alarm["status"] == "open"
        assert alarm["started_at"] == ORIGIN + dt.timedelta(hours=1)
        assert alarm["last_active_at"] == ORIGIN + dt.timedelta(hours=3)
        evidence = alarm["evidence"]
        assert evidence["active_periods"] == 3
        assert evidence["peak"]["limit"] == SO2_LIMIT
        # The hour-3 value the logger reported: 80 + 3 × 0.5 = 81.5 → (81.5 − 50)/50 = 0.63.
        assert evidence["peak"]["value"] == pytest.approx(81.5)
        assert evidence["peak"]["multiple"] == pytest.approx(0.63)
        assert evidence["peak"]["permit_no"] == "SIM-PERMIT-001"

        report = notifier.deliver_due()
        assert report.sent == 1
        assert len(receiver.calls) == 1
        headers, body = receiver.calls[0]
        assert headers["X-EcoHub-Signature"] == sign(secret, body)
        assert headers["X-EcoHub-Event"] == "opened"
        document = json.loads(body)
        assert document["alarm"]["id"] == alarm["id"]

        # Hours 4-5: back under the limit. The same alarm closes; nothing new opens.
        asyncio.run(run(ORIGIN + dt.timedelta(hours=4), 2 * 60))
        found = list_alarms(engine, status="all", kind="source_exceedance")
        assert len(found) == 1
        alarm = found[0]
        assert alarm["status"] == "closed"
        assert alarm["close_reason"] == "cleared"
        assert alarm["ended_at"] == ORIGIN + dt.timedelta(hours=4)
        assert alarm["duration_seconds"] == 3 * 3600
        actions = [event["action"] for event in alarm_history(engine, alarm["id"])]
        assert actions == ["opened", "closed"]

        notifier.deliver_due()
        notifier.deliver_due()
        events = [json.loads(body)["event"] for _, body in receiver.calls]
        assert events == ["opened", "closed"]  # the opening notified exactly once
        notifier.close()


def test_a_silent_point_raises_an_offline_alarm_within_the_configured_time(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOHUB_OFFLINE_MULTIPLE", "2")
    get_settings.cache_clear()
    points = register_simulated_points(engine, 1)
    with Session(engine) as session, session.begin():
        session.execute(update(MonitoringPoint).values(interval_seconds=1))
    interval, multiple = 1, 2.0

    async def scenario() -> tuple[float, float]:
        gateway = HJ212Gateway(engine, idle_timeout=30)
        port = await gateway.start("127.0.0.1", 0)
        stop = asyncio.Event()
        sweeper = asyncio.create_task(run_housekeeping(engine, stop, 0.1))
        try:
            start = dt.datetime.now(CST).replace(second=0, microsecond=0)
            await simulate(points, port=port, ticks=3, interval=0, start=start)
            silent_from = time.monotonic()
            raised = None
            while time.monotonic() - silent_from < 10:
                if list_alarms(engine, status="unclosed", kind="offline"):
                    raised = time.monotonic() - silent_from
                    break
                await asyncio.sleep(0.05)
            assert raised is not None, "no offline alarm within 10 s"
            # Data again: the pipeline closes the alarm as back online.
            later = start + dt.timedelta(minutes=10)
            await simulate(points, port=port, ticks=1, interval=0, start=later)
            back = None
            began = time.monotonic()
            while time.monotonic() - began < 5:
                if list_alarms(engine, status="closed", kind="offline"):
                    back = time.monotonic() - began
                    break
                await asyncio.sleep(0.05)
            assert back is not None, "the offline alarm did not close when data came back"
            return raised, back
        finally:
            stop.set()
            await sweeper
            await gateway.close()

    try:
        raised, _ = asyncio.run(scenario())
    finally:
        get_settings.cache_clear()
    # Offline after multiple × interval of silence; found by the next sweep (0.1 s).
    assert multiple * interval - 0.5 <= raised <= multiple * interval + 1.5
    (alarm,) = list_alarms(engine, status="all", kind="offline")
    assert alarm["close_reason"] == "cleared"
    assert alarm["evidence"]["latest"]["interval_seconds"] == interval
    with engine.connect() as connection:
        assert connection.execute(select(notifications)).first() is None  # no subscription
