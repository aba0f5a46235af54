"""People who sign in to the portal: accounts with argon2 password hashes, and the
server-side sessions their browser cookie points to.

A session cookie carries only a random token; the store keeps its SHA-256, the user, the
expiry and a CSRF token that every state-changing request made with the cookie must echo
(form field ``csrf_token`` or header ``X-CSRF-Token``). Passwords are hashed with argon2id
(``argon2-cffi`` defaults, RFC 9106's second recommended profile).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ecohub.accounts.keys import Principal, Role
from ecohub.clock import utcnow
from ecohub.db.base import Base
from ecohub.db.types import UTCDateTime
from ecohub.registry.service import audit

SESSION_LIFETIME = dt.timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified when the user is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class User(Base):
    """One person's account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class UserSession(Base):
    """One signed-in browser."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class UserError(ValueError):
    """A user account that cannot be created or changed as asked."""


@dataclass(frozen=True)
class SignedIn:
    """A valid session: who it is and the CSRF token its forms must carry."""

    principal: Principal
    username: str
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    actor: str,
    enterprise_id: int | None = None,
) -> User:
    """Add an account; an enterprise user needs its enterprise."""
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("a user name is 1-64 printable characters without spaces")
    if role == Role.ENTERPRISE and enterprise_id is None:
        raise UserError("an enterprise user needs the enterprise it belongs to")
    if role == Role.OPERATOR:
        raise UserError("operators are machines: give them an API key, not a login")
    _check_password(password)
    if session.scalars(select(User).filter_by(username=username)).first() is not None:
        raise UserError(f"user {username!r} exists")
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role.value,
        enterprise_id=enterprise_id,
    )
    session.add(user)
    session.flush()
    audit(session, actor, "create", "user", username, None, _public(user))
    return user


def _public(user: User) -> dict[str, object]:
    return {"username": user.username, "role": user.role, "enterprise_id": user.enterprise_id}


def set_password(session: Session, username: str, password: str, actor: str) -> None:
    user = _user(session, username)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    audit(session, actor, "password", "user", username, None, None)


def disable_user(session: Session, username: str, actor: str) -> None:
    user = _user(session, username)
    user.disabled_at = utcnow()
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    audit(session, actor, "disable", "user", username, _public(user), None)


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).filter_by(username=username)).first()
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The enabled user with this name and password, or None (in constant-ish time)."""
    user = session.scalars(select(User).filter_by(username=username)).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def open_session(session: Session, user: User) -> str:
    """Start a browser session for ``user`` and return the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.expires_at < now))
    session.add(
        UserSession(
            token_sha256=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


def find_session(session: Session, token: str) -> SignedIn | None:
    """The signed-in user of a cookie token, or None when unknown, expired or disabled."""
    if not token or len(token) > 100:
        return None
    found = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_sha256 == _digest(token))
    ).first()
    if found is None:
        return None
    browser, user = found
    if browser.expires_at <= utcnow() or user.disabled_at is not None:
        return None
    return SignedIn(
        principal=Principal(
            name=user.username,
            role=Role(user.role),
            enterprise_id=user.enterprise_id,
            kind="user",
        ),
        username=user.username,
        csrf_token=browser.csrf_token,
    )


def close_session(session: Session, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_sha256 == _digest(token)))
