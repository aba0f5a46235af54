"""Intake of complaints from every channel (the public form, operators' systems through
the API, a call centre's CSV records): checks, a ticket number and a query code for the
complainant, the place's city and the agency responsible (``rules.route``), and the link
to an earlier complaint about the same thing (``linking``), all in one transaction per
batch so that nothing is half filed.

Intake is idempotent per source record: a complaint with a channel's ``external_ref``
already stored is not filed again (the operator's retry gets the same ticket back).
Concurrent intakes are serialised (SQLite's write lock; a PostgreSQL advisory lock) so
that two complaints about the same thing arriving together still land in one event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, text, update

from ecohub.clock import local_zone, utcnow
from ecohub.complaints.geo import box, cities_of, in_china
from ecohub.complaints.linking import Complaint, Linker, LinkSettings, tokens
from ecohub.complaints.rules import Agency, Medium, Step, route
from ecohub.complaints.secrets import Keyring, new_code
from ecohub.complaints.tables import (
    Channel,
    EventStatus,
    complaint_agencies,
    complaint_events,
    complaint_steps,
    complaints,
)
from ecohub.db.bulk import bulk_upsert
from ecohub.db.engine import write_transaction
from ecohub.registry.service import audit_row as audit

MAX_TEXT = 2000
MIN_TEXT = 5
MAX_ADDRESS = 300
MAX_CONTACT = 200
# 12369 (the hotline's number) as the advisory lock's key: one intake at a time.
INTAKE_LOCK = 12369
MEDIA = frozenset(medium.value for medium in Medium)
CHANNELS = frozenset(channel.value for channel in Channel)


class ComplaintError(ValueError):
    """A complaint or request that cannot be accepted (the message names the field)."""


@dataclass(frozen=True)
class Submission:
    """One complaint as it comes in."""

    medium: str
    text: str
    longitude: float
    latitude: float
    observed_at: dt.datetime | None = None  # when the thing was noticed; None: on receipt
    address: str = ""
    contact: str = ""  # name, telephone, e-mail: encrypted at rest
    anonymous: bool = False
    channel: str = Channel.PORTAL.value
    external_ref: str | None = None


@dataclass(frozen=True)
class Filed:
    """What the complainant is told: the ticket, the query code and the event."""

    complaint_id: int
    ticket: str
    code: str | None
    event_id: int
    linked_to: int | None
    score: float | None
    repeat: bool = False  # a source record filed before: the same ticket and code again


def check(submission: Submission, now: dt.datetime) -> Submission:
    """The submission with its text trimmed, or a :class:`ComplaintError` naming the
    first field that is wrong."""
    if submission.medium not in MEDIA:
        raise ComplaintError(f"medium: {submission.medium!r} is none of {', '.join(Medium)}")
    if submission.channel not in CHANNELS:
        raise ComplaintError(f"channel: {submission.channel!r} is none of {', '.join(Channel)}")
    body = submission.text.strip()
    if not MIN_TEXT <= len(body) <= MAX_TEXT:
        raise ComplaintError(
            f"text: {len(body)} characters; between {MIN_TEXT} and {MAX_TEXT} are accepted"
        )
    for value, name in ((submission.longitude, "longitude"), (submission.latitude, "latitude")):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ComplaintError(f"{name}: a location is required (a point on the map)")
    if not in_china(submission.longitude, submission.latitude):
        raise ComplaintError(
            f"longitude, latitude: ({submission.longitude}, {submission.latitude}) is not in "
            "China; choose the place on the map"
        )
    if len(submission.address) > MAX_ADDRESS:
        raise ComplaintError(f"address: longer than {MAX_ADDRESS} characters")
    contact = submission.contact.strip()
    if len(contact) > MAX_CONTACT:
        raise ComplaintError(f"contact: longer than {MAX_CONTACT} characters")
    if submission.anonymous and contact:
        raise ComplaintError("contact: an anonymous complaint carries no contact details")
    observed = submission.observed_at or now
    if observed.tzinfo is None:
        raise ComplaintError("observed_at: give the time with its offset (e.g. +08:00)")
    if observed > now + dt.timedelta(hours=1):
        raise ComplaintError(f"observed_at: {observed.isoformat()} is in the future")
    if observed.year < 2000:
        raise ComplaintError(f"observed_at: {observed.isoformat()} is too long ago")
    if submission.external_ref is not None and not 0 < len(submission.external_ref) <= 64:
        raise ComplaintError("external_ref: 1 to 64 characters")
    return Submission(
        medium=submission.medium,
        text=body,
        longitude=float(submission.longitude),
        latitude=float(submission.latitude),
        observed_at=observed.astimezone(dt.UTC),
        address=submission.address.strip(),
        contact=contact,
        anonymous=submission.anonymous,
        channel=submission.channel,
        external_ref=submission.external_ref,
    )


def _allocate(connection: Connection, table: Any, count: int) -> list[int]:
    """``count`` fresh ids of ``table`` (its sequence on PostgreSQL; past the largest on
    SQLite, whose write lock the caller holds)."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": count},
        ).scalars()
        return [int(value) for value in rows]
    largest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(largest) + 1, int(largest) + 1 + count))


