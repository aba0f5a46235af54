"""The double-random directories and draws in the store: inspection objects, inspectors
and their declared conflicts; a draw run by :func:`ecohub.supervision.draw.draw` with a
recorded seed over the directories as they stand, stored with its inputs and picks,
audited, and published (一公开) for anyone to re-run.

Every change writes a row to the audit log (who, what, before and after). Inspector
names never leave this module except to the agency's own directory listing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction
from ecohub.registry.models import Enterprise
from ecohub.registry.service import audit_row as audit
from ecohub.supervision import draw as drawing
from ecohub.supervision.draw_checks import public_view
from ecohub.supervision.draw_checks import rules_from as rules_from
from ecohub.supervision.draw_checks import verify_draw as verify_draw
from ecohub.supervision.tables import (
    ObjectCategory,
    draw_picks,
    draws,
    inspections,
    inspector_conflicts,
    inspectors,
    supervision_objects,
)

enterprises: Table = Enterprise.__table__  # type: ignore[assignment]


class SupervisionError(ValueError):
    """A request the directories or the draw cannot carry out (the message says why)."""


def enterprise_id(connection: Connection, uscc: str) -> int:
    found = connection.execute(select(enterprises.c.id).where(enterprises.c.uscc == uscc)).scalar()
    if found is None:
        raise SupervisionError(f"no enterprise with credit code {uscc!r}")
    return int(found)


def enterprise_of(engine: Engine, uscc: str) -> int:
    """The id of the enterprise with credit code ``uscc`` (SupervisionError if none)."""
    with engine.connect() as connection:
        return enterprise_id(connection, uscc)


# --- the directories ----------------------------------------------------------------


def set_object(
    engine: Engine, uscc: str, category: str, actor: str, region: str | None = None
) -> dict[str, Any]:
    """Put an enterprise in the object directory (or change its category or region; the
    region defaults to the enterprise's own)."""
    if category not in {item.value for item in ObjectCategory}:
        raise SupervisionError(
            f"category {category!r}: expected one of {', '.join(c.value for c in ObjectCategory)}"
        )
    with write_transaction(engine) as connection:
        ident = enterprise_id(connection, uscc)
        if region is None:
            region = connection.execute(
                select(enterprises.c.region_code).where(enterprises.c.id == ident)
            ).scalar()
        if not region or len(region) != 6 or not region.isdigit():
            raise SupervisionError(f"{uscc}: a supervising region (6-digit code) is needed")
        before = connection.execute(
            select(supervision_objects.c.category, supervision_objects.c.region).where(
                supervision_objects.c.enterprise_id == ident
            )
        ).first()
        after = {"category": category, "region": region}
        values = {**after, "updated_at": utcnow()}
        if before is None:
            connection.execute(insert(supervision_objects).values(enterprise_id=ident, **values))
        else:
            connection.execute(
                update(supervision_objects)
                .where(supervision_objects.c.enterprise_id == ident)
                .values(**values)
            )
        old = dict(before._mapping) if before is not None else None
        if old != after:
            audit(
                connection,
                actor,
                "update" if old else "create",
                "supervision_object",
                uscc,
                old,
                after,
            )
    return {"uscc": uscc, **after}


def set_inspector(
    engine: Engine,
    code: str,
    name: str,
    region: str,
    actor: str,
    qualifications: Iterable[str] = (),
    active: bool = True,
) -> dict[str, Any]:
    """Add or change an inspector (the audit records the change, not the name)."""
    if not code.strip() or len(code) > 32:
        raise SupervisionError("inspector code: 1-32 characters")
    if not name.strip() or len(name) > 100:
        raise SupervisionError(f"inspector {code}: name of 1-100 characters")
    if len(region) != 6 or not region.isdigit():
        raise SupervisionError(f"inspector {code}: region must be a 6-digit GB/T 2260 code")
    listed = sorted({q.strip() for q in qualifications if q.strip()})
    after = {"region": region, "qualifications": listed, "active": active}
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(inspectors.c.region, inspectors.c.qualifications, inspectors.c.active).where(
                inspectors.c.code == code
            )
        ).first()
        values = {**after, "name": name, "updated_at": utcnow()}
        if row is None:
            connection.execute(insert(inspectors).values(code=code, **values))
        else:
            connection.execute(update(inspectors).where(inspectors.c.code == code).values(**values))
        before = dict(row._mapping) if row is not None else None
        audit(connection, actor, "update" if before else "create", "inspector", code, before, after)
    return {"code": code, **after}


