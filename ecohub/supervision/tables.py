"""Tables of supervision: the double-random directories (inspection objects by category,
inspectors, declared conflicts of interest), the draws with their seeds and published
inputs, penalty cases with their dated steps and re-inspections, and enterprise credit
ratings.

Personal data of inspectors (their names) live only in ``inspectors``; a draw's inputs
and picks record inspector codes (badge numbers), which is what the public sees.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from ecohub.db.base import metadata
from ecohub.db.types import UTCDateTime
from ecohub.supervision.rules import GRADE_ORDER, CaseStep


class ObjectCategory(enum.StrEnum):
    """Categories of the inspection-object directory (环办〔2015〕88号: key-monitored units
    drawn more often than general ones; special units by the agency's own rate)."""

    KEY = "key"  # 重点排污单位
    GENERAL = "general"  # 一般排污单位
    SPECIAL = "special"  # 特殊监管对象


class RatingStatus(enum.StrEnum):
    DRAFT = "draft"  # computed, in its review window
    OBJECTED = "objected"  # the enterprise objected; the agency decides
    DECIDED = "decided"  # final
    PUBLISHED = "published"  # on the portal and the open API


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


supervision_objects = Table(
    "supervision_objects",
    metadata,
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), primary_key=True),
    Column("category", String(8), nullable=False),
    Column("region", String(6), nullable=False),  # GB/T 2260 code of the supervising region
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("category", ObjectCategory), name="category"),
)

