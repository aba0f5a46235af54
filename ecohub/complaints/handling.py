"""The agency's handling of an event and the complainant's answers to it: acceptance or
refusal (受理 / 不予受理), transfer to the agency responsible with the reason (转办),
extension of the handling period (延期, within the rules' maximum), the findings and the
reply (办结) that every complainant of the event reads, the complainant's satisfaction,
an objection within the review window and the agency's decision on it (复查 or dismissal),
closing, and the penalty case opened from an event (recorded by the supervision area,
which stands on this one: :func:`note_case`). Every step is a row of ``complaint_steps`` and
an audit row; only the handling agency's staff act on an event (``handler_agency``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from ecohub.clock import local_zone, utcnow
from ecohub.complaints.intake import ComplaintError
from ecohub.complaints.rules import Deadline, Medium, Step, deadlines, due_date
from ecohub.complaints.secrets import Keyring
from ecohub.complaints.tables import (
    EventStatus,
    Satisfaction,
    complaint_agencies,
    complaint_events,
    complaint_handlers,
    complaint_steps,
    complaints,
)
from ecohub.db.engine import write_transaction
from ecohub.registry.service import audit_row as audit

OPEN_STATUSES = (
    EventStatus.RECEIVED.value,
    EventStatus.ACCEPTED.value,
    EventStatus.REVIEWING.value,
)


def add_agency(
    engine: Engine,
    code: str,
    name: str,
    region_code: str,
    actor: str,
    media: tuple[str, ...] = (),
    parent_code: str | None = None,
) -> None:
    """Add or update a handling agency."""
    if not (len(region_code) == 6 and region_code.isdigit()):
        raise ComplaintError(f"region_code: {region_code!r} is not a GB/T 2260 six-digit code")
    unknown = set(media) - set(Medium)
    if unknown:
        raise ComplaintError(f"media: {sorted(unknown)} unknown; expected {', '.join(Medium)}")
    now = utcnow()
    values: dict[str, Any] = {
        "name": name,
        "region_code": region_code,
        "media": list(media),
        "parent_code": parent_code,
        "active": True,
        "updated_at": now,
    }
    with write_transaction(engine) as connection:
        if parent_code and _agency(connection, parent_code) is None:
            raise ComplaintError(f"parent_code: no agency {parent_code!r}")
        before = _agency(connection, code)
        if before is None:
            connection.execute(insert(complaint_agencies).values(code=code, **values))
        else:
            connection.execute(
                update(complaint_agencies).where(complaint_agencies.c.code == code).values(values)
            )
        audit(
            connection,
            actor,
            "upsert",
            "complaint_agency",
            code,
            before,
            {**values, "updated_at": now.isoformat()},
        )


def add_handler(engine: Engine, account: str, agency_code: str, actor: str) -> None:
    """Make ``account`` (a user's or key's name) staff of ``agency_code``."""
    with write_transaction(engine) as connection:
        if _agency(connection, agency_code) is None:
            raise ComplaintError(f"agency: no agency {agency_code!r}")
        connection.execute(
            complaint_handlers.delete().where(complaint_handlers.c.account == account)
        )
        connection.execute(
            insert(complaint_handlers).values(
                account=account, agency_code=agency_code, updated_at=utcnow()
            )
        )
        audit(
            connection, actor, "upsert", "complaint_handler", account, None, {"agency": agency_code}
        )


def _agency(connection: Connection, code: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(complaint_agencies).where(complaint_agencies.c.code == code)
    ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["updated_at"] = found["updated_at"].isoformat()
    return found


def handler_agency(connection: Connection, account: str) -> str | None:
    """The agency whose staff ``account`` is (None: nobody's)."""
    found = connection.execute(
        select(complaint_handlers.c.agency_code).where(complaint_handlers.c.account == account)
    ).scalar()
    return str(found) if found is not None else None


def agency_of(engine: Engine, account: str) -> str | None:
    with engine.connect() as connection:
        return handler_agency(connection, account)


def _event_for(connection: Connection, event_id: int, account: str, review: bool = False) -> Any:
    """The event, locked for the step, if ``account`` is staff of its handling agency
    (``review``: of the agency above it, which reviews the handling on an objection,
    信访工作条例 第三十五条 "请求原办理机关、单位的上一级机关、单位复查"; the agency itself
    when none is above it)."""
    query = select(complaint_events).where(complaint_events.c.id == event_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    event = connection.execute(query).first()
    if event is None:
        raise ComplaintError(f"no event {event_id}")
    acting = event.agency_code
    if review and acting is not None:
        above = _agency(connection, acting)
        acting = (above or {}).get("parent_code") or acting
    agency = handler_agency(connection, account)
    if agency is None or agency != acting:
        role = "reviewed by" if review else "handled by"
        raise PermissionError(
            f"event {event_id} is {role} {acting or 'no agency yet'}; {account} is not its staff"
        )
    return event


def _step(
    connection: Connection,
    event: Any,
    step: Step,
    actor: str,
    now: dt.datetime,
    values: Mapping[str, Any] | None = None,
    **extra: Any,
) -> None:
    if values:
        connection.execute(
            update(complaint_events)
            .where(complaint_events.c.id == event.id)
            .values({**values, "updated_at": now})
        )
    connection.execute(
        insert(complaint_steps).values(
            event_id=event.id,
            step=step.value,
            at=now,
            actor=actor[:100],
            agency_code=event.agency_code,
            **extra,
        )
    )
    after = {key: str(value) for key, value in {**(values or {}), **extra}.items()}
    audit(connection, actor, step.value, "complaint_event", str(event.id), None, after)


def _need(event: Any, *statuses: EventStatus) -> None:
    if event.status not in {status.value for status in statuses}:
        raise ComplaintError(
            f"event {event.id} is {event.status}; this step needs "
            + " or ".join(status.value for status in statuses)
        )


def accept(engine: Engine, event_id: int, actor: str, account: str) -> None:
    now = utcnow()
    with write_transaction(engine) as connection:
        event = _event_for(connection, event_id, account)
        _need(event, EventStatus.RECEIVED)
        _step(
            connection,
            event,
            Step.ACCEPTED,
            actor,
            now,
            {"status": EventStatus.ACCEPTED.value, "accepted_at": now},
        )


def refuse(engine: Engine, event_id: int, reason: str, actor: str, account: str) -> None:
    """不予受理, with the reason every complainant of the event is told."""
    if not reason.strip():
        raise ComplaintError("reason: say why the complaint is not accepted")
    now = utcnow()
    with write_transaction(engine) as connection:
        event = _event_for(connection, event_id, account)
        _need(event, EventStatus.RECEIVED)
        values = {"status": EventStatus.NOT_ACCEPTED.value, "reply": reason, "replied_at": now}
        _step(connection, event, Step.NOT_ACCEPTED, actor, now, values, note=reason)


def transfer(
    engine: Engine, event_id: int, to_agency: str, reason: str, actor: str, account: str
) -> None:
    """转办: hand the event to the agency responsible; the deadlines keep running."""
    if not reason.strip():
        raise ComplaintError("reason: say why the event goes to another agency")
    now = utcnow()
    with write_transaction(engine) as connection:
        event = _event_for(connection, event_id, account)
        _need(event, EventStatus.RECEIVED, EventStatus.ACCEPTED, EventStatus.REVIEWING)
        if _agency(connection, to_agency) is None or to_agency == event.agency_code:
            raise ComplaintError(f"to_agency: {to_agency!r} is no other agency")
        values = {"agency_code": to_agency}
        _step(
            connection,
            event,
            Step.TRANSFERRED,
            actor,
            now,
            values,
            to_agency_code=to_agency,
            note=reason,
        )


def dispatch(engine: Engine, event_id: int, to_agency: str, actor: str) -> None:
    """An administrator's dispatch of an event no agency covers (or its transfer)."""
    now = utcnow()
    with write_transaction(engine) as connection:
        event = connection.execute(
            select(complaint_events).where(complaint_events.c.id == event_id)
        ).first()
        if event is None:
            raise ComplaintError(f"no event {event_id}")
        if _agency(connection, to_agency) is None:
            raise ComplaintError(f"to_agency: no agency {to_agency!r}")
        _step(
            connection,
            event,
            Step.TRANSFERRED,
            actor,
            now,
            {"agency_code": to_agency},
            to_agency_code=to_agency,
            note="dispatched",
        )


def extend(
    engine: Engine,
    event_id: int,
    days: int,
    reason: str,
    actor: str,
    account: str,
    table: Mapping[str, Deadline] | None = None,
) -> None:
    """延期: add ``days`` to the handling period, at most the rule's extension in all."""
    rule = (table or deadlines())["complete"]
    if not reason.strip():
        raise ComplaintError("reason: say why the handling needs longer")
    now = utcnow()
    with write_transaction(engine) as connection:
        event = _event_for(connection, event_id, account)
        _need(event, EventStatus.ACCEPTED)
        total = event.extension_days + days
        if days <= 0 or total > rule.extension_days:
            raise ComplaintError(
                f"days: {days}; the rules allow {rule.extension_days} days of extension in all "
                f"and {event.extension_days} are used ({rule.citation})"
            )
        _step(
            connection,
            event,
            Step.EXTENDED,
            actor,
            now,
            {"extension_days": total},
            days=days,
            note=reason,
        )


def reply(
    engine: Engine,
    event_id: int,
    findings: str,
    answer: str,
    actor: str,
    account: str,
    enterprise_id: int | None = None,
) -> None:
    """办结: the findings (agency only) and the reply every complainant reads; after a
    review, the review's answer."""
    if not answer.strip() or not findings.strip():
        raise ComplaintError("findings, reply: both are needed")
    now = utcnow()
    with write_transaction(engine) as connection:
        status = connection.execute(
            select(complaint_events.c.status).where(complaint_events.c.id == event_id)
        ).scalar()
        reviewing = status == EventStatus.REVIEWING.value
        event = _event_for(connection, event_id, account, review=reviewing)
        _need(event, EventStatus.ACCEPTED, EventStatus.REVIEWING)
        values: dict[str, Any] = {
            "status": EventStatus.REPLIED.value,
            "findings": findings,
            "reply": answer,
        }
        if event.status == EventStatus.ACCEPTED.value:
            values["replied_at"] = now
        if enterprise_id is not None:
            values["enterprise_id"] = enterprise_id
        note = "review" if event.status == EventStatus.REVIEWING.value else None
        _step(connection, event, Step.REPLIED, actor, now, values, note=note)


def note_case(
    connection: Connection,
    event_id: int,
    case_id: int,
    enterprise_id: int,
    actor: str,
    now: dt.datetime,
) -> None:
    """Record, in the caller's transaction, that a penalty case was opened from the event
    (the supervision area calls this when it opens the case): the event names the case
    and the enterprise found responsible. An event that names another enterprise is
    refused."""
    event = connection.execute(
        select(complaint_events).where(complaint_events.c.id == event_id)
    ).first()
    if event is None:
        raise ComplaintError(f"no complaint event {event_id}")
    if event.enterprise_id is not None and event.enterprise_id != enterprise_id:
        raise ComplaintError(f"complaint event {event_id} names another enterprise")
    values = {"case_id": case_id, "enterprise_id": enterprise_id}
    _step(connection, event, Step.CASE, actor, now, values, note=str(case_id))


def _own_complaint(connection: Connection, keys: Keyring, ticket: str, code: str) -> Any:
    row = connection.execute(select(complaints).where(complaints.c.ticket == ticket)).first()
    if row is None or not keys.code_matches(ticket, code, row.code_digest):
        raise PermissionError("the ticket number and query code do not match")
    return row


def _complainant_step(
    connection: Connection,
    event: Any,
    complaint_id: int,
    step: Step,
    ticket: str,
    now: dt.datetime,
    note: str | None,
) -> None:
    connection.execute(
        insert(complaint_steps).values(
            event_id=event.id,
            complaint_id=complaint_id,
            step=step.value,
            at=now,
            actor=f"complainant:{ticket}",
            agency_code=event.agency_code,
            note=note,
        )
    )


def rate(engine: Engine, keys: Keyring, ticket: str, code: str, satisfaction: str) -> None:
    """The complainant's satisfaction with the reply (once)."""
    if satisfaction not in set(Satisfaction):
        raise ComplaintError(f"satisfaction: one of {', '.join(Satisfaction)}")
    now = utcnow()
    with write_transaction(engine) as connection:
        row = _own_complaint(connection, keys, ticket, code)
        event = connection.execute(
            select(complaint_events).where(complaint_events.c.id == row.event_id)
        ).one()
        _need(event, EventStatus.REPLIED, EventStatus.NOT_ACCEPTED, EventStatus.CLOSED)
        if row.satisfaction is not None:
            raise ComplaintError("satisfaction: already given")
        connection.execute(
            update(complaints)
            .where(complaints.c.id == row.id)
            .values(satisfaction=satisfaction, rated_at=now)
        )
        _complainant_step(connection, event, row.id, Step.RATED, ticket, now, satisfaction)


def object_to(
    engine: Engine,
    keys: Keyring,
    ticket: str,
    code: str,
    reason: str,
    now: dt.datetime | None = None,
    table: Mapping[str, Deadline] | None = None,
) -> None:
    """A complainant's objection to the reply, within the review window; the agency then
    reopens the event for review or dismisses the objection."""
    if len(reason.strip()) < 5:
        raise ComplaintError("reason: say what in the reply is wrong")
    now = now or utcnow()
    rules = table or deadlines()
    with write_transaction(engine) as connection:
        row = _own_complaint(connection, keys, ticket, code)
        event = connection.execute(
            select(complaint_events).where(complaint_events.c.id == row.event_id)
        ).one()
        _need(event, EventStatus.REPLIED, EventStatus.NOT_ACCEPTED)
        window = rules.get("review_request")
        if window is not None and event.replied_at is not None:
            last = due_date(window, event.replied_at.astimezone(local_zone()).date())
            if now.astimezone(local_zone()).date() > last:
                raise ComplaintError(f"the window to object ended on {last} ({window.citation})")
        connection.execute(
            update(complaints)
            .where(complaints.c.id == row.id)
            .values(objection=reason.strip()[:2000], objected_at=now)
        )
        connection.execute(
            update(complaint_events)
            .where(complaint_events.c.id == event.id)
            .values(review_requested_at=event.review_requested_at or now, updated_at=now)
        )
        _complainant_step(connection, event, row.id, Step.OBJECTED, ticket, now, None)


def decide_objection(
    engine: Engine, event_id: int, justified: bool, reason: str, actor: str, account: str
) -> None:
    """The level above decides a complainant's objection: 复查 (justified: the event is
    reviewed and replied anew, by the level above) or dismissal with the reason."""
    if not reason.strip():
        raise ComplaintError("reason: say why")
    now = utcnow()
    with write_transaction(engine) as connection:
        event = _event_for(connection, event_id, account, review=True)
        _need(event, EventStatus.REPLIED, EventStatus.NOT_ACCEPTED)
        if event.review_requested_at is None:
            raise ComplaintError(f"event {event_id} has no objection to decide")
        if justified:
            reopened = {"status": EventStatus.REVIEWING.value}
            _step(connection, event, Step.REOPENED, actor, now, reopened, note=reason)
        else:
            dismissed = {"review_requested_at": None}
            _step(connection, event, Step.DISMISSED, actor, now, dismissed, note=reason)


def close(engine: Engine, event_id: int, actor: str, account: str | None = None) -> None:
    """Close a replied event (``account`` None: the sweep, after the review window)."""
    now = utcnow()
    with write_transaction(engine) as connection:
        if account is None:
            event = connection.execute(
                select(complaint_events).where(complaint_events.c.id == event_id)
            ).one()
        else:
            event = _event_for(connection, event_id, account)
        _need(event, EventStatus.REPLIED, EventStatus.NOT_ACCEPTED)
        values = {"status": EventStatus.CLOSED.value, "closed_at": now}
        _step(connection, event, Step.CLOSED, actor, now, values)
