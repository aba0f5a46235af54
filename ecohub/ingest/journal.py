"""The batch writer's journal: accepted batches on local disk until the store commits them.

A door may answer its sender (a logger's 9014, an MQTT PUBACK, an HTTP 202) once the
batch holding its values is *durable*. Without a journal that is when the store has
committed it, so a burst of uploads, or the store being slow or down, makes every
sender wait. With a journal a batch is durable once appended here and flushed to disk
(``fdatasync``); the store commits it later, and a batch the store has not committed
when the process ends (a crash, a database outage at shutdown) is written again at the
next start. Re-writing a committed batch changes nothing: the store's keys make every
write idempotent.

Layout: a directory holding segment files ``<first sequence number>.journal`` and a file
``committed`` with the highest sequence number up to which every batch is committed.
A record is a header (magic, payload length, sequence number, CRC-32 of the sequence
number and payload) followed by the payload, the batch as the writer pickled it. A
record cut short or damaged by a crash ends its segment: it was never answered, because
answers wait for the flush. Segments whose batches are all committed are deleted.

One process uses a journal at a time (an exclusive ``flock`` on ``LOCK``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ecohub.ingest.events import log_event

logger = logging.getLogger("ecohub.ingest")

MAGIC = b"EHJ1"
_HEADER = struct.Struct("<4sIQI")  # magic, payload length, sequence number, CRC-32
SEGMENT_BYTES = 64 << 20  # a new segment after this many bytes
MAX_PAYLOAD = 1 << 30
_SUFFIX = ".journal"


class JournalError(RuntimeError):
    """The journal cannot be used (in use by another process, or not writable)."""


@dataclass(frozen=True)
class Record:
    """One batch read back from the journal."""

    sequence: int
    payload: bytes


def encode_record(sequence: int, payload: bytes) -> bytes:
    """A record's bytes: header, then payload."""
    checksum = zlib.crc32(payload, zlib.crc32(struct.pack("<Q", sequence)))
    return _HEADER.pack(MAGIC, len(payload), sequence, checksum) + payload


def read_records(data: bytes) -> tuple[list[Record], int, str | None]:
    """The whole records at the start of ``data``, the number of bytes they take, and why
    reading stopped before the end (None if it reached it)."""
    records: list[Record] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            return records, offset, "record header cut short"
        magic, length, sequence, checksum = _HEADER.unpack_from(data, offset)
        if magic != MAGIC:
            return records, offset, "no record header"
        if length > MAX_PAYLOAD:
            return records, offset, f"record length {length} is impossible"
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length:
            return records, offset, "record cut short"
        if zlib.crc32(payload, zlib.crc32(struct.pack("<Q", sequence))) != checksum:
            return records, offset, "record checksum does not match"
        records.append(Record(sequence, payload))
        offset = start + length
    return records, offset, None


