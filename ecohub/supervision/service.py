"""The double-random directories and draws in the store: inspection objects, inspectors
and their declared conflicts; a draw run by :func:`ecohub.supervision.draw.draw` with a
recorded seed over the directories as they stand, stored with its inputs and picks,
audited, and published (一公开) for anyone to re-run.

Every change writes a row to the audit log (who, what, before and after). Inspector
names never leave this module except to the agency's own directory listing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, func, insert, select, update

from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction
from ecohub.registry.models import Enterprise
from ecohub.registry.service import audit_row as audit
from ecohub.supervision import draw as drawing
from ecohub.supervision.tables import (
    ObjectCategory,
    draw_picks,
    draws,
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
    last_teams: dict[str, list[str]]  # uscc -> inspector codes of its latest draw


def current_inputs(connection: Connection, regions: Iterable[str] | None = None) -> DrawInputs:
    """The object and inspector directories (active inspectors), the declared conflicts
    and each object's team in the latest draw that picked it."""
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
    latest = (
        select(draw_picks.c.enterprise_id, func.max(draw_picks.c.draw_id).label("draw_id"))
        .group_by(draw_picks.c.enterprise_id)
        .subquery()
    )
    last_teams = {
        uscc: list(codes)
        for uscc, codes in connection.execute(
            select(enterprises.c.uscc, draw_picks.c.inspector_codes)
            .select_from(draw_picks)
            .join(
                latest,
                and_(
                    latest.c.enterprise_id == draw_picks.c.enterprise_id,
                    latest.c.draw_id == draw_picks.c.draw_id,
                ),
            )
            .join(enterprises, enterprises.c.id == draw_picks.c.enterprise_id)
        ).all()
    }
    return DrawInputs(
        sorted(objects, key=lambda o: o.code),
        sorted(staff, key=lambda i: i.code),
        sorted(conflicts),
        last_teams,
    )


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
    changes between reading them and storing the result); store and audit it."""
    if not title.strip():
        raise SupervisionError("a draw needs a title")
    seed = drawing.new_seed() if seed is None else seed
    with write_transaction(engine) as connection:
        inputs = current_inputs(connection, regions)
        if not inputs.objects:
            raise SupervisionError("the object directory is empty (for these regions)")
        result = drawing.draw(
            inputs.objects, inputs.inspectors, rules, seed, inputs.conflicts, inputs.last_teams
        )
        published_inputs = _published_inputs(inputs, rules)
        draw_id = connection.execute(
            insert(draws)
            .values(
                title=title[:200],
                seed=seed,
                inputs_digest=result.inputs_digest,
                inputs=published_inputs,
                unstaffed=[list(u) for u in result.unstaffed],
                drawn_by=actor,
                drawn_at=utcnow(),
            )
            .returning(draws.c.id)
        ).scalar_one()
        ids: dict[str, int] = {
            uscc: ident
            for uscc, ident in connection.execute(
                select(enterprises.c.uscc, enterprises.c.id).where(
                    enterprises.c.uscc.in_([pick.object_code for pick in result.picks] or [""])
                )
            ).all()
        }
        if result.picks:
            connection.execute(
                insert(draw_picks),
                [
                    {
                        "draw_id": draw_id,
                        "enterprise_id": ids[pick.object_code],
                        "position": position,
                        "inspector_codes": list(pick.inspectors),
                    }
                    for position, pick in enumerate(result.picks)
                ],
            )
        audit(
            connection,
            actor,
            "create",
            "draw",
            str(draw_id),
            None,
            {
                "title": title,
                "seed": seed,
                "inputs_digest": result.inputs_digest,
                "picks": len(result.picks),
                "unstaffed": len(result.unstaffed),
            },
        )
    found = get_draw(engine, int(draw_id), public=False)
    assert found is not None
    return found


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
        },
    }


def rules_from(document: Mapping[str, Any]) -> drawing.DrawRules:
    """Draw rules from their published form."""
    return drawing.DrawRules(
        rates={str(k): float(v) for k, v in document["rates"].items()},
        team_size=int(document.get("team_size", 2)),
        cross_region=bool(document.get("cross_region", False)),
        qualification=document.get("qualification"),
        max_per_inspector=document.get("max_per_inspector"),
    )


def verify_draw(document: Mapping[str, Any]) -> bool:
    """Re-run a published draw from its seed and inputs and compare the picks: what
    anyone can do with the published record."""
    inputs = document["inputs"]
    objects = [drawing.InspectionObject(*row) for row in inputs["objects"]]
    staff = [drawing.Inspector(c, r, frozenset(q)) for c, r, q in inputs["inspectors"]]
    conflicts = [tuple(pair) for pair in inputs["conflicts"]]
    rules = rules_from(inputs["rules"])
    result = drawing.draw(
        objects,
        staff,
        rules,
        int(document["seed"]),
        conflicts,
        inputs["last_teams"],
    )
    picks = [[p.object_code, list(p.inspectors)] for p in result.picks]
    published = [[p["uscc"], p["inspectors"]] for p in document["picks"]]
    return result.inputs_digest == document["inputs_digest"] and picks == published


def get_draw(engine: Engine, draw_id: int, *, public: bool) -> dict[str, Any] | None:
    """A draw with its picks; ``public``: only if published."""
    with engine.connect() as connection:
        row = connection.execute(select(draws).where(draws.c.id == draw_id)).first()
        if row is None or (public and row.published_at is None):
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
    return document


def list_draws(engine: Engine, *, public: bool, limit: int = 100) -> list[dict[str, Any]]:
    query = (
        select(
            draws.c.id,
            draws.c.title,
            draws.c.seed,
            draws.c.inputs_digest,
            draws.c.drawn_at,
            draws.c.published_at,
        )
        .order_by(draws.c.id.desc())
        .limit(limit)
    )
    if public:
        query = query.where(draws.c.published_at.is_not(None))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query).all()]


def publish_draw(engine: Engine, draw_id: int, actor: str) -> dt.datetime:
    """Publish a draw's result (一公开); publishing twice keeps the first time."""
    with write_transaction(engine) as connection:
        row = connection.execute(select(draws.c.published_at).where(draws.c.id == draw_id)).first()
        if row is None:
            raise SupervisionError(f"no draw {draw_id}")
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