def agencies_for_routing(connection: Connection) -> list[Agency]:
    rows = connection.execute(
        select(complaint_agencies).where(complaint_agencies.c.active.is_(True))
    ).all()
    return [Agency(row.code, row.region_code, tuple(row.media), row.parent_code) for row in rows]


def _seed(connection: Connection, linker: Linker, batch: Sequence[Submission]) -> None:
    """Put the stored complaints a batch may link to into ``linker``: same media, within
    the time window of the batch's times and the radius of its box."""
    settings = linker.settings
    window = dt.timedelta(hours=settings.window_hours)
    times = [item.observed_at for item in batch if item.observed_at is not None]
    west, south, _, _ = box(
        min(item.longitude for item in batch),
        min(item.latitude for item in batch),
        settings.radius_m,
    )
    _, _, east, north = box(
        max(item.longitude for item in batch),
        max(item.latitude for item in batch),
        settings.radius_m,
    )
    query = select(
        complaints.c.id,
        complaints.c.medium,
        complaints.c.longitude,
        complaints.c.latitude,
        complaints.c.observed_at,
        complaints.c.tokens,
        complaints.c.event_id,
    ).where(
        complaints.c.medium.in_(sorted({item.medium for item in batch})),
        complaints.c.observed_at >= min(times) - window,
        complaints.c.observed_at <= max(times) + window,
        complaints.c.longitude.between(west, east),
        complaints.c.latitude.between(south, north),
    )
    for row in connection.execute(query.order_by(complaints.c.observed_at, complaints.c.id)):
        stored = Complaint(
            row.id,
            row.medium,
            row.longitude,
            row.latitude,
            row.observed_at,
            tuple(row.tokens.split()),
        )
        linker.add(stored, row.event_id)


def file_complaints(
    engine: Engine,
    keys: Keyring,
    batch: Sequence[Submission],
    actor: str,
    settings: LinkSettings | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    words: Sequence[tuple[str, ...]] | None = None,
) -> list[Filed]:
    """File checked submissions (see :func:`check`) as one transaction; returns what each
    complainant is told, in the order given. ``words``: each text's tokens when already
    cut (a bulk import cuts them in worker processes)."""
    now = now or utcnow()
    if not batch:
        return []
    settings = settings or LinkSettings()
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INTAKE_LOCK})
            # The lookups by source record id are prepared after a few batches; a generic
            # plan made while the table was small scans it whole (seen: 4-7 s a batch of
            # 5,000 once 25,000 rows were in). Plans made for the values keep the index.
            connection.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        repeats = _repeats(connection, keys, batch)
        fresh, firsts = [], {}
        for item in batch:
            ref = (item.channel, item.external_ref)
            if ref in repeats:
                continue
            if item.external_ref is not None:
                if ref in firsts:  # the same record twice in one batch: filed once
                    continue
                firsts[ref] = item
            fresh.append(item)
        cut = {id(item): found for item, found in zip(batch, words, strict=True)} if words else {}
        filed = _file(connection, keys, fresh, cut, actor, settings, now, progress) if fresh else {}
    out = []
    for item in batch:
        ref = (item.channel, item.external_ref)
        if ref in repeats:
            out.append(repeats[ref])
        elif id(item) in filed:
            out.append(filed[id(item)])
        else:
            out.append(dataclasses.replace(filed[id(firsts[ref])], repeat=True))
    return out


