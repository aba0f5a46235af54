"""Notifications of alarms: subscriptions, the outbox, and delivery by webhook or e-mail.

Rule evaluation only writes ``notifications`` rows (the outbox) in the transaction that
changed the alarm, so a notification exists exactly when its alarm change was committed.
:class:`Notifier` delivers due rows afterwards:

- webhook: an HTTP POST of JSON, signed with HMAC-SHA256 of the body under the
  subscription's secret (header ``X-EcoHub-Signature: sha256=<hex>``), with the delivery
  ids in ``X-EcoHub-Delivery`` so a receiver can drop a repeat;
- e-mail: through the SMTP server of the settings.

A failed delivery is retried with exponential backoff (``notify_backoff_seconds``,
doubled each time) and marked failed after ``notify_max_attempts``, its last error kept.
A digest subscription receives everything due in one message once the oldest pending
item is ``digest_minutes`` old, so a supervisor is not flooded. One notifier process per
store is assumed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import smtplib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import Connection, Engine, insert, select, update

from ecohub.alarms.events import Event
from ecohub.alarms.tables import (
    AlarmKind,
    Channel,
    DeliveryStatus,
    alarm_subscriptions,
    alarms,
    notifications,
)
from ecohub.clock import utcnow
from ecohub.config import Settings, get_settings
from ecohub.db.engine import write_transaction
from ecohub.registry.regions import region_prefix

log = logging.getLogger(__name__)
EVENTS = ("opened", "escalated", "closed")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")


class SubscriptionError(ValueError):
    """A subscription that cannot be created as asked."""


def _csv(values: Sequence[str] | None) -> str | None:
    return ",".join(values) if values else None


def create_subscription(
    engine: Engine,
    *,
    name: str,
    channel: str,
    target: str,
    actor: str,
    kinds: Sequence[str] | None = None,
    events: Sequence[str] = EVENTS,
    region_code: str | None = None,
    enterprise_id: int | None = None,
    site_id: int | None = None,
    digest_minutes: int | None = None,
) -> tuple[int, str | None]:
    """Subscribe a webhook or an e-mail address to alarms; returns (id, webhook secret)."""
    try:
        channel = Channel(channel).value
    except ValueError:
        raise SubscriptionError(f"channel must be webhook or email, not {channel!r}") from None
    if channel == Channel.WEBHOOK.value:
        url = urlparse(target)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise SubscriptionError(f"a webhook target must be an http(s) URL, not {target!r}")
    elif not _EMAIL.match(target):
        raise SubscriptionError(f"not an e-mail address: {target!r}")
    for kind in kinds or ():
        if kind not in {member.value for member in AlarmKind}:
            known = ", ".join(member.value for member in AlarmKind)
            raise SubscriptionError(f"unknown alarm kind {kind!r} (known: {known})")
    for event in events:
        if event not in EVENTS:
            raise SubscriptionError(f"unknown event {event!r} (known: {', '.join(EVENTS)})")
    if digest_minutes is not None and digest_minutes <= 0:
        raise SubscriptionError("a digest window must be a positive number of minutes")
    secret = secrets.token_hex(32) if channel == Channel.WEBHOOK.value else None
    with write_transaction(engine) as connection:
        subscription_id = connection.execute(
            insert(alarm_subscriptions)
            .values(
                name=name,
                channel=channel,
                target=target,
                secret=secret,
                kinds=_csv(kinds),
                events=",".join(events),
                region_code=region_code,
                enterprise_id=enterprise_id,
                site_id=site_id,
                digest_minutes=digest_minutes,
                active=True,
                created_by=actor,
                created_at=utcnow(),
            )
            .returning(alarm_subscriptions.c.id)
        ).scalar_one()
    return int(subscription_id), secret


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def alarm_payload(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm as JSON-ready data (what webhooks, e-mails and the API show)."""
    return {
        "id": alarm["id"],
        "kind": alarm["kind"],
        "status": alarm["status"],
        "severity": alarm["severity"],
        "summary": alarm["summary"],
        "point_id": alarm["point_id"],
        "site_id": alarm["site_id"],
        "enterprise_id": alarm["enterprise_id"],
        "region_code": alarm["region_code"],
        "parameter_code": alarm["parameter_code"],
        "started_at": _iso(alarm["started_at"]),
        "last_active_at": _iso(alarm["last_active_at"]),
        "ended_at": _iso(alarm["ended_at"]),
        "duration_seconds": alarm["duration_seconds"],
        "opened_at": _iso(alarm["opened_at"]),
        "acknowledged_at": _iso(alarm["acknowledged_at"]),
        "acknowledged_by": alarm["acknowledged_by"],
        "closed_at": _iso(alarm["closed_at"]),
        "closed_by": alarm["closed_by"],
        "close_reason": alarm["close_reason"],
        "evidence": alarm["evidence"],
    }