def declare_conflict(engine: Engine, inspector: str, uscc: str, reason: str, actor: str) -> None:
    """Record an inspector's declared conflict of interest with an enterprise (回避)."""
    if not reason.strip():
        raise SupervisionError("a conflict needs its reason")
    with write_transaction(engine) as connection:
        inspector_id = connection.execute(
            select(inspectors.c.id).where(inspectors.c.code == inspector)
        ).scalar()
        if inspector_id is None:
            raise SupervisionError(f"no inspector {inspector!r}")
        ident = enterprise_id(connection, uscc)
        connection.execute(
            delete(inspector_conflicts).where(
                inspector_conflicts.c.inspector_id == inspector_id,
                inspector_conflicts.c.enterprise_id == ident,
            )
        )
        connection.execute(
            insert(inspector_conflicts).values(
                inspector_id=inspector_id,
                enterprise_id=ident,
                reason=reason[:500],
                declared_at=utcnow(),
            )
        )
        audit(
            connection,
            actor,
            "create",
            "inspector_conflict",
            f"{inspector}/{uscc}",
            None,
            {"reason": reason[:500]},
        )


def list_inspectors(engine: Engine) -> list[dict[str, Any]]:
    """The inspector directory with names (the agency's view)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                inspectors.c.code,
                inspectors.c.name,
                inspectors.c.region,
                inspectors.c.qualifications,
                inspectors.c.active,
            ).order_by(inspectors.c.code)
        ).all()
    return [dict(row._mapping) for row in rows]


# --- draws --------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawInputs:
    """The directories as a draw sees them (codes only: what is published)."""

    objects: list[drawing.InspectionObject]
    inspectors: list[drawing.Inspector]
    conflicts: list[tuple[str, str]]  # (inspector code, enterprise uscc)
    last_teams: dict[str, list[str]]  # uscc -> inspector codes of its latest inspection


def current_inputs(connection: Connection, regions: Iterable[str] | None = None) -> DrawInputs:
    """The object and inspector directories (active inspectors), the declared conflicts
    and each object's team in its latest inspection."""
    wanted = set(regions) if regions else None
    objects = [
        drawing.InspectionObject(uscc, region, category)
        for uscc, region, category in connection.execute(
            select(
                enterprises.c.uscc, supervision_objects.c.region, supervision_objects.c.category
            ).join(enterprises, enterprises.c.id == supervision_objects.c.enterprise_id)
        ).all()
        if wanted is None or region in wanted
    ]
    staff = [
        drawing.Inspector(code, region, frozenset(qualifications or ()))
        for code, region, qualifications in connection.execute(
            select(inspectors.c.code, inspectors.c.region, inspectors.c.qualifications).where(
                inspectors.c.active.is_(True)
            )
        ).all()
    ]
    conflicts = [
        (code, uscc)
        for code, uscc in connection.execute(
            select(inspectors.c.code, enterprises.c.uscc)
            .select_from(inspector_conflicts)
            .join(inspectors, inspectors.c.id == inspector_conflicts.c.inspector_id)
            .join(enterprises, enterprises.c.id == inspector_conflicts.c.enterprise_id)
        ).all()
    ]
    return DrawInputs(
        sorted(objects, key=lambda o: o.code),
        sorted(staff, key=lambda i: i.code),
        sorted(conflicts),
        last_teams(connection),
    )


def last_teams(connection: Connection) -> dict[str, list[str]]:
    """Each enterprise's team in its latest inspection actually made (the field records:
    the latest ``inspected_at``, the later record on a tie), not in a draw: a draw set
    aside or never carried out sends no one."""
    latest: dict[str, tuple[Any, int, list[str]]] = {}
    for uscc, at, ident, codes in connection.execute(
        select(
            enterprises.c.uscc,
            inspections.c.inspected_at,
            inspections.c.id,
            inspections.c.inspector_codes,
        ).join(enterprises, enterprises.c.id == inspections.c.enterprise_id)
    ).all():
        if uscc not in latest or (at, ident) > latest[uscc][:2]:
            latest[uscc] = (at, ident, list(codes))
    return {uscc: sorted(codes) for uscc, (_at, _id, codes) in latest.items()}