def _repeats(
    connection: Connection, keys: Keyring, batch: Sequence[Submission]
) -> dict[tuple[str, Any], Filed]:
    refs = {(item.channel, item.external_ref) for item in batch if item.external_ref}
    found: dict[tuple[str, Any], Filed] = {}
    for channel in {channel for channel, _ in refs}:
        wanted = [ref for kind, ref in refs if kind == channel]
        for start in range(0, len(wanted), 1000):
            rows = connection.execute(
                select(complaints).where(
                    complaints.c.channel == channel,
                    complaints.c.external_ref.in_(wanted[start : start + 1000]),
                )
            ).all()
            for row in rows:
                code = keys.derived_code(f"{channel}:{row.external_ref}")
                found[(channel, row.external_ref)] = Filed(
                    row.id, row.ticket, code, row.event_id, row.linked_to, row.link_score, True
                )
    return found


def _file(
    connection: Connection,
    keys: Keyring,
    batch: Sequence[Submission],
    cut: dict[int, tuple[str, ...]],
    actor: str,
    settings: LinkSettings,
    now: dt.datetime,
    progress: Callable[[int], None] | None,
) -> dict[int, Filed]:
    linker = Linker(settings)
    _seed(connection, linker, batch)
    agencies = agencies_for_routing(connection)
    cities = cities_of([(item.longitude, item.latitude) for item in batch])
    ids = _allocate(connection, complaints, len(batch))
    order = sorted(range(len(batch)), key=lambda index: (batch[index].observed_at, ids[index]))
    day = now.astimezone(local_zone()).strftime("%Y%m%d")
    rows: list[dict[str, Any]] = []
    new_events: dict[int, dict[str, Any]] = {}  # provisional id (a complaint id) -> row
    joined: Counter[int] = Counter()  # stored events that gained complaints
    filed: dict[int, Filed] = {}
    for done, index in enumerate(order, 1):
        item, ident = batch[index], ids[index]
        words = cut[id(item)] if id(item) in cut else tokens(item.text)
        assert item.observed_at is not None
        candidate = Complaint(
            ident, item.medium, item.longitude, item.latitude, item.observed_at, words
        )
        match = linker.match(candidate)
        event = match.event_id if match else -ident  # negative: an event made here
        linker.add(candidate, event)
        if match is None:
            new_events[-ident] = _event_row(item, cities[index], agencies, now)
        elif event < 0:
            new_events[event]["complaint_count"] += 1
        else:
            joined[event] += 1
        ref = item.external_ref
        code = keys.derived_code(f"{item.channel}:{ref}") if ref else new_code()
        ticket = f"{day}{ident:07d}"
        rows.append(_complaint_row(item, ident, ticket, keys, code, words, cities[index], now))
        rows[-1].update(
            event_id=event,
            linked_to=match.complaint_id if match else None,
            link_score=match.score if match else None,
            link_distance_m=match.distance_m if match else None,
            link_hours=match.hours if match else None,
        )
        filed[id(item)] = Filed(
            ident, ticket, code, event, rows[-1]["linked_to"], match.score if match else None
        )
        if progress is not None and done % 1000 == 0:
            progress(1000)
    fresh_ids = _allocate(connection, complaint_events, len(new_events))
    real = dict(zip(new_events, fresh_ids, strict=True))
    _write(connection, rows, new_events, real, joined, actor, now)
    if progress is not None:
        progress(len(batch) % 1000)
    return {
        key: dataclasses.replace(value, event_id=real.get(value.event_id, value.event_id))
        for key, value in filed.items()
    }


