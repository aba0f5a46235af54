"""The alarm lifecycle: turning rule judgements into alarms that open once, carry their
evidence, close when the condition clears, and can be acknowledged, annotated and
closed by people.

A condition (``condition_key``) has at most one unclosed alarm, enforced by a partial
unique index. Judgements of a condition are applied in data-time order:

- active, no unclosed alarm: open one (unless the point is in a declared maintenance
  window), or, for a late value inside the span of an alarm that already closed, add the
  value to that alarm's evidence;
- active, alarm unclosed: extend it (started earlier, last active later, new peak,
  severity raised → an ``escalated`` event);
- inactive after the last active period: close it as cleared, with its duration.

Every change is an ``alarm_events`` row; opened, escalated and closed events are queued
for the matching subscriptions (:mod:`ecohub.alarms.notify`) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update

from ecohub.alarms.events import Event, Sample
from ecohub.alarms.notify import enqueue
from ecohub.alarms.tables import AlarmStatus, alarm_events, alarms, maintenance_windows
from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction

SEVERITY_RANK = {"warning": 1, "serious": 2, "yellow": 1, "orange": 2, "red": 3}
MAX_EVIDENCE_PERIODS = 96
_CHUNK = 500
RULES_ACTOR = "rules"


class AlarmError(ValueError):
    """A lifecycle operation that cannot be done (unknown alarm, already closed)."""


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _with_period(evidence: dict[str, Any], sample: Sample) -> dict[str, Any]:
    """Evidence after adding one active period: latest, peak, and the periods' values."""
    entry = {"at": _iso(sample.at), **sample.judgement.evidence}
    earlier = evidence.get("periods", [])
    is_new = all(p["at"] != entry["at"] for p in earlier)
    periods = [p for p in earlier if p["at"] != entry["at"]]
    periods.append(entry)
    periods.sort(key=lambda p: p["at"])
    peak = evidence.get("peak")
    if peak is None or peak.get("at") == entry["at"] or _peak_value(entry) >= _peak_value(peak):
        peak = entry
    return {
        "period_seconds": sample.period.total_seconds(),
        "active_periods": evidence.get("active_periods", 0) + (1 if is_new else 0),
        "latest": periods[-1],
        "peak": peak,
        "periods": periods[-MAX_EVIDENCE_PERIODS:],
    }


def _peak_value(entry: dict[str, Any]) -> float:
    for name in ("multiple", "aqi", "value", "hours"):
        if isinstance(entry.get(name), int | float):
            return float(entry[name])
    return 0.0


def _stronger(severity: str, than: str) -> bool:
    return SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(than, 0)