def _matches(subscription: dict[str, Any], alarm: dict[str, Any], event: str) -> bool:
    if event not in subscription["events"].split(","):
        return False
    if subscription["kinds"] and alarm["kind"] not in subscription["kinds"].split(","):
        return False
    for name in ("enterprise_id", "site_id"):
        if subscription[name] is not None and subscription[name] != alarm[name]:
            return False
    wanted_region = subscription["region_code"]
    return not wanted_region or (alarm["region_code"] or "").startswith(
        region_prefix(wanted_region)
    )


def enqueue(connection: Connection, events: Sequence[Event], now: dt.datetime) -> int:
    """Queue a notification per (event, matching subscription); returns how many."""
    if not events:
        return 0
    subscriptions = [
        dict(row._mapping)
        for row in connection.execute(
            select(alarm_subscriptions).where(alarm_subscriptions.c.active.is_(True))
        )
    ]
    if not subscriptions:
        return 0
    ids = sorted({event.alarm_id for event in events})
    by_id = {
        row.id: dict(row._mapping)
        for row in connection.execute(select(alarms).where(alarms.c.id.in_(ids)))
    }
    rows = []
    for event in events:
        alarm = by_id[event.alarm_id]
        for subscription in subscriptions:
            if _matches(subscription, alarm, event.action):
                rows.append(
                    {
                        "subscription_id": subscription["id"],
                        "alarm_id": event.alarm_id,
                        "event": event.action,
                        "payload": {"event": event.action, "alarm": alarm_payload(alarm)},
                        "created_at": now,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                )
    if rows:
        connection.execute(insert(notifications), rows)
    return len(rows)


def sign(secret: str, body: bytes) -> str:
    """The ``X-EcoHub-Signature`` header value of a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class DeliveryReport:
    sent: int = 0  # notifications delivered
    messages: int = 0  # webhook calls or e-mails that succeeded (a digest is one)
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Notifier:
    """Delivers due notifications (call :meth:`deliver_due` periodically)."""

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.http = httpx.Client(timeout=self.settings.webhook_timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def deliver_due(self, now: dt.datetime | None = None) -> DeliveryReport:
        now = now or utcnow()
        report = DeliveryReport()
        with self.engine.connect() as connection:
            due = [
                dict(row._mapping)
                for row in connection.execute(
                    select(
                        notifications,
                        alarm_subscriptions.c.channel,
                        alarm_subscriptions.c.target,
                        alarm_subscriptions.c.secret,
                        alarm_subscriptions.c.digest_minutes,
                        alarm_subscriptions.c.name,
                    )
                    .join(
                        alarm_subscriptions,
                        alarm_subscriptions.c.id == notifications.c.subscription_id,
                    )
                    .where(
                        notifications.c.status == DeliveryStatus.PENDING.value,
                        notifications.c.next_attempt_at <= now,
                    )
                    .order_by(notifications.c.id)
                    .limit(1000)
                )
            ]
        by_subscription: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in due:
            by_subscription[row["subscription_id"]].append(row)
        for rows in by_subscription.values():
            digest = rows[0]["digest_minutes"]
            if digest:
                oldest = min(row["created_at"] for row in rows)
                if now - oldest < dt.timedelta(minutes=digest):
                    continue
                self._deliver(rows, now, report, digest=True)
            else:
                for row in rows:
                    self._deliver([row], now, report, digest=False)
        return report

    def _deliver(
        self, rows: list[dict[str, Any]], now: dt.datetime, report: DeliveryReport, *, digest: bool
    ) -> None:
        first = rows[0]
        try:
            if first["channel"] == Channel.WEBHOOK.value:
                self._post(rows, digest)
            else:
                self._mail(rows, digest)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        ids = [row["id"] for row in rows]
        attempts = first["attempts"] + 1
        with write_transaction(self.engine) as connection:
            if error is None:
                values: dict[str, Any] = {
                    "status": DeliveryStatus.SENT.value,
                    "sent_at": now,
                    "attempts": attempts,
                    "last_error": None,
                }
                report.sent += len(rows)
                report.messages += 1
            elif attempts >= self.settings.notify_max_attempts:
                values = {
                    "status": DeliveryStatus.FAILED.value,
                    "attempts": attempts,
                    "last_error": error,
                }
                report.failed += len(rows)
                report.errors.append(error)
                log.error("notification %s to %s failed for good: %s", ids, first["target"], error)
            else:
                delay = self.settings.notify_backoff_seconds * 2 ** (attempts - 1)
                values = {
                    "attempts": attempts,
                    "last_error": error,
                    "next_attempt_at": now + dt.timedelta(seconds=delay),
                }
                report.retried += len(rows)
                report.errors.append(error)
                log.warning(
                    "notification %s to %s failed (%s); retry in %.0f s",
                    ids,
                    first["target"],
                    error,
                    delay,
                )
            connection.execute(
                update(notifications).where(notifications.c.id.in_(ids)).values(values)
            )

    def _post(self, rows: list[dict[str, Any]], digest: bool) -> None:
        first = rows[0]
        if digest:
            document: dict[str, Any] = {
                "digest": True,
                "count": len(rows),
                "items": [row["payload"] for row in rows],
            }
        else:
            document = first["payload"]
        body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "EcoHub-alarms/1",
            "X-EcoHub-Event": "digest" if digest else first["event"],
            "X-EcoHub-Delivery": ",".join(str(row["id"]) for row in rows),
        }
        if first["secret"]:
            headers["X-EcoHub-Signature"] = sign(first["secret"], body)
        response = self.http.post(first["target"], content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code} from {first['target']}")

    def _mail(self, rows: list[dict[str, Any]], digest: bool) -> None:
        settings = self.settings
        if not settings.smtp_host:
            raise RuntimeError("no SMTP server configured (set ECOHUB_SMTP_HOST)")
        message = EmailMessage()
        message["From"] = settings.smtp_sender
        message["To"] = rows[0]["target"]
        lines = []
        for row in rows:
            alarm = row["payload"]["alarm"]
            lines.append(
                f"[{row['event']}] #{alarm['id']} {alarm['kind']} ({alarm['severity']}): "
                f"{alarm['summary']}\n    started {alarm['started_at']}"
                + (f", ended {alarm['ended_at']}" if alarm["ended_at"] else "")
            )
        if digest:
            message["Subject"] = f"[EcoHub] {len(rows)} alarm notifications"
        else:
            alarm = rows[0]["payload"]["alarm"]
            message["Subject"] = (
                f"[EcoHub] alarm #{alarm['id']} {rows[0]['event']}: {alarm['summary']}"
            )
        message.set_content("\n\n".join(lines) + "\n")
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)


def list_notifications(engine: Engine, alarm_id: int | None = None) -> list[dict[str, Any]]:
    query = select(notifications).order_by(notifications.c.id)
    if alarm_id is not None:
        query = query.where(notifications.c.alarm_id == alarm_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