def run_draw(
    engine: Engine,
    title: str,
    rules: drawing.DrawRules,
    actor: str,
    *,
    seed: int | None = None,
    regions: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Draw over the directories as they stand (in one transaction, so that nothing
    changes between reading them and storing the result); store, number and audit it.

    The seed is the server's, never the caller's (``seed`` is refused: a caller choosing
    it could draw until a wanted result): made from fresh CSPRNG bytes and the inputs'
    digest (:func:`drawing.seed_from`), both recorded in ``seed_source``. Every stored
    draw takes the next number and is listed publicly once published or voided, so a
    draw run again shows as one more number with the reason the first was set aside."""
    if seed is not None:
        raise SupervisionError(
            "seed: a draw's seed is made by the server from fresh random bytes and the "
            "inputs' digest; a seed is given only to verify a draw (ecohub supervision verify)"
        )
    if not title.strip():
        raise SupervisionError("a draw needs a title")
    for attempt in range(3):
        try:
            draw_id = _draw_once(engine, title, rules, actor, regions)
            break
        except IntegrityError:  # another draw took the number first: draw again, unseen
            if attempt == 2:
                raise SupervisionError("draws were made at the same moment: try again") from None
    found = get_draw(engine, int(draw_id), public=False)
    assert found is not None
    return found


def _draw_once(
    engine: Engine,
    title: str,
    rules: drawing.DrawRules,
    actor: str,
    regions: Iterable[str] | None,
) -> int:
    with write_transaction(engine) as connection:
        inputs = current_inputs(connection, regions)
        if not inputs.objects:
            raise SupervisionError("the object directory is empty (for these regions)")
        digest = drawing.inputs_digest(
            inputs.objects, inputs.inspectors, rules, inputs.conflicts, inputs.last_teams
        )
        entropy = secrets.token_bytes(32)
        seed = drawing.seed_from(entropy, digest)
        result = drawing.draw(
            inputs.objects, inputs.inspectors, rules, seed, inputs.conflicts, inputs.last_teams
        )
        number = (
            int(connection.execute(select(func.coalesce(func.max(draws.c.number), 0))).scalar_one())
            + 1
        )
        draw_id = connection.execute(
            insert(draws)
            .values(
                title=title[:200],
                seed=seed,
                inputs_digest=result.inputs_digest,
                inputs=_published_inputs(inputs, rules),
                unstaffed=[list(u) for u in result.unstaffed],
                drawn_by=actor,
                drawn_at=utcnow(),
                number=number,
                seed_source={"entropy": entropy.hex(), "inputs_digest": digest},
            )
            .returning(draws.c.id)
        ).scalar_one()
        _store_picks(connection, int(draw_id), result.picks)
        audit(
            connection,
            actor,
            "create",
            "draw",
            str(draw_id),
            None,
            {
                "title": title,
                "number": number,
                "seed": seed,
                "inputs_digest": result.inputs_digest,
                "picks": len(result.picks),
                "unstaffed": len(result.unstaffed),
            },
        )
    return int(draw_id)


def _store_picks(connection: Connection, draw_id: int, picks: Iterable[drawing.Pick]) -> None:
    drawn = list(picks)
    ids: dict[str, int] = {
        uscc: ident
        for uscc, ident in connection.execute(
            select(enterprises.c.uscc, enterprises.c.id).where(
                enterprises.c.uscc.in_([pick.object_code for pick in drawn] or [""])
            )
        ).all()
    }
    if drawn:
        connection.execute(
            insert(draw_picks),
            [
                {
                    "draw_id": draw_id,
                    "enterprise_id": ids[pick.object_code],
                    "position": position,
                    "inspector_codes": list(pick.inspectors),
                }
                for position, pick in enumerate(drawn)
            ],
        )


def _published_inputs(inputs: DrawInputs, rules: drawing.DrawRules) -> dict[str, Any]:
    return {
        "objects": [[o.code, o.region, o.category] for o in inputs.objects],
        "inspectors": [[i.code, i.region, sorted(i.qualifications)] for i in inputs.inspectors],
        "conflicts": [list(pair) for pair in inputs.conflicts],
        "last_teams": {key: sorted(value) for key, value in sorted(inputs.last_teams.items())},
        "rules": {
            "rates": dict(sorted(rules.rates.items())),
            "team_size": rules.team_size,
            "cross_region": rules.cross_region,
            "qualification": rules.qualification,
            "max_per_inspector": rules.max_per_inspector,
            "region_match": rules.region_match,
        },
    }


def get_draw(engine: Engine, draw_id: int, *, public: bool) -> dict[str, Any] | None:
    """A draw with its picks; ``public``: only once published or voided, with the
    conflict pairs replaced by their digest and without who drew it."""
    with engine.connect() as connection:
        row = connection.execute(select(draws).where(draws.c.id == draw_id)).first()
        if row is None or (public and row.published_at is None and row.voided_at is None):
            return None
        picks = connection.execute(
            select(enterprises.c.uscc, enterprises.c.name, draw_picks.c.inspector_codes)
            .join(enterprises, enterprises.c.id == draw_picks.c.enterprise_id)
            .where(draw_picks.c.draw_id == draw_id)
            .order_by(draw_picks.c.position)
        ).all()
    document = dict(row._mapping)
    document["picks"] = [
        {"uscc": uscc, "enterprise": name, "inspectors": list(codes)} for uscc, name, codes in picks
    ]
    document["unstaffed"] = [list(item) for item in document["unstaffed"]]
    return public_view(document) if public else document


def list_draws(engine: Engine, *, public: bool, limit: int = 100) -> list[dict[str, Any]]:
    """Draws, newest first, with their numbers; ``public``: those published or voided (a
    voided draw with its reason), so that a missing number is a draw not yet shown."""
    query = (
        select(
            draws.c.id,
            draws.c.number,
            draws.c.title,
            draws.c.seed,
            draws.c.inputs_digest,
            draws.c.drawn_at,
            draws.c.published_at,
            draws.c.voided_at,
            draws.c.void_reason,
        )
        .order_by(draws.c.id.desc())
        .limit(limit)
    )
    if public:
        query = query.where(draws.c.published_at.is_not(None) | draws.c.voided_at.is_not(None))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query).all()]


def publish_draw(engine: Engine, draw_id: int, actor: str) -> dt.datetime:
    """Publish a draw's result (一公开); publishing twice keeps the first time. A voided
    draw is not published (it is listed as voided)."""
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(draws.c.published_at, draws.c.voided_at).where(draws.c.id == draw_id)
        ).first()
        if row is None:
            raise SupervisionError(f"no draw {draw_id}")
        if row.voided_at is not None:
            raise SupervisionError(f"draw {draw_id} was voided: it cannot be published")
        if row.published_at is not None:
            return row.published_at
        now = utcnow()
        connection.execute(update(draws).where(draws.c.id == draw_id).values(published_at=now))
        audit(
            connection,
            actor,
            "publish",
            "draw",
            str(draw_id),
            None,
            {"published_at": now.isoformat()},
        )
    return now


def void_draw(engine: Engine, draw_id: int, reason: str, actor: str) -> dt.datetime:
    """Set a draw aside before it is published (the directories were wrong, …): it stays
    stored, numbered and publicly listed with ``reason``. A published draw is not voided."""
    if not reason.strip():
        raise SupervisionError("voiding a draw needs its reason (it is published)")
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(draws.c.published_at, draws.c.voided_at).where(draws.c.id == draw_id)
        ).first()
        if row is None:
            raise SupervisionError(f"no draw {draw_id}")
        if row.published_at is not None:
            raise SupervisionError(f"draw {draw_id} is published: it cannot be voided")
        if row.voided_at is not None:
            return row.voided_at
        now = utcnow()
        connection.execute(
            update(draws)
            .where(draws.c.id == draw_id)
            .values(voided_at=now, void_reason=reason[:500])
        )
        audit(connection, actor, "void", "draw", str(draw_id), None, {"reason": reason[:500]})
    return now


def assignments(engine: Engine, inspector: str | None, limit: int = 200) -> list[dict[str, Any]]:
    """Draw picks, newest draw first: every pick (``inspector`` None) or those whose team
    names ``inspector``."""
    query = (
        select(
            draws.c.id,
            draws.c.title,
            draws.c.drawn_at,
            draws.c.published_at,
            enterprises.c.uscc,
            enterprises.c.name,
            enterprises.c.longitude,
            enterprises.c.latitude,
            draw_picks.c.inspector_codes,
        )
        .select_from(draw_picks)
        .join(draws, draws.c.id == draw_picks.c.draw_id)
        .join(enterprises, enterprises.c.id == draw_picks.c.enterprise_id)
        .where(draws.c.voided_at.is_(None))  # a voided draw sends no one
        .order_by(draws.c.id.desc(), draw_picks.c.position)
    )
    found = []
    with engine.connect() as connection:
        for row in connection.execute(query):
            if inspector is None or inspector in row.inspector_codes:
                found.append(
                    {
                        "draw_id": row.id,
                        "draw": row.title,
                        "drawn_at": row.drawn_at,
                        "published_at": row.published_at,
                        "uscc": row.uscc,
                        "enterprise": row.name,
                        "longitude": row.longitude,
                        "latitude": row.latitude,
                        "inspectors": list(row.inspector_codes),
                    }
                )
                if len(found) >= limit:
                    break
    return found
