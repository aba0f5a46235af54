"""Tables of public participation (12369): the handling agencies and who works for them,
events (what the agency handles: one or more linked complaints), the complaints
themselves with their photos, and every step of the handling.

Personal data: a complaint's contact details are stored only encrypted
(``complaints.contact_cipher``, see :mod:`ecohub.complaints.secrets`); the query code
only as a keyed digest. The text, place and photos are visible to the agencies, never
to the public (the public statistics aggregate them).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ecohub.complaints.rules import Medium, Step
from ecohub.db.base import metadata
from ecohub.db.types import UTCDateTime


class Channel(enum.StrEnum):
    """Where a complaint came in."""

    PORTAL = "portal"  # the public form
    HOTLINE = "hotline"  # the 12369 call centre (API or its CSV records)
    WECHAT = "wechat"  # the WeChat operator's system (API)
    API = "api"  # another system through the API
    LETTER = "letter"  # letters and visits typed in by the agency


class EventStatus(enum.StrEnum):
    RECEIVED = "received"  # 登记: awaiting the acceptance decision
    ACCEPTED = "accepted"  # 受理: in handling
    NOT_ACCEPTED = "not_accepted"  # 不予受理 (with the reason, told to the complainants)
    REPLIED = "replied"  # 办结: findings and reply given
    REVIEWING = "reviewing"  # 复查: reopened on a complainant's objection
    CLOSED = "closed"


class Satisfaction(enum.StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY = "basically"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


complaint_agencies = Table(
    "complaint_agencies",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region_code", String(6), nullable=False),  # GB/T 2260 code of its area
    Column("parent_code", String(32), ForeignKey("complaint_agencies.code")),  # the level above
    Column("media", JSON, nullable=False),  # media it handles; empty: all
    Column("active", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

complaint_handlers = Table(
    "complaint_handlers",
    metadata,
    Column("account", String(100), primary_key=True),  # a user's or key's name
    Column("agency_code", String(32), ForeignKey("complaint_agencies.code"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

complaint_events = Table(
    "complaint_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("medium", String(10), nullable=False),
    Column("status", String(12), nullable=False),
    Column("region_code", String(6)),  # where it happened (the city of the first complaint)
    Column("agency_code", String(32), ForeignKey("complaint_agencies.code")),  # handling now
    Column("title", String(200), nullable=False),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("first_observed_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),  # the first complaint's receipt
    Column("accepted_at", UTCDateTime),
    Column("replied_at", UTCDateTime),
    Column("review_requested_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("extension_days", Integer, nullable=False),
    Column("complaint_count", Integer, nullable=False),
    Column("findings", Text),  # the handler's findings (agency only)
    Column("reply", Text),  # the reply every complainant of the event reads
    Column("case_id", Integer, ForeignKey("cases.id")),  # a penalty case it led to
    Column("enterprise_id", Integer, ForeignKey("enterprises.id")),  # the source found
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_in("medium", Medium), name="medium"),
    CheckConstraint(_in("status", EventStatus), name="status"),
    Index("ix_complaint_events_agency_status", "agency_code", "status"),
    Index("ix_complaint_events_enterprise", "enterprise_id"),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket", String(20), nullable=False, unique=True),  # 受理编号
    Column("code_digest", String(64), nullable=False),  # keyed digest of the query code
    Column("channel", String(8), nullable=False),
    Column("external_ref", String(64)),  # the source system's record id (idempotent intake)
    Column("event_id", Integer, ForeignKey("complaint_events.id"), nullable=False),
    Column("medium", String(10), nullable=False),
    Column("text", Text, nullable=False),
    Column("tokens", Text, nullable=False),  # the segmented text, space-separated
    Column("address", String(300), nullable=False),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("region_code", String(6)),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # Why it joined its event: the earlier complaint it matched and how closely.
    Column("linked_to", Integer),
    Column("link_score", Float),
    Column("link_distance_m", Float),
    Column("link_hours", Float),
    Column("anonymous", Boolean, nullable=False),
    Column("contact_cipher", Text),  # Fernet token of the contact details, or NULL
    Column("satisfaction", String(12)),
    Column("rated_at", UTCDateTime),
    Column("objection", Text),
    Column("objected_at", UTCDateTime),
    CheckConstraint(_in("medium", Medium), name="medium"),
    CheckConstraint(_in("channel", Channel), name="channel"),
    CheckConstraint(_in("satisfaction", Satisfaction), name="satisfaction"),
    UniqueConstraint("channel", "external_ref", name="uq_complaints_channel_external_ref"),
    Index("ix_complaints_medium_observed", "medium", "observed_at"),
    Index("ix_complaints_event", "event_id"),
    Index("ix_complaints_region_received", "region_code", "received_at"),
)

complaint_photos = Table(
    "complaint_photos",
    metadata,
    Column("complaint_id", Integer, ForeignKey("complaints.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("complaint_id", "sha256"),
)

complaint_steps = Table(
    "complaint_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("complaint_events.id"), nullable=False),
    Column("complaint_id", Integer, ForeignKey("complaints.id")),
    Column("step", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("agency_code", String(32)),  # the agency acting (transfer: the one it left)
    Column("to_agency_code", String(32)),  # transfer: the agency it went to
    Column("days", Integer),  # extension: days granted
    Column("note", Text),  # reasons, findings summary
    CheckConstraint(_in("step", Step), name="step"),
    Index("ix_complaint_steps_event", "event_id"),
)
