"""Alarms through the pipeline on both backends: ambient exceedance, the heavy-pollution
warning escalating yellow → orange → red, late data, maintenance windows, anomalies,
people's actions, and notifications (digest, retries, e-mail through a real local SMTP
server)."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError, alarm_history, list_alarms
from ecohub.alarms.notify import (
    Notifier,
    SubscriptionError,
    create_subscription,
    list_notifications,
)
from ecohub.config import Settings
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry import service
from ecohub.registry.schemas import PermitIn, PermitLimitIn
from ecohub.timeseries.observations import Observation
from tests.webhook_receiver import WebhookReceiver

UTC = dt.UTC
CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC)
DAY0 = dt.datetime(2024, 1, 10, tzinfo=CST)  # local midnight
NOW = dt.datetime(2024, 3, 1, tzinfo=UTC)
SOURCE_POINTS = {1, 2, 3, 4, 5, 6, 7}  # the demo registry's outlet points P0001-P0007
DEMO_USCC = "91110106MA00DEM01H"  # 京西燃气热电 (demo), point P0001 on outlet DA001


def hour(point: int, code: str, at: dt.datetime, value: float, flag: str = "N") -> Observation:
    return Observation(point, code, "hour", at, value, flag, 0, "test")


def varied(mean: float, index: int) -> float:
    """``mean`` with a ±0.6 wobble that averages out over every 4 hours (so that quality
    control does not take a constant test series for a flat line)."""
    return mean + ((index % 4) - 1.5) * 0.4


def feed(pipeline: Pipeline, rows: list[Observation]) -> None:
    """Process rows as one batch; outlet points also get the flue-gas flow of each hour
    (concentrations without a flow are flagged zero-flow and not judged)."""
    flows = {
        (row.point_id, row.ts)
        for row in rows
        if row.point_id in SOURCE_POINTS and not row.parameter_code.startswith("a00000")
    }
    extra = [hour(point, "a00000", at, varied(80.0, at.hour)) for point, at in flows]
    pipeline.process([*rows, *extra], now=NOW)


def only_alarm(engine: Engine, kind: str) -> dict:
    found = list_alarms(engine, status="all", kind=kind)
    assert len(found) == 1, found
    return found[0]


def test_ambient_o3_exceedance_opens_once_and_closes_with_its_duration(
    engine: Engine, points: dict[str, int]
) -> None:
    pipeline = Pipeline(engine)
    station = points["1001A"]
    # O3 1-hour means (μg/m³) against the GB 3095 grade II 1-hour limit of 200.
    for index, value in enumerate([150, 210, 230, 205, 150, 140]):
        feed(pipeline, [hour(station, "a05024", T0 + dt.timedelta(hours=index), value)])
    found = {a["condition_key"]: a for a in list_alarms(engine, status="all")}
    # The six hours' 8-hour mean, 180.8, is over the 8-hour limit of 160: GB 3095 Table 4
    # lets an exceeding O3 8-hour value count even with fewer than 6 hours... of 8 needed.
    assert sorted(found) == [
        f"ambient:{station}:a05024-8hmax:day",
        f"ambient:{station}:a05024:hour",
    ]
    alarm = found[f"ambient:{station}:a05024:hour"]
    assert alarm["started_at"] == T0 + dt.timedelta(hours=1)
    assert alarm["ended_at"] == T0 + dt.timedelta(hours=4)
    assert alarm["duration_seconds"] == 3 * 3600
    assert alarm["evidence"]["peak"]["value"] == 230
    assert alarm["evidence"]["peak"]["multiple"] == pytest.approx(0.15)
    assert alarm["region_code"] == "110000"


def test_heavy_pollution_warning_escalates_and_closes(
    engine: Engine, points: dict[str, int]
) -> None:
    pipeline = Pipeline(engine)
    station = points["1001A"]
    # PM2.5 daily means; HJ 633 Table 1: 150→IAQI 200, 250→300, so 160→210, 170→220,
    # 180→230, 260→310, 270→320, 50→69.
    days = [160, 170, 180, 260, 270, 50]
    for index, mean in enumerate(days):
        start = DAY0 + dt.timedelta(days=index)
        rows = [
            hour(station, "a34004", start + dt.timedelta(hours=h), varied(mean, h))
            for h in range(24)
        ]
        feed(pipeline, rows)
    alarm = only_alarm(engine, "heavy_pollution")
    assert alarm["region_code"] == "110000"
    assert alarm["severity"] == "red"
    assert alarm["started_at"] == DAY0 + dt.timedelta(days=1)  # yellow from day 2
    assert alarm["ended_at"] == DAY0 + dt.timedelta(days=5)
    assert alarm["evidence"]["peak"]["run_aqi"] == [210, 220, 230, 310, 320]
    history = alarm_history(engine, alarm["id"])
    assert [(e["action"], (e["details"] or {}).get("to")) for e in history] == [
        ("opened", None),
        ("escalated", "orange"),
        ("escalated", "red"),
        ("closed", None),
    ]
    # PM2.5 24-h 75 exceeded on days 1-5: one ambient alarm over those days too.
    ambient = only_alarm(engine, "ambient_exceedance")
    assert ambient["started_at"] == DAY0 and ambient["ended_at"] == DAY0 + dt.timedelta(days=5)


def _permit_with_mass(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        service.upsert_permit(
            session,
            PermitIn(
                permit_no="91110106MA00DEM01H001P",
                enterprise_uscc=DEMO_USCC,
                valid_from=dt.date(2023, 1, 1),
                valid_to=dt.date(2027, 12, 31),
                limits=[
                    PermitLimitIn(
                        outlet_code="DA001",
                        parameter_code="a21026",
                        concentration_limit=10,
                        unit="mg/m³",
                        daily_mass_limit_kg=5,
                        annual_mass_limit_kg=12,
                    )
                ],
            ),
            "test",
        )


def test_late_data_and_maintenance_windows(engine: Engine, points: dict[str, int]) -> None:
    pipeline = Pipeline(engine)
    p1 = points["P0001"]  # SO2 permitted at 10 mg/m³
    at = [T0 + dt.timedelta(hours=h) for h in range(10)]
    feed(pipeline, [hour(p1, "a21026", at[3], 15.0), hour(p1, "a21026", at[4], 16.0)])
    feed(pipeline, [hour(p1, "a21026", at[2], 14.0)])  # late: the alarm started earlier
    feed(pipeline, [hour(p1, "a21026", at[5], 5.0)])
    alarm = only_alarm(engine, "source_exceedance")
    assert alarm["started_at"] == at[2] and alarm["ended_at"] == at[5]
    assert alarm["evidence"]["active_periods"] == 3
    # A late exceeding hour inside the closed alarm's span joins it: no second alarm.
    feed(pipeline, [hour(p1, "a21026", at[3], 17.0)])
    alarm = only_alarm(engine, "source_exceedance")
    assert alarm["evidence"]["peak"]["value"] == 17.0

    # Declared maintenance 06:00-08:00: exceedances inside it open nothing.
    lifecycle.add_maintenance_window(engine, p1, at[6], at[8], "calibration", "test")
    feed(pipeline, [hour(p1, "a21026", at[6], 30.0), hour(p1, "a21026", at[7], 30.0)])
    assert len(list_alarms(engine, status="all", kind="source_exceedance")) == 1
    feed(pipeline, [hour(p1, "a21026", at[8], 30.0)])
    assert len(list_alarms(engine, status="unclosed", kind="source_exceedance")) == 1
    with pytest.raises(AlarmError, match="must end after"):
        lifecycle.add_maintenance_window(engine, p1, at[8], at[6], "x", "test")


def test_people_acknowledge_annotate_and_close(engine: Engine, points: dict[str, int]) -> None:
    pipeline = Pipeline(engine)
    p1 = points["P0001"]
    feed(pipeline, [hour(p1, "a21026", T0, 25.0)])  # 25 vs 10: multiple 1.5, serious
    alarm = only_alarm(engine, "source_exceedance")
    assert alarm["severity"] == "serious"
    lifecycle.acknowledge(engine, alarm["id"], "inspector-li", "calling the plant")
    with pytest.raises(AlarmError, match="already acknowledged by inspector-li"):
        lifecycle.acknowledge(engine, alarm["id"], "someone", None)
    lifecycle.annotate(engine, alarm["id"], "inspector-li", "plant reports a bag filter leak")
    with pytest.raises(AlarmError, match="needs a reason"):
        lifecycle.close(engine, alarm["id"], "inspector-li", " ")
    lifecycle.close(engine, alarm["id"], "inspector-li", "filter replaced, verified on site")
    closed = only_alarm(engine, "source_exceedance")
    assert closed["status"] == "closed" and closed["closed_by"] == "inspector-li"
    assert closed["close_reason"] == "manual: filter replaced, verified on site"
    with pytest.raises(AlarmError, match="is closed"):
        lifecycle.close(engine, alarm["id"], "x", "again")
    with pytest.raises(AlarmError, match="no alarm 9999"):
        lifecycle.acknowledge(engine, 9999, "x")
    actions = [e["action"] for e in alarm_history(engine, alarm["id"])]
    assert actions == ["opened", "acknowledged", "annotated", "closed"]
    # The condition still holds: the next exceeding hour opens a new alarm.
    feed(pipeline, [hour(p1, "a21026", T0 + dt.timedelta(hours=1), 25.0)])
    assert len(list_alarms(engine, status="unclosed", kind="source_exceedance")) == 1


def test_daily_and_annual_emitted_mass(engine: Engine, points: dict[str, int]) -> None:
    _permit_with_mass(engine)
    pipeline = Pipeline(engine)
    p1 = points["P0001"]
    # 0.25 kg an hour: 6 kg a day > 5 permitted; 18 kg in three days > 12 a year.
    for day in range(3):
        start = DAY0 + dt.timedelta(days=day)
        feed(
            pipeline,
            [
                hour(p1, "a21026-Cou", start + dt.timedelta(hours=h), 0.25 + ((h % 4) - 1.5) * 0.02)
                for h in range(24)
            ],
        )
    daily = [a for a in list_alarms(engine, status="all", kind="mass_overrun")]
    keys = sorted(a["condition_key"] for a in daily)
    assert keys == [f"mass_annual:{p1}:a21026:2024", f"mass_daily:{p1}:a21026"]
    annual = next(a for a in daily if a["condition_key"].startswith("mass_annual"))
    assert annual["evidence"]["latest"]["value"] == pytest.approx(18.0)
    assert annual["status"] == "open"


def test_device_fault_for_two_hours_raises_one_anomaly_alarm(
    engine: Engine, points: dict[str, int]
) -> None:
    pipeline = Pipeline(engine)
    p1 = points["P0001"]
    at = [T0 + dt.timedelta(hours=h) for h in range(6)]
    feed(pipeline, [hour(p1, "a01012", at[0], 120.0)])
    feed(pipeline, [hour(p1, "a01012", at[1], 120.5, "D")])
    feed(pipeline, [hour(p1, "a01012", at[2], 121.0, "D")])
    assert not list_alarms(engine, status="all", kind="data_anomaly")  # hour 2 not complete
    feed(pipeline, [hour(p1, "a01012", at[3], 121.5, "D")])
    alarm = only_alarm(engine, "data_anomaly")
    assert alarm["condition_key"] == f"anomaly:{p1}:device_flag"
    assert alarm["started_at"] == at[2]
    feed(pipeline, [hour(p1, "a01012", at[4], 122.0)])
    feed(pipeline, [hour(p1, "a01012", at[5], 122.5)])
    alarm = only_alarm(engine, "data_anomaly")
    assert alarm["status"] == "closed" and alarm["ended_at"] == at[4]


def _exceed(pipeline: Pipeline, point: int, hours: range) -> None:
    for h in hours:
        feed(pipeline, [hour(point, "a21026", T0 + dt.timedelta(hours=h), 30.0 if h % 2 else 1)])


def test_webhook_retries_with_backoff_then_delivers(engine: Engine, points: dict[str, int]) -> None:
    settings = Settings(notify_backoff_seconds=10, notify_max_attempts=3)
    with WebhookReceiver(fail_first=2) as receiver:
        create_subscription(
            engine, name="hook", channel="webhook", target=receiver.url, actor="test"
        )
        _exceed(Pipeline(engine), points["P0001"], range(2))  # opens one alarm
        notifier = Notifier(engine, settings)
        t = NOW + dt.timedelta(days=1)
        first = notifier.deliver_due(t)
        assert (first.sent, first.retried) == (0, 1)
        assert notifier.deliver_due(t + dt.timedelta(seconds=5)).sent == 0  # not due yet
        second = notifier.deliver_due(t + dt.timedelta(seconds=11))
        assert second.retried == 1  # second failure: next try 20 s later
        (row,) = list_notifications(engine)
        assert row["attempts"] == 2 and "HTTP 500" in row["last_error"]
        assert row["next_attempt_at"] == t + dt.timedelta(seconds=31)
        third = notifier.deliver_due(t + dt.timedelta(seconds=31))
        assert third.sent == 1
        assert len(receiver.calls) == 3
        notifier.close()
        (row,) = list_notifications(engine)
        assert row["status"] == "sent" and row["attempts"] == 3


def test_a_dead_webhook_is_marked_failed_after_the_last_attempt(
    engine: Engine, points: dict[str, int]
) -> None:
    settings = Settings(notify_backoff_seconds=1, notify_max_attempts=2, webhook_timeout=2)
    create_subscription(
        engine, name="dead", channel="webhook", target="http://127.0.0.1:9/hook", actor="test"
    )
    _exceed(Pipeline(engine), points["P0001"], range(2))
    notifier = Notifier(engine, settings)
    t = NOW + dt.timedelta(days=1)
    notifier.deliver_due(t)
    report = notifier.deliver_due(t + dt.timedelta(seconds=2))
    notifier.close()
    assert report.failed == 1
    (row,) = list_notifications(engine)
    assert row["status"] == "failed" and "ConnectError" in row["last_error"]


def test_digest_sends_one_message_per_window_and_filters_apply(
    engine: Engine, points: dict[str, int]
) -> None:
    with WebhookReceiver() as receiver:
        create_subscription(
            engine,
            name="digest",
            channel="webhook",
            target=receiver.url,
            actor="test",
            digest_minutes=30,
        )
        # Another region only: receives nothing from the Beijing plant.
        create_subscription(
            engine,
            name="guangdong",
            channel="webhook",
            target=receiver.url,
            actor="test",
            region_code="440000",
        )
        # Opens (h1), closes (h2), opens (h3), closes (h4): four events.
        _exceed(Pipeline(engine), points["P0001"], range(5))
        notifier = Notifier(engine)
        t = NOW + dt.timedelta(days=1)
        assert notifier.deliver_due(NOW + dt.timedelta(minutes=10)).sent == 0  # window open
        report = notifier.deliver_due(t)
        notifier.close()
    assert (report.sent, report.messages) == (4, 1)
    (document,) = receiver.documents()
    assert document["digest"] is True and document["count"] == 4
    assert [item["event"] for item in document["items"]] == ["opened", "closed"] * 2


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


def test_email_goes_through_the_configured_smtp_server(
    engine: Engine, points: dict[str, int]
) -> None:
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_sender="alarms@eco.test")
        create_subscription(
            engine,
            name="duty officer",
            channel="email",
            target="duty@eco.test",
            actor="test",
            enterprise_id=_enterprise_id(engine),
        )
        _exceed(Pipeline(engine), points["P0001"], range(2))
        notifier = Notifier(engine, settings)
        report = notifier.deliver_due(NOW + dt.timedelta(days=1))
        notifier.close()
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    assert report.sent == 1
    (message,) = inbox.messages
    assert "To: duty@eco.test" in message and "source_exceedance" in message


def _enterprise_id(engine: Engine) -> int:
    from ecohub.registry.models import Enterprise

    with Session(engine) as session:
        return session.scalars(select(Enterprise.id).filter_by(uscc=DEMO_USCC)).one()


def test_bad_subscriptions_are_refused(engine: Engine) -> None:
    with pytest.raises(SubscriptionError, match="http"):
        create_subscription(engine, name="x", channel="webhook", target="ftp://x", actor="t")
    with pytest.raises(SubscriptionError, match="e-mail"):
        create_subscription(engine, name="x", channel="email", target="not-an-address", actor="t")
    with pytest.raises(SubscriptionError, match="unknown alarm kind"):
        create_subscription(
            engine, name="x", channel="email", target="a@b.cn", actor="t", kinds=["fire"]
        )
    with pytest.raises(SubscriptionError, match="channel"):
        create_subscription(engine, name="x", channel="sms", target="123", actor="t")
