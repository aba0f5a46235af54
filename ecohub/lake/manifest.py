"""The lake's manifest (``<lake>/manifest.json``): every exported month of every table
with its files (rows, bytes, SHA-256), the source's row count and fingerprint, and a
digest of the month's content; written atomically (a temporary file and a rename), and
checked against the files on disk (``ecohub lake check``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(lake: Path, path: Path, rows: int) -> dict[str, Any]:
    """A file's manifest entry: its path in the lake, rows, bytes and SHA-256."""
    return {
        "path": path.relative_to(lake).as_posix(),
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


@dataclass
class Manifest:
    """What the lake holds: table → month ("YYYY-MM") → its entry; ``points`` is the
    registry dimension's entry."""

    timezone: str
    tables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    points: dict[str, Any] | None = None

    def months(self, table: str) -> dict[str, dict[str, Any]]:
        return self.tables.setdefault(table, {})

    def files(self) -> list[dict[str, Any]]:
        found = [f for months in self.tables.values() for m in months.values() for f in m["files"]]
        return found + (self.points["files"] if self.points else [])


def load(lake: Path, timezone: str) -> Manifest:
    """The lake's manifest (an empty one for a new lake). Raises ValueError when the lake
    was partitioned in another time zone."""
    path = lake / MANIFEST
    if not path.exists():
        return Manifest(timezone)
    document = json.loads(path.read_text(encoding="utf-8"))
    if document["timezone"] != timezone:
        raise ValueError(
            f"the lake {lake} is partitioned by months of {document['timezone']}, not {timezone}"
        )
    return Manifest(document["timezone"], document["tables"], document.get("points"))


def save(lake: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically."""
    document = {
        "version": VERSION,
        "timezone": manifest.timezone,
        "tables": {name: dict(sorted(months.items())) for name, months in manifest.tables.items()},
        "points": manifest.points,
    }
    temporary = lake / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, lake / MANIFEST)


@dataclass
class CheckReport:
    """The outcome of checking the files against the manifest."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)  # size or SHA-256 differs
    unlisted: list[str] = field(default_factory=list)  # Parquet files the manifest lacks

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupted or self.unlisted)


def check(lake: Path) -> CheckReport:
    """Compare every file of the lake with its manifest entry (size and SHA-256), and
    list Parquet files the manifest does not know."""
    document = json.loads((lake / MANIFEST).read_text(encoding="utf-8"))
    manifest = Manifest(document["timezone"], document["tables"], document.get("points"))
    report = CheckReport()
    listed = set()
    for entry in manifest.files():
        listed.add(entry["path"])
        path = lake / entry["path"]
        report.checked += 1
        if not path.exists():
            report.missing.append(entry["path"])
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            report.corrupted.append(entry["path"])
    for path in sorted(lake.rglob("*.parquet")):
        relative = path.relative_to(lake).as_posix()
        if relative not in listed and not relative.startswith("."):
            report.unlisted.append(relative)
    return report
