"""The credit flag of an enterprise for any area's pages and API (permits, disclosure,
the dashboard, draws): its latest published credit grade as in effect now (a granted
repair counts once its public notice has ended), whether it is on the blacklist (red,
环保不良企业, 环发〔2013〕150号) and the consequences the grade carries
(``data/credit_consequences.csv``, a locality's table with the source of every row).

One read on the caller's connection, no write: ``credit_flag(connection, enterprise_id)``
is None for an enterprise without a published grade.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Connection, select

from ecohub.supervision.credit import current_grade, describe
from ecohub.supervision.tables import RatingStatus, credit_ratings


@dataclass(frozen=True)
class Consequence:
    grade: str
    key: str
    text_zh: str
    text_en: str
    source: str


@cache
def consequences() -> tuple[Consequence, ...]:
    """The packaged table (``data/credit_consequences.csv``)."""
    text = files("ecohub.supervision").joinpath("data/credit_consequences.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    return tuple(
        Consequence(r["grade"], r["key"], r["text_zh"], r["text_en"], r["source"]) for r in rows
    )


def credit_flag(
    connection: Connection, enterprise_id: int, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """The enterprise's latest published grade in effect at ``now``: year, grade, names,
    ``blacklisted`` (red), the consequences of the grade and a repair still in its
    notice; None when no grade of it is published."""
    row = connection.execute(
        select(credit_ratings.c.year, credit_ratings.c.grade, credit_ratings.c.explanation)
        .where(
            credit_ratings.c.enterprise_id == enterprise_id,
            credit_ratings.c.status == RatingStatus.PUBLISHED.value,
        )
        .order_by(credit_ratings.c.year.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    current = current_grade(row.grade, row.explanation, now)
    grade = current["grade"]
    pending = current["pending_repair"]
    names = describe(grade, row.explanation)
    return {
        "year": row.year,
        "grade": grade,
        "name_zh": names["name_zh"],
        "name_en": names["name_en"],
        "blacklisted": grade == "red",
        "consequences": [
            {"key": c.key, "text_zh": c.text_zh, "text_en": c.text_en, "source": c.source}
            for c in consequences()
            if c.grade == grade
        ],
        "repair_pending": None
        if pending is None
        else {"to": pending["to"], "effective_at": pending["effective_at"]},
    }