def _load(connection: Connection, where: Any, keys: Sequence[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(alarms).where(alarms.c.condition_key.in_(chunk), where)
        found.extend(dict(row._mapping) for row in connection.execute(query))
    return found


def in_maintenance(
    connection: Connection, wanted: Iterable[tuple[int, dt.datetime]]
) -> set[tuple[int, dt.datetime]]:
    """The (point, instant) pairs that fall inside a declared maintenance window."""
    wanted = set(wanted)
    if not wanted:
        return set()
    point_ids = sorted({point_id for point_id, _ in wanted})
    earliest = min(instant for _, instant in wanted)
    windows: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for start in range(0, len(point_ids), _CHUNK):
        query = select(
            maintenance_windows.c.point_id,
            maintenance_windows.c.starts_at,
            maintenance_windows.c.ends_at,
        ).where(
            maintenance_windows.c.point_id.in_(point_ids[start : start + _CHUNK]),
            maintenance_windows.c.ends_at > earliest,
        )
        for point_id, starts_at, ends_at in connection.execute(query):
            windows[point_id].append((starts_at, ends_at))
    return {
        (point_id, instant)
        for point_id, instant in wanted
        if any(starts <= instant < ends for starts, ends in windows.get(point_id, ()))
    }


def apply_samples(
    connection: Connection, samples: Sequence[Sample], now: dt.datetime
) -> list[Event]:
    """Apply judgements to the alarms of their conditions; returns the events to notify."""
    if not samples:
        return []
    by_key: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_key[sample.key].append(sample)
    keys = sorted(by_key)
    unclosed = {
        row["condition_key"]: row
        for row in _load(connection, alarms.c.status != AlarmStatus.CLOSED.value, keys)
    }
    # Only conditions that may open an alarm need the closed alarms and maintenance windows.
    opening = [
        key for key in keys if key not in unclosed and any(s.judgement.active for s in by_key[key])
    ]
    closed_spans: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if opening:
        earliest = min(s.at for key in opening for s in by_key[key] if s.judgement.active)
        for row in _load(connection, alarms.c.ended_at > earliest, opening):
            closed_spans[row["condition_key"]].append(row)
    maintenance = in_maintenance(
        connection,
        (
            (s.subject.point_id, s.at)
            for key in opening
            for s in by_key[key]
            if s.judgement.active and s.subject.point_id is not None
        ),
    )
    applier = _Applier(connection, now, closed_spans, maintenance)
    for key in keys:
        current = unclosed.get(key)
        for sample in sorted(by_key[key], key=lambda s: s.at):
            if sample.judgement.active:
                current = applier.active(key, current, sample)
            elif current is not None:
                current = applier.inactive(current, sample)
    return applier.finish()


class _Applier:
    """The changes one call of :func:`apply_samples` makes: alarms changed, their history
    rows and the events to notify."""

    def __init__(
        self,
        connection: Connection,
        now: dt.datetime,
        closed_spans: dict[str, list[dict[str, Any]]],
        maintenance: set[tuple[int, dt.datetime]],
    ) -> None:
        self.connection = connection
        self.now = now
        self.closed_spans = closed_spans
        self.maintenance = maintenance
        self.changed: dict[int, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.events: list[Event] = []

    def record(
        self, alarm: dict[str, Any], action: str, details: dict[str, Any] | None = None
    ) -> None:
        self.history.append(
            {
                "alarm_id": alarm["id"],
                "at": self.now,
                "actor": RULES_ACTOR,
                "action": action,
                "note": None,
                "details": details,
            }
        )
        if action in ("opened", "escalated", "closed"):
            self.events.append(Event(alarm["id"], action))

    def active(
        self, key: str, current: dict[str, Any] | None, sample: Sample
    ) -> dict[str, Any] | None:
        """An active judgement: open an alarm, extend the unclosed one, or add a late
        period to the closed alarm whose span holds it; returns the unclosed alarm."""
        judgement = sample.judgement
        if current is None:
            late = next(
                (
                    row
                    for row in self.closed_spans.get(key, ())
                    if row["started_at"] <= sample.at < row["ended_at"]
                ),
                None,
            )
            if late is not None:
                late["evidence"] = _with_period(late["evidence"], sample)
                self.changed[late["id"]] = late
                self.record(late, "updated", {"late_period": _iso(sample.at)})
                return None
            if (sample.subject.point_id, sample.at) in self.maintenance:
                return None
            opened = _open(self.connection, sample, self.now)
            self.record(opened, "opened", {"at": _iso(sample.at)})
            return opened
        current["evidence"] = _with_period(current["evidence"], sample)
        current["started_at"] = min(current["started_at"], sample.at)
        current["last_active_at"] = max(current["last_active_at"], sample.at)
        current["summary"] = judgement.summary or current["summary"]
        if _stronger(judgement.severity, current["severity"]):
            before = current["severity"]
            current["severity"] = judgement.severity
            self.record(current, "escalated", {"from": before, "to": judgement.severity})
        self.changed[current["id"]] = current
        return current

    def inactive(self, current: dict[str, Any], sample: Sample) -> dict[str, Any] | None:
        """An inactive judgement after the last active period closes the alarm."""
        revised = sample.at == current["last_active_at"] == current["started_at"]
        if not (sample.at > current["last_active_at"] or revised):
            return current
        reason = (
            "cleared"
            if not revised
            else "retracted: the only active period was revised below the threshold"
        )
        _close(current, self.now, RULES_ACTOR, reason, ended_at=sample.at)
        # Written now: a later sample of this batch may open the next alarm.
        _write(self.connection, current)
        self.changed.pop(current["id"], None)
        self.record(current, "closed", {"ended_at": _iso(sample.at), "reason": reason})
        return None

    def finish(self) -> list[Event]:
        for alarm in self.changed.values():
            _write(self.connection, alarm)
        if self.history:
            self.connection.execute(insert(alarm_events), self.history)
        return self.events


def _write(connection: Connection, alarm: dict[str, Any]) -> None:
    connection.execute(
        update(alarms)
        .where(alarms.c.id == alarm["id"])
        .values({k: v for k, v in alarm.items() if k != "id"})
    )


def _open(connection: Connection, sample: Sample, now: dt.datetime) -> dict[str, Any]:
    subject = sample.subject
    row: dict[str, Any] = {
        "kind": sample.kind.value,
        "condition_key": sample.key,
        "status": AlarmStatus.OPEN.value,
        "severity": sample.judgement.severity,
        "point_id": subject.point_id,
        "site_id": subject.site_id,
        "enterprise_id": subject.enterprise_id,
        "region_code": subject.region_code,
        "parameter_code": subject.parameter_code,
        "summary": sample.judgement.summary,
        "evidence": _with_period({}, sample),
        "started_at": sample.at,
        "last_active_at": sample.at,
        "ended_at": None,
        "duration_seconds": None,
        "opened_at": now,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "closed_at": None,
        "closed_by": None,
        "close_reason": None,
    }
    row["id"] = connection.execute(insert(alarms).values(row).returning(alarms.c.id)).scalar_one()
    return row


def _close(
    alarm: dict[str, Any],
    now: dt.datetime,
    actor: str,
    reason: str,
    *,
    ended_at: dt.datetime | None = None,
) -> None:
    period = dt.timedelta(seconds=alarm["evidence"].get("period_seconds", 0))
    end = ended_at or alarm["last_active_at"] + period
    alarm.update(
        status=AlarmStatus.CLOSED.value,
        ended_at=end,
        duration_seconds=(end - alarm["started_at"]).total_seconds(),
        closed_at=now,
        closed_by=actor,
        close_reason=reason,
    )


# --- what people do ------------------------------------------------------------------


def _unclosed(connection: Connection, alarm_id: int) -> dict[str, Any]:
    row = connection.execute(select(alarms).where(alarms.c.id == alarm_id)).one_or_none()
    if row is None:
        raise AlarmError(f"no alarm {alarm_id}")
    alarm = dict(row._mapping)
    if alarm["status"] == AlarmStatus.CLOSED.value:
        raise AlarmError(f"alarm {alarm_id} is closed ({alarm['close_reason']})")
    return alarm


def _event(
    connection: Connection, alarm_id: int, actor: str, action: str, note: str | None
) -> None:
    connection.execute(
        insert(alarm_events).values(
            alarm_id=alarm_id, at=utcnow(), actor=actor, action=action, note=note, details=None
        )
    )


def acknowledge(engine: Engine, alarm_id: int, actor: str, note: str | None = None) -> None:
    """A person has seen the alarm and is on it."""
    with write_transaction(engine) as connection:
        alarm = _unclosed(connection, alarm_id)
        if alarm["status"] == AlarmStatus.ACKNOWLEDGED.value:
            raise AlarmError(
                f"alarm {alarm_id} was already acknowledged by {alarm['acknowledged_by']}"
            )
        connection.execute(
            update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(
                status=AlarmStatus.ACKNOWLEDGED.value,
                acknowledged_at=utcnow(),
                acknowledged_by=actor,
            )
        )
        _event(connection, alarm_id, actor, "acknowledged", note)


def annotate(engine: Engine, alarm_id: int, actor: str, note: str) -> None:
    """Add a note to an alarm's history (open or closed)."""
    if not note.strip():
        raise AlarmError("a note cannot be empty")
    with write_transaction(engine) as connection:
        if connection.execute(select(alarms.c.id).where(alarms.c.id == alarm_id)).first() is None:
            raise AlarmError(f"no alarm {alarm_id}")
        _event(connection, alarm_id, actor, "annotated", note)


def close(engine: Engine, alarm_id: int, actor: str, reason: str, *, notify: bool = True) -> None:
    """Close an alarm by hand, with a reason. If its condition still holds, the next
    judgement opens a new alarm."""
    if not reason.strip():
        raise AlarmError("closing an alarm by hand needs a reason")
    with write_transaction(engine) as connection:
        alarm = _unclosed(connection, alarm_id)
        now = utcnow()
        _close(alarm, now, actor, f"manual: {reason}")
        _write(connection, alarm)
        _event(connection, alarm_id, actor, "closed", reason)
        if notify:
            enqueue(connection, [Event(alarm_id, "closed")], now)


def add_maintenance_window(
    engine: Engine,
    point_id: int,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    actor: str,
) -> int:
    """Declare a maintenance window of a point: no alarm opens for it inside the window."""
    if ends_at <= starts_at:
        raise AlarmError("a maintenance window must end after it starts")
    if not reason.strip():
        raise AlarmError("a maintenance window needs a reason")
    with write_transaction(engine) as connection:
        return int(
            connection.execute(
                insert(maintenance_windows)
                .values(
                    point_id=point_id,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    reason=reason,
                    created_by=actor,
                    created_at=utcnow(),
                )
                .returning(maintenance_windows.c.id)
            ).scalar_one()
        )


def list_alarms(
    engine: Engine,
    *,
    status: str | None = None,
    kind: str | None = None,
    point_id: int | None = None,
    enterprise_id: int | None = None,
    region_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Alarms, newest first. ``status`` "unclosed" means open or acknowledged, "all" or
    None every status; ``region_prefix`` the GB/T 2260 codes starting with it."""
    query = select(alarms).order_by(alarms.c.started_at.desc(), alarms.c.id.desc())
    conditions = _alarm_filters(status, kind, point_id, enterprise_id, region_prefix)
    if conditions:
        query = query.where(and_(*conditions))
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit).offset(offset))
        return [dict(row._mapping) for row in rows]


def count_alarms(
    engine: Engine,
    *,
    status: str | None = None,
    kind: str | None = None,
    enterprise_id: int | None = None,
    region_prefix: str | None = None,
) -> int:
    """How many alarms :func:`list_alarms` would page through."""
    query = select(func.count()).select_from(alarms)
    conditions = _alarm_filters(status, kind, None, enterprise_id, region_prefix)
    if conditions:
        query = query.where(and_(*conditions))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _alarm_filters(
    status: str | None,
    kind: str | None,
    point_id: int | None,
    enterprise_id: int | None,
    region_prefix: str | None,
) -> list[Any]:
    conditions: list[Any] = []
    if status == "unclosed":
        conditions.append(alarms.c.status != AlarmStatus.CLOSED.value)
    elif status and status != "all":
        conditions.append(alarms.c.status == status)
    if kind:
        conditions.append(alarms.c.kind == kind)
    if point_id is not None:
        conditions.append(alarms.c.point_id == point_id)
    if enterprise_id is not None:
        conditions.append(alarms.c.enterprise_id == enterprise_id)
    if region_prefix:
        conditions.append(alarms.c.region_code.like(region_prefix + "%"))
    return conditions


def get_alarm(engine: Engine, alarm_id: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(alarms).where(alarms.c.id == alarm_id)).one_or_none()
        return None if row is None else dict(row._mapping)


def alarm_history(engine: Engine, alarm_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(alarm_events)
            .where(alarm_events.c.alarm_id == alarm_id)
            .order_by(alarm_events.c.id)
        )
        return [dict(row._mapping) for row in rows]
