"""Tables of the environmental management ledger (环境管理台账, HJ 944-2018): a permit's
facilities (production and pollution control) and the ledger's entries.

Entries are append-only: a correction is a new entry that names the one it corrects
(``corrects_id``), and the corrected entry stays as it was; the service never updates or
deletes an entry, and counts only entries no later entry corrects.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ecohub.db.base import metadata
from ecohub.db.types import UTCDateTime
from ecohub.permits.ledger_rules import Condition, FacilityKind, RecordKind
from ecohub.permits.tables import in_check

ledger_facilities = Table(
    "ledger_facilities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False, index=True),
    Column("permit_no", String(64), nullable=False),
    Column("code", String(32), nullable=False),  # the permit's facility code (MF0001, TA001…)
    Column("name", String(200), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    UniqueConstraint("permit_no", "code", name="uq_ledger_facilities_key"),
    CheckConstraint(in_check("kind", FacilityKind), name="kind"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False, index=True),
    Column("permit_no", String(64), nullable=False),
    Column("facility_id", Integer, ForeignKey("ledger_facilities.id")),
    Column("kind", String(12), nullable=False),
    Column("condition", String(10), nullable=False),
    Column("recorded_for", UTCDateTime, nullable=False),  # the time the record is about
    Column("data", JSON, nullable=False),  # the values, checked against the kind's fields
    Column("operator", String(100), nullable=False),  # who recorded it on site (记录人)
    Column("note", Text),
    Column("corrects_id", Integer, ForeignKey("ledger_entries.id"), unique=True),
    Column("entered_at", UTCDateTime, nullable=False),
    Column("entered_by", String(100), nullable=False),  # the signed-in account
    CheckConstraint(in_check("kind", RecordKind), name="kind"),
    CheckConstraint(in_check("condition", Condition), name="condition"),
)

Index("ix_ledger_entries_permit_time", ledger_entries.c.permit_no, ledger_entries.c.recorded_for)
