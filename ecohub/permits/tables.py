"""Tables of the permits area: applications for a discharge permit (new, change, renewal)
with every step and its documents, each permit version's self-monitoring plan, the
execution reports (HJ 944-2018) and the records exchanged with the tax authority.

The permit versions themselves, with their limits, are the registry's ``permits`` and
``permit_limits`` (one row per version): what the alarms, the accounting and the
disclosure read.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
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
from ecohub.permits.report_rules import Frequency
from ecohub.permits.rules import ApplicationKind, ApplicationStatus, ReportStatus


def in_check(column: str, values: type[enum.StrEnum]) -> str:
    """A CHECK constraint's text: ``column`` holds one of the enum's values."""
    return f"{column} IN ({', '.join(repr(str(value.value)) for value in values)})"


permit_applications = Table(
    "permit_applications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(20), nullable=False, unique=True),  # SQ + year + sequence
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False, index=True),
    Column("kind", String(10), nullable=False),
    Column("status", String(12), nullable=False),
    Column("permit_no", String(64)),  # the number changed or renewed; set on issue for new
    Column("management_class", String(12), nullable=False),
    Column("site_check", String(5), nullable=False, server_default="no"),  # 现场核查
    # What is applied for: validity wished, limits, self-monitoring plan (see service).
    Column("content", JSON, nullable=False),
    Column("submitted_by", String(100), nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("accepted_on", Date),
    Column("decision_due", Date),
    Column("decided_at", UTCDateTime),
    Column("decision_note", Text),
    Column("permit_id", Integer, ForeignKey("permits.id")),  # the version issued
    CheckConstraint(in_check("kind", ApplicationKind), name="kind"),
    CheckConstraint(in_check("status", ApplicationStatus), name="status"),
    CheckConstraint("site_check IN ('yes', 'no')", name="site_check"),
)

permit_application_steps = Table(
    "permit_application_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "application_id",
        Integer,
        ForeignKey("permit_applications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("step", String(12), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", Text),
)

permit_documents = Table(
    "permit_documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "application_id",
        Integer,
        ForeignKey("permit_applications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("step", String(12), nullable=False),  # the step it belongs to
    Column("title", String(200), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("uploaded_by", String(100), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
)

permit_monitoring = Table(
    "permit_monitoring",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("permit_id", Integer, ForeignKey("permits.id", ondelete="CASCADE"), nullable=False),
    Column("outlet_id", Integer, ForeignKey("outlets.id"), nullable=False),
    Column("parameter_code", String(16), nullable=False),
    Column("frequency", String(12), nullable=False),
    UniqueConstraint("permit_id", "outlet_id", "parameter_code", name="uq_permit_monitoring_key"),
    CheckConstraint(in_check("frequency", Frequency), name="frequency"),
)

execution_reports = Table(
    "execution_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("permit_no", String(64), nullable=False),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id"), nullable=False, index=True),
    Column("period_kind", String(10), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("status", String(10), nullable=False),
    Column("generated", JSON, nullable=False),  # what the data say (see reports.py)
    Column("completed", JSON, nullable=False),  # the enterprise's explanations and text
    Column("signature_sha256", String(64)),  # the signed page, an uploaded image
    Column("generated_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime),
    Column("submitted_by", String(100)),
    Column("reviewed_at", UTCDateTime),
    Column("reviewed_by", String(100)),
    Column("review_note", Text),
    UniqueConstraint("permit_no", "period_kind", "period_start", name="uq_execution_reports_key"),
    CheckConstraint(in_check("status", ReportStatus), name="status"),
)

exchange_records = Table(
    "exchange_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("record_key", String(300), nullable=False),  # the kind's key fields, joined
    Column("direction", String(6), nullable=False),  # 'out' (to the tax authority) or 'in'
    Column("payload", JSON, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the canonical payload
    Column("format_version", String(40), nullable=False),
    Column("source", String(200), nullable=False),  # the file or the export it came in
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "record_key", name="uq_exchange_records_key"),
    CheckConstraint("direction IN ('in', 'out')", name="direction"),
)

Index("ix_exchange_records_kind", exchange_records.c.kind)