inspectors = Table(
    "inspectors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),  # badge number (执法证号)
    Column("name", String(100), nullable=False),  # personal: never published
    Column("region", String(6), nullable=False),
    Column("qualifications", JSON, nullable=False),  # list of qualification names
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

inspector_conflicts = Table(
    "inspector_conflicts",
    metadata,
    Column("inspector_id", Integer, ForeignKey("inspectors.id"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("declared_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("inspector_id", "enterprise_id"),
)

draws = Table(
    "draws",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("inputs_digest", String(64), nullable=False),
    Column("inputs", JSON, nullable=False),  # objects, inspector codes, rules, conflicts, teams
    Column("unstaffed", JSON, nullable=False),  # [[enterprise uscc, reason], ...]
    Column("drawn_by", String(100), nullable=False),
    Column("drawn_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    # The draw's public number (1, 2, 3 … in the order drawn, no gaps): every stored draw
    # is listed once published or voided, so a missing number is a draw kept back.
    Column("number", Integer),
    Column("voided_at", UTCDateTime),  # a draw set aside stays listed with its reason
    Column("void_reason", String(500)),
    # Where the seed came from: {"entropy": hex of the CSPRNG bytes, "inputs_digest": …};
    # seed = first 63 bits of SHA-256(entropy ‖ inputs_digest).
    Column("seed_source", JSON),
)
Index("ux_draws_number", draws.c.number, unique=True)

draw_picks = Table(
    "draw_picks",
    metadata,
    Column("draw_id", Integer, ForeignKey("draws.id", ondelete="CASCADE"), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("position", Integer, nullable=False),  # order drawn
    Column("inspector_codes", JSON, nullable=False),
    PrimaryKeyConstraint("draw_id", "enterprise_id"),
)
Index("ix_draw_picks_enterprise", draw_picks.c.enterprise_id)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("violation", Text, nullable=False),
    Column("step", String(16), nullable=False),  # the latest step reached
    Column("legal_basis", String(500)),  # the articles the penalty rests on
    Column("penalty_yuan", Numeric(14, 2)),  # the decided fine
    Column("daily_penalty", Boolean, nullable=False),  # Art. 59 EPL applies
    Column("order_served_on", Date),  # 责令改正决定书送达之日
    # The kind of violation of 按日连续处罚办法 第五条 (rules.DAILY_PENALTY_VIOLATIONS), if any:
    # only those kinds may carry a daily continuous penalty.
    Column("violation_kind", String(32)),
    Column("decision_served_on", Date),  # 行政处罚决定书送达之日 (starts the 15 days to pay)
    Column("source_alarm_id", Integer),  # the alarm it grew from, if any
    Column("source_inspection_id", Integer),  # the field inspection that found it, if any
    Column("published_at", UTCDateTime),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("step", CaseStep), name="step"),
)
Index("ix_cases_enterprise", cases.c.enterprise_id)

case_steps = Table(
    "case_steps",
    metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(16), nullable=False),
    Column("on_date", Date, nullable=False),  # the local (Beijing) date of the step
    Column("note", Text),
    Column("actor", String(100), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("case_id", "step"),
)

case_reinspections = Table(
    "case_reinspections",
    metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("on_date", Date, nullable=False),
    Column("continuing", Boolean, nullable=False),  # the violation found again
    Column("note", Text),
    Column("actor", String(100), nullable=False),
    PrimaryKeyConstraint("case_id", "on_date"),
)

# Approved extensions (生态环境行政处罚办法 第五十七条, 第十八条) and suspensions (中止) of a
# case's periods, each audited: the rule's period is lengthened by their days.
case_time_changes = Table(
    "case_time_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    Column("rule", String(32), nullable=False),  # the deadline's key (data/case_deadlines.csv)
    Column("kind", String(10), nullable=False),  # extension, suspension
    Column("days", Integer, nullable=False),
    Column("on_date", Date, nullable=False),  # approved on (extension), first day (suspension)
    Column("reason", Text, nullable=False),  # with who approved it
    Column("actor", String(100), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('extension', 'suspension')", name="kind"),
    CheckConstraint("days > 0", name="days"),
)
Index("ix_case_time_changes_case", case_time_changes.c.case_id)

credit_ratings = Table(
    "credit_ratings",
    metadata,
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("year", Integer, nullable=False),
    Column("grade", String(8), nullable=False),
    Column("status", String(10), nullable=False),
    Column("explanation", JSON, nullable=False),  # indicators, results, deciding rules
    Column("objection", Text),
    Column("decision", Text),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("updated_by", String(100), nullable=False),
    Column("published_at", UTCDateTime),  # when first published (the repair window runs from it)
    PrimaryKeyConstraint("enterprise_id", "year"),
    CheckConstraint(_in("grade", GRADE_ORDER), name="grade"),
    CheckConstraint(_in("status", RatingStatus), name="status"),
)

inspections = Table(
    "inspections",
    metadata,
    Column("id", Integer, primary_key=True),
    # The submitting device's own id of the record: submitting again (a flaky
    # connection) finds the same record instead of making a second one.
    Column("client_id", String(64), nullable=False, unique=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("draw_id", Integer, ForeignKey("draws.id")),
    Column("inspector_codes", JSON, nullable=False),
    Column("inspected_at", UTCDateTime, nullable=False),  # on site, as the device says
    Column("longitude", Float),
    Column("latitude", Float),
    Column("accuracy_m", Float),
    Column("checks", JSON, nullable=False),  # [{item, result: ok|problem|na, note}]
    Column("findings", Text, nullable=False),
    Column("problems", Integer, nullable=False),  # check items found wanting
    Column("digest", String(64), nullable=False),  # SHA-256 of the submitted record
    Column("submitted_by", String(100), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
)
Index("ix_inspections_enterprise", inspections.c.enterprise_id, inspections.c.inspected_at)

inspection_attachments = Table(
    "inspection_attachments",
    metadata,
    Column(
        "inspection_id", Integer, ForeignKey("inspections.id", ondelete="CASCADE"), nullable=False
    ),
    Column("sha256", String(64), nullable=False),  # the content's hash: its name in the store
    Column("kind", String(10), nullable=False),  # photo, document, signature
    Column("content_type", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    Column("filename", String(200), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("inspection_id", "sha256"),
    CheckConstraint("kind IN ('photo', 'document', 'signature')", name="kind"),
)

credit_repairs = Table(
    "credit_repairs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False),
    Column("year", Integer, nullable=False),  # the rating repaired
    Column("status", String(10), nullable=False),  # requested, granted, refused
    Column("from_grade", String(8), nullable=False),
    Column("to_grade", String(8)),  # when granted
    Column("reason", Text, nullable=False),  # the enterprise's account of its rectification
    Column("evidence", JSON, nullable=False),  # the re-inspections that found it corrected
    Column("decision", Text),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("decided_by", String(100)),
    Column("decided_at", UTCDateTime),
    CheckConstraint("status IN ('requested', 'granted', 'refused')", name="status"),
)
Index("ix_credit_repairs_rating", credit_repairs.c.enterprise_id, credit_repairs.c.year)
