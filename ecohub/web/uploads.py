"""Uploaded files (photos, signatures, documents) as the areas keep them: the content
type read from the bytes themselves, never from the name or the sender's header, and the
bytes stored once under their SHA-256 in a content-addressed folder under the
installation's ``var`` folder, written atomically (a temporary file renamed) so that a
stored name never points at half a file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Content types by their opening bytes (JPEG: FF D8 FF; PNG: its 8-byte signature; PDF).
MAGIC = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "application/pdf": b"%PDF-",
}


def sniff(data: bytes) -> str | None:
    """The content type the bytes open with (None: none of :data:`MAGIC`)."""
    for content_type, magic in MAGIC.items():
        if data.startswith(magic):
            return content_type
    return None


class UploadRefused(ValueError):
    """An upload that is empty, too large or not of an accepted type (the message names
    the file and says why); ``status_code`` is the HTTP answer: 413 too large, else 422."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.status_code = 413 if too_large else 422


def check_upload(name: str, data: bytes, accepted: tuple[str, ...], max_bytes: int) -> str:
    """The content type of ``data`` if it is one of ``accepted`` and at most
    ``max_bytes`` long; else :class:`UploadRefused`."""
    if not data:
        raise UploadRefused(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise UploadRefused(
            f"{name}: {len(data):,} bytes, at most {max_bytes:,} are accepted", too_large=True
        )
    content_type = sniff(data)
    if content_type not in accepted:
        raise UploadRefused(
            f"{name}: must be {' or '.join(accepted)}; the file's bytes are "
            + (content_type or "none of these")
        )
    return content_type


def attachments_folder(var_dir: str | Path) -> Path:
    """The content-addressed folder of attachments under the store's ``var`` folder."""
    return Path(var_dir) / "attachments"


def attachment_path(folder: Path, sha256: str) -> Path:
    """Where an attachment's bytes live: ``folder/ab/abcdef…`` (by hash)."""
    return folder / sha256[:2] / sha256


def store_bytes(folder: Path, data: bytes) -> str:
    """Keep ``data`` under its SHA-256 in ``folder`` (once); returns the hash."""
    sha = hashlib.sha256(data).hexdigest()
    target = attachment_path(folder, sha)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f".{os.getpid()}.part")
        temporary.write_bytes(data)
        os.replace(temporary, target)
    return sha
