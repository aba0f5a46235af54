"""Who is calling the API: the API-key dependency every non-public route uses."""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from sqlalchemy.orm import Session

from ecohub.api.keys import Principal, verify_key


def principal(request: Request) -> Principal:
    """The caller, from its API key; 401 without a valid one."""
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    presented = presented or request.headers.get("x-api-key", "")
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "an API key is required (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with Session(request.app.state.engine) as session:
        found = verify_key(session, presented)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found