def _event_row(
    item: Submission, city: str | None, agencies: Sequence[Agency], now: dt.datetime
) -> dict[str, Any]:
    agency = route(agencies, city, item.medium)
    return {
        "medium": item.medium,
        "status": EventStatus.RECEIVED.value,
        "region_code": city,
        "agency_code": agency.code if agency else None,
        "title": item.text[:60],
        "longitude": item.longitude,
        "latitude": item.latitude,
        "first_observed_at": item.observed_at,
        "received_at": now,
        "accepted_at": None,
        "replied_at": None,
        "review_requested_at": None,
        "closed_at": None,
        "extension_days": 0,
        "complaint_count": 1,
        "findings": None,
        "reply": None,
        "case_id": None,
        "enterprise_id": None,
        "updated_at": now,
    }


def _complaint_row(
    item: Submission,
    ident: int,
    ticket: str,
    keys: Keyring,
    code: str,
    words: tuple[str, ...],
    city: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": ident,
        "ticket": ticket,
        "code_digest": keys.code_digest(ticket, code),
        "channel": item.channel,
        "external_ref": item.external_ref,
        "medium": item.medium,
        "text": item.text,
        "tokens": " ".join(words),
        "address": item.address,
        "longitude": item.longitude,
        "latitude": item.latitude,
        "region_code": city,
        "observed_at": item.observed_at,
        "received_at": now,
        "anonymous": item.anonymous,
        "contact_cipher": keys.encrypt(item.contact) if item.contact else None,
        "satisfaction": None,
        "rated_at": None,
        "objection": None,
        "objected_at": None,
    }


def _write(
    connection: Connection,
    rows: list[dict[str, Any]],
    new_events: dict[int, dict[str, Any]],
    real: dict[int, int],
    joined: Counter[int],
    actor: str,
    now: dt.datetime,
) -> None:
    if new_events:
        made = [{"id": real[key], **row} for key, row in new_events.items()]
        bulk_upsert(connection, complaint_events, made, ("id",))
    if joined:
        connection.execute(
            update(complaint_events)
            .where(complaint_events.c.id == bindparam("event"))
            .values(
                complaint_count=complaint_events.c.complaint_count + bindparam("added"),
                updated_at=now,
            ),
            [{"event": event, "added": added} for event, added in joined.items()],
        )
    for row in rows:
        row["event_id"] = real.get(row["event_id"], row["event_id"])
    # COPY on PostgreSQL, one prepared executemany on SQLite (ecohub.db.bulk): the
    # intake's rows are the bulk of its time in the database.
    bulk_upsert(connection, complaints, rows, ("id",))
    step_ids = _allocate(connection, complaint_steps, len(rows))
    steps = [
        {
            "id": step_id,
            "event_id": row["event_id"],
            "complaint_id": row["id"],
            "step": Step.RECEIVED.value,
            "at": now,
            "actor": actor[:100],
            "agency_code": None,
            "to_agency_code": None,
            "days": None,
            "note": row["channel"],
        }
        for step_id, row in zip(step_ids, rows, strict=True)
    ]
    bulk_upsert(connection, complaint_steps, steps, ("id",))
    audit(
        connection,
        actor,
        "create",
        "complaints",
        f"{rows[0]['ticket']}..{rows[-1]['ticket']}",
        None,
        {"complaints": len(rows), "new_events": len(new_events), "joined_events": len(joined)},
    )
