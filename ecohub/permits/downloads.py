"""The stored files of the permit procedure as downloads, for the API and the portal: an
application's documents and the signed page of an execution report. Access is checked
by the caller (the agency, or the enterprise's own users for their own records); here
the file is found among its record's own files (404 otherwise) and answered with its
content type read from the bytes, as an attachment, never to be sniffed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from fastapi.responses import FileResponse

from ecohub.web import uploads

EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def file_response(folder: Path, sha256: str, media_type: str, filename: str) -> FileResponse:
    """The stored bytes under ``sha256`` as an attachment of ``media_type``."""
    path = uploads.attachment_path(folder, sha256)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the stored file is missing")
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        headers={"X-Content-Type-Options": "nosniff"},
    )


def document(folder: Path, application: dict[str, Any], document_id: int) -> FileResponse:
    """One of an application's documents (404 if it is not one of them)."""
    found = next((d for d in application["documents"] if d["id"] == document_id), None)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such document of this application")
    return file_response(folder, found["sha256"], found["media_type"], found["title"])


def signature(folder: Path, report: dict[str, Any]) -> FileResponse:
    """The signed page of a submitted report (404 if it has none)."""
    sha = report.get("signature_sha256")
    if not sha:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the report is not signed")
    path = uploads.attachment_path(folder, sha)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the stored file is missing")
    with path.open("rb") as stored:
        media_type = uploads.sniff(stored.read(16)) or "application/octet-stream"
    name = f"signature-{report['id']}.{EXTENSIONS.get(media_type, 'bin')}"
    return file_response(folder, sha, media_type, name)
