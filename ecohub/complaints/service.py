"""The complaints area's settings made objects (the key, the linking thresholds, the
deadline table), photos of complaints, and the CSV intake of a call centre's records.

Photos are images only (JPEG or PNG by their bytes), at most :data:`MAX_PHOTO_BYTES`
each and :data:`MAX_PHOTOS` per complaint, stored by content hash beside the field
inspections' attachments.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from ecohub.clock import local_zone, utcnow
from ecohub.complaints.intake import ComplaintError, Filed, Submission, check, file_complaints
from ecohub.complaints.linking import LinkSettings, tokens
from ecohub.complaints.rules import Deadline, deadlines, parse_deadlines
from ecohub.complaints.secrets import Keyring, keyring
from ecohub.complaints.tables import Channel, complaint_photos, complaints
from ecohub.config import Settings
from ecohub.db.engine import write_transaction
from ecohub.web.uploads import UploadRefused, attachments_folder, check_upload, store_bytes

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 3
PHOTO_TYPES = ("image/jpeg", "image/png")
CSV_COLUMNS = ("ref", "medium", "text", "longitude", "latitude", "observed_at")
CSV_OPTIONAL = ("address", "contact", "anonymous", "channel")


@cache
def _keyring(configured: str | None, var_dir: str) -> Keyring:
    return keyring(configured, var_dir)


def keys_of(settings: Settings) -> Keyring:
    """The installation's complaints key (see :mod:`ecohub.complaints.secrets`)."""
    return _keyring(settings.complaints_key, settings.var_dir)


def link_settings(settings: Settings) -> LinkSettings:
    """The linking thresholds: the module's defaults, each overridden by its setting."""
    default = LinkSettings()

    def chosen(value: float | None, fallback: float) -> float:
        return fallback if value is None else value

    return LinkSettings(
        radius_m=chosen(settings.complaints_link_radius_m, default.radius_m),
        window_hours=chosen(settings.complaints_link_window_hours, default.window_hours),
        min_similarity=chosen(settings.complaints_link_similarity, default.min_similarity),
    )


def deadline_table(settings: Settings) -> Mapping[str, Deadline]:
    """The shipped deadlines, or the locality's table the settings name."""
    if settings.complaints_deadlines:
        path = Path(settings.complaints_deadlines)
        return parse_deadlines(path.read_text("utf-8"), str(path))
    return deadlines()


def photos_folder(settings: Settings) -> Path:
    return attachments_folder(settings.var_dir)


def add_photo(engine: Engine, folder: Path, complaint_id: int, name: str, data: bytes) -> str:
    """Store one photo of a complaint (idempotent by content); returns its SHA-256."""
    try:
        content_type = check_upload(f"photo {name}", data, PHOTO_TYPES, MAX_PHOTO_BYTES)
    except UploadRefused as error:
        raise ComplaintError(str(error)) from None
    sha = store_bytes(folder, data)
    with write_transaction(engine) as connection:
        stored = set(
            connection.execute(
                select(complaint_photos.c.sha256).where(
                    complaint_photos.c.complaint_id == complaint_id
                )
            ).scalars()
        )
        if sha not in stored:
            if len(stored) >= MAX_PHOTOS:
                raise ComplaintError(f"photo {name}: at most {MAX_PHOTOS} photos per complaint")
            connection.execute(
                insert(complaint_photos).values(
                    complaint_id=complaint_id,
                    sha256=sha,
                    content_type=content_type,
                    size=len(data),
                    added_at=utcnow(),
                )
            )
    return sha


