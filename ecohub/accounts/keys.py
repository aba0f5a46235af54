"""API keys for machines (data uploaders, integrations): issued once, stored hashed.

A key is ``ek_`` + 8 characters of lookup prefix + 32 random characters. Only its
SHA-256 is stored: keys are long random secrets, so a slow password hash adds nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ecohub.clock import utcnow
from ecohub.db.base import Base
from ecohub.db.types import UTCDateTime

KEY_PREFIX = "ek_"


class Role(enum.StrEnum):
    """What a key (and, later, a user) may do."""

    ADMIN = "admin"
    AGENCY = "agency"
    ENTERPRISE = "enterprise"  # only its own enterprise's points
    OPERATOR = "operator"  # a third-party operator uploading for the points it is given
    PUBLIC = "public"  # a registered member of the public: what anyone sees, signed in
    # A field inspector (执法人员): the account's name is their badge code in the
    # inspector directory; they see their own assignments and inspections only.
    INSPECTOR = "inspector"


class ApiKey(Base):
    """One machine credential."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    lookup: Mapped[str] = mapped_column(String(8), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Requests per minute; None: the installation's default (``ECOHUB_API_RATE_LIMIT``).
    rate_limit: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name, role and (for enterprise keys) enterprise."""

    name: str
    role: Role
    enterprise_id: int | None = None
    rate_limit: int | None = None  # requests per minute, None: the default
    kind: str = "key"  # key (a machine) or user (a person signed in to the portal)

    @property
    def actor(self) -> str:
        """The name the audit log and alarm histories record."""
        return f"{self.kind}:{self.name}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session,
    *,
    name: str,
    role: Role,
    created_by: str,
    enterprise_id: int | None = None,
    rate_limit: int | None = None,
) -> str:
    """Create a key and return it; it is shown this once and never stored in clear."""
    if role == Role.ENTERPRISE and enterprise_id is None:
        raise ValueError("an enterprise key needs the enterprise it belongs to")
    lookup = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    session.add(
        ApiKey(
            name=name,
            lookup=lookup,
            secret_sha256=_digest(secret),
            role=role.value,
            enterprise_id=enterprise_id,
            created_by=created_by,
            rate_limit=rate_limit,
        )
    )
    session.flush()
    return f"{KEY_PREFIX}{lookup}{secret}"


def verify_key(session: Session, presented: str) -> Principal | None:
    """The principal of a presented key, or None for an unknown, wrong or revoked key."""
    if not presented.startswith(KEY_PREFIX) or len(presented) < len(KEY_PREFIX) + 9:
        return None
    lookup = presented[len(KEY_PREFIX) : len(KEY_PREFIX) + 8]
    secret = presented[len(KEY_PREFIX) + 8 :]
    key = session.scalars(select(ApiKey).filter_by(lookup=lookup)).one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_sha256, _digest(secret)):
        return None
    return Principal(
        name=key.name,
        role=Role(key.role),
        enterprise_id=key.enterprise_id,
        rate_limit=key.rate_limit,
    )


def revoke_key(session: Session, lookup: str) -> bool:
    key = session.scalars(select(ApiKey).filter_by(lookup=lookup)).one_or_none()
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True