class Journal:
    """An append-only journal of batches in ``directory`` (created if missing).

    :meth:`append` writes a batch and returns its sequence number; :meth:`sync` makes
    everything appended so far durable; :meth:`mark_committed` records that every batch
    up to a sequence number is in the store. :meth:`pending` lists, right after opening,
    the batches an earlier process left uncommitted. Not thread-safe: one thread uses it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.directory / "LOCK", "a+")  # noqa: SIM115 (held open)
        except OSError as error:
            raise JournalError(
                f"journal directory {self.directory} is not usable: {error}"
            ) from error
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise JournalError(
                f"journal directory {self.directory} is in use by another process "
                "(set ECOHUB_JOURNAL_DIR to a directory of its own for each gateway)"
            ) from None
        self.committed = _committed_mark(self.directory)
        self._pending: list[Record] = []
        self._segments: list[tuple[int, Path]] = []  # (first sequence number, path)
        last = self.committed
        for first, path in _segment_files(self.directory):
            records = self._load_segment(path)
            if not records:
                path.unlink()
                continue
            self._segments.append((first, path))
            last = max(last, records[-1].sequence)
            self._pending += [r for r in records if r.sequence > self.committed]
        self.next_sequence = last + 1
        self._file: int | None = None  # descriptor of the segment being written
        self._file_bytes = 0
        self._unsynced = False
        if self._pending:
            log_event(
                logger,
                "journal_pending",
                logging.WARNING,
                directory=str(self.directory),
                batches=len(self._pending),
            )
        self._forget_committed_segments()

    # --- reading ------------------------------------------------------------------------

    def pending(self) -> list[Record]:
        """Batches an earlier process journaled but did not see committed, oldest first
        (they are written again; the list is handed over once)."""
        found, self._pending = self._pending, []
        return found

    def _load_segment(self, path: Path) -> list[Record]:
        data = path.read_bytes()
        records, used, problem = read_records(data)
        if problem is not None:
            # Never flushed, hence never answered: the tail of a crash. Cut it off.
            log_event(
                logger,
                "journal_tail_cut",
                logging.WARNING,
                segment=path.name,
                reason=problem,
                bytes_dropped=len(data) - used,
            )
            with open(path, "r+b") as handle:
                handle.truncate(used)
                os.fsync(handle.fileno())
        return records

    # --- writing ------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Append one batch (not yet durable: see :meth:`sync`); returns its number."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a journal record holds at most {MAX_PAYLOAD} bytes")
        sequence = self.next_sequence
        if self._file is None or self._file_bytes >= SEGMENT_BYTES:
            self._start_segment(sequence)
        assert self._file is not None
        record = encode_record(sequence, payload)
        view = memoryview(record)
        try:
            while view:
                written = os.write(self._file, view)
                view = view[written:]
        except OSError:
            self._drop_segment_file()
            raise
        self._file_bytes += len(record)
        self.next_sequence = sequence + 1
        self._unsynced = True
        return sequence

    def sync(self) -> None:
        """Make every appended batch durable."""
        if self._file is not None and self._unsynced:
            try:
                os.fdatasync(self._file)
            except OSError:
                self._drop_segment_file()
                raise
            self._unsynced = False

    def _drop_segment_file(self) -> None:
        """After a failed write or flush: the segment may end in a partial record, so the
        next batch starts a new one (a partial record ends its segment; see
        :meth:`_load_segment`)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file, self._file_bytes)  # whole records only
            with contextlib.suppress(OSError):
                os.close(self._file)
            self._file = None
            self._unsynced = False

    def _start_segment(self, sequence: int) -> None:
        if self._file is not None:
            self.sync()
            os.close(self._file)
        path = self.directory / f"{sequence:020d}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if self._segments and self._segments[-1][1] == path:
            # Its first record failed (see _drop_segment_file): it holds no whole record.
            self._segments.pop()
            flags |= os.O_TRUNC
        self._file = os.open(path, flags, 0o600)
        self._file_bytes = 0
        self._segments.append((sequence, path))
        _sync_directory(self.directory)  # the new file's name is durable too

    def mark_committed(self, sequence: int) -> None:
        """Every batch up to ``sequence`` is in the store: remember it, and delete the
        segments that hold nothing else. (Not flushed: should the note be lost, those
        batches are written again, which changes nothing.)"""
        if sequence <= self.committed:
            return
        self.committed = sequence
        note = self.directory / "committed.new"
        note.write_text(f"{sequence}\n")
        note.replace(self.directory / "committed")
        self._forget_committed_segments()

    def _forget_committed_segments(self) -> None:
        # A segment holds only committed batches when the next one starts at or below
        # the committed number + 1 (the segment being written is never deleted).
        while len(self._segments) > 1 and self._segments[1][0] <= self.committed + 1:
            _first, path = self._segments.pop(0)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def segment_paths(self) -> list[Path]:
        """The segment files, oldest first."""
        return [path for _first, path in self._segments]

    def close(self) -> None:
        """Flush and close (the lock is released)."""
        if self._file is not None:
            self.sync()
            os.close(self._file)
            self._file = None
        if self.next_sequence - 1 <= self.committed:
            # Everything written is committed: nothing to keep for the next start.
            for _first, path in self._segments:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            self._segments = []
        self._lock.close()


@dataclass(frozen=True)
class JournalStatus:
    """What a journal directory holds, read without changing it."""

    directory: Path
    in_use: bool  # a running process holds its lock
    segments: int
    bytes: int
    committed: int  # every batch up to this number is in the store
    pending: list[Record]  # batches after it, oldest first
    problems: list[str]  # records cut short or damaged (cut off at the next start)


def inspect_journal(directory: str | os.PathLike[str]) -> JournalStatus:
    """Read a journal without taking its lock or cutting anything (safe while a gateway
    runs; what it holds may then change as it is read)."""
    path = Path(directory)
    if not path.is_dir():
        raise JournalError(f"no journal directory at {path}")
    in_use = False
    lock_path = path / "LOCK"
    if lock_path.exists():
        with open(lock_path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                in_use = True
    committed = _committed_mark(path)
    pending: list[Record] = []
    problems: list[str] = []
    segments = _segment_files(path)
    size = 0
    for _first, segment in segments:
        data = segment.read_bytes()
        size += len(data)
        records, used, problem = read_records(data)
        pending += [r for r in records if r.sequence > committed]
        if problem is not None:
            problems.append(f"{segment.name}: {problem} at byte {used} of {len(data)}")
    return JournalStatus(path, in_use, len(segments), size, committed, pending, problems)


def _committed_mark(directory: Path) -> int:
    """The number in ``committed`` (0 if missing or unreadable: everything is written
    again, which the store makes harmless)."""
    try:
        text = (directory / "committed").read_text().strip()
    except FileNotFoundError:
        return 0
    try:
        return int(text)
    except ValueError:
        log_event(logger, "journal_committed_unreadable", logging.WARNING, text=text[:40])
        return 0


def _segment_files(directory: Path) -> list[tuple[int, Path]]:
    """(first sequence number, path) of each segment file, oldest first."""
    segments = []
    for path in directory.glob(f"*{_SUFFIX}"):
        stem = path.name[: -len(_SUFFIX)]
        if stem.isdigit():
            segments.append((int(stem), path))
    return sorted(segments)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
