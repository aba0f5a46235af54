"""The complaints area's key: contact details encrypted at rest (Fernet: AES-128-CBC with
an HMAC-SHA256, from ``cryptography``) and query codes stored only as keyed digests
(HMAC-SHA256 with a key derived from the same secret), so that a copy of the database
alone reveals neither.

The key comes from the setting ``complaints_key`` (``ECOHUB_COMPLAINTS_KEY``); when it is
unset a key file ``complaints.key`` is made in the installation's ``var`` folder with
mode 600 on first use (the laptop default; production sets the key from its secret
store and keeps a copy, as without it stored contacts cannot be read).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

# Query codes: 8 characters without the look-alikes 0/O and 1/I (32 symbols: 40 bits).
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8


class KeyProblem(ValueError):
    """The configured key cannot be used (the message says why)."""


@dataclass(frozen=True)
class Keyring:
    """The area's secret, ready to use."""

    fernet: Fernet
    digest_key: bytes

    @classmethod
    def from_key(cls, key: str | bytes) -> Keyring:
        raw = key.encode() if isinstance(key, str) else key
        try:
            fernet = Fernet(raw.strip())
        except ValueError as error:
            raise KeyProblem(
                "complaints_key must be 32 bytes in url-safe base64 (make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from error
        digest_key = hashlib.sha256(b"ecohub-complaints-query-code:" + raw.strip()).digest()
        return cls(fernet, digest_key)

    def encrypt(self, text: str) -> str:
        return self.fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as error:
            raise KeyProblem("the contact details were encrypted with another key") from error

    def code_digest(self, ticket: str, code: str) -> str:
        message = f"{ticket}:{code.strip().upper()}".encode()
        return hmac.new(self.digest_key, message, hashlib.sha256).hexdigest()

    def derived_code(self, reference: str) -> str:
        """The query code of a source record (a form's client id): the same every time the
        record is filed again, so that a retry after a lost answer shows the code again."""
        digest = hmac.new(self.digest_key, b"code:" + reference.encode(), hashlib.sha256)
        return "".join(
            CODE_ALPHABET[byte % len(CODE_ALPHABET)] for byte in digest.digest()[:CODE_LENGTH]
        )

    def code_matches(self, ticket: str, code: str, digest: str) -> bool:
        return hmac.compare_digest(self.code_digest(ticket, code), digest)


def new_code() -> str:
    """A fresh query code for a complainant (shown once, stored only as a digest)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def keyring(configured: str | None, var_dir: str | Path) -> Keyring:
    """The keyring of the configured key, or of the key file in ``var_dir`` (made, mode
    600, when missing)."""
    if configured:
        return Keyring.from_key(configured)
    path = Path(var_dir) / "complaints.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # Written whole to a private temporary file, then linked into place: a reader
        # never sees half a key, and of two processes making one the first wins.
        temporary = path.with_name(f".complaints.key.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, key + b"\n")
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return Keyring.from_key(path.read_bytes())