def photo_of(engine: Engine, event_id: int, sha256: str) -> tuple[str, str] | None:
    """(content type, sha) of a photo of one of the event's complaints, or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(complaint_photos.c.content_type)
            .join(complaints, complaints.c.id == complaint_photos.c.complaint_id)
            .where(complaints.c.event_id == event_id, complaint_photos.c.sha256 == sha256)
        ).first()
    return (row.content_type, sha256) if row is not None else None


@dataclass
class CsvReport:
    """What a CSV intake did: the tickets filed and every refused line with its reason."""

    filed: list[Filed] = field(default_factory=list)
    repeated: int = 0
    errors: list[str] = field(default_factory=list)


def _row_submission(row: Mapping[str, str], default_channel: str) -> Submission:
    missing = [name for name in CSV_COLUMNS if not (row.get(name) or "").strip()]
    if missing:
        raise ComplaintError(f"missing {', '.join(missing)}")
    try:
        longitude, latitude = float(row["longitude"]), float(row["latitude"])
    except ValueError:
        raise ComplaintError("longitude, latitude: not numbers") from None
    try:
        observed = dt.datetime.fromisoformat(row["observed_at"].strip())
    except ValueError:
        raise ComplaintError(f"observed_at: {row['observed_at']!r} is no ISO 8601 time") from None
    if observed.tzinfo is None:
        observed = observed.replace(tzinfo=local_zone())  # a call centre's local time
    return Submission(
        medium=row["medium"].strip(),
        text=row["text"],
        longitude=longitude,
        latitude=latitude,
        observed_at=observed,
        address=(row.get("address") or "").strip(),
        contact=(row.get("contact") or "").strip(),
        anonymous=(row.get("anonymous") or "").strip().lower() in ("1", "true", "yes", "是"),
        channel=(row.get("channel") or "").strip() or default_channel,
        external_ref=row["ref"].strip(),
    )


def import_csv(
    engine: Engine,
    settings: Settings,
    data: bytes,
    source: str,
    actor: str,
    chunk: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> CsvReport:
    """File a call centre's records (UTF-8, with or without BOM; a GB18030 file is
    refused with a message saying so). Each good row is filed; each bad one is reported
    with its line number and reason and filed nowhere. Re-importing the same file files
    nothing twice (``ref`` is the source's record id)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ComplaintError(
            f"{source}: not UTF-8 at byte {error.start} (save the file as UTF-8; a GB18030 "
            "export converts with `iconv -f GB18030 -t UTF-8`)"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    report = CsvReport()
    now = utcnow()
    chunks: list[list[Submission]] = [[]]
    try:
        absent = [name for name in CSV_COLUMNS if name not in (reader.fieldnames or [])]
        if absent:
            raise ComplaintError(f"{source}: the header lacks {', '.join(absent)}")
        for row in reader:
            line = reader.line_num
            try:
                chunks[-1].append(check(_row_submission(row, Channel.HOTLINE.value), now))
            except ComplaintError as error:
                report.errors.append(f"{source} line {line}: {error}")
            if len(chunks[-1]) >= chunk:
                chunks.append([])
    except csv.Error as error:  # the file is not CSV from here on: nothing is filed
        raise ComplaintError(f"{source} line {reader.line_num}: {error}") from None
    with _cutter(sum(len(batch) for batch in chunks)) as pool:
        # The text of the next chunks is cut in worker processes while this one is filed.
        cut = [pool.submit(cut_texts, [item.text for item in batch]) for batch in chunks]
        for batch, words in zip(chunks, cut, strict=True):
            _file_chunk(engine, settings, batch, words.result(), actor, report, progress)
    return report


PARALLEL_FROM = 2000  # rows from which an import cuts text in worker processes


def cut_texts(texts: list[str]) -> list[tuple[str, ...]]:
    """Each text's tokens (run in a worker process)."""
    return [tokens(text) for text in texts]


@contextmanager
def _cutter(rows: int) -> Iterator[Executor]:
    """Worker processes (spawned, one per core up to 2) for a large import, or an
    executor running in this thread for a small one."""
    if rows < PARALLEL_FROM:
        with ThreadPoolExecutor(max_workers=1) as inline:
            yield inline
        return
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _file_chunk(
    engine: Engine,
    settings: Settings,
    batch: list[Submission],
    words: list[tuple[str, ...]],
    actor: str,
    report: CsvReport,
    progress: Callable[[int], None] | None,
) -> None:
    if not batch:
        return
    filed = file_complaints(
        engine,
        keys_of(settings),
        batch,
        actor,
        link_settings(settings),
        progress=progress,
        words=words,
    )
    for item in filed:
        if item.repeat:
            report.repeated += 1
        else:
            report.filed.append(item)


def complaint_event(engine: Engine, complaint_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(complaints.c.event_id).where(complaints.c.id == complaint_id)
        ).scalar()
