"""The credit flags of enterprises named by their USCC, for pages and API responses that
list enterprises by number (the permit hall, a permit's versions, the disclosure page):
one read of the enterprises' ids, then :func:`ecohub.supervision.flags.credit_flag` for
each, all on one connection (run it in the threadpool from a route)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select

from ecohub.registry.models import Enterprise
from ecohub.supervision.flags import credit_flag


def credit_flags(engine: Engine, usccs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """USCC → its credit flag, for those of ``usccs`` with a published grade (an
    enterprise without one, or unknown, is absent)."""
    wanted = sorted(set(usccs))
    if not wanted:
        return {}
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(Enterprise.id, Enterprise.uscc).where(Enterprise.uscc.in_(wanted))
        ).all()
        for row in rows:
            flag = credit_flag(connection, row.id)
            if flag is not None:
                found[row.uscc] = flag
    return found


def credit_flag_of(engine: Engine, uscc: str) -> dict[str, Any] | None:
    """The credit flag of one enterprise, or None (no published grade, or no such
    enterprise)."""
    return credit_flags(engine, [uscc]).get(uscc)
