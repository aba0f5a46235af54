"""The batch writer's journal: records survive a restart until committed, a torn tail is
cut off, segments holding only committed batches are deleted, one process at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecohub.ingest import journal as journal_module
from ecohub.ingest.journal import Journal, JournalError, encode_record, read_records


def test_uncommitted_batches_are_pending_after_a_restart(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    numbers = [journal.append(f"batch {i}".encode()) for i in range(5)]
    journal.sync()
    journal.mark_committed(numbers[1])
    journal.close()  # or a crash: nothing below depends on close()

    again = Journal(tmp_path)
    pending = again.pending()
    assert [r.payload for r in pending] == [b"batch 2", b"batch 3", b"batch 4"]
    assert [r.sequence for r in pending] == numbers[2:]
    assert again.pending() == []  # handed over once
    assert again.append(b"next") == numbers[-1] + 1  # numbering goes on


def test_a_torn_tail_is_cut_off_and_the_journal_goes_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(3):
        journal.append(f"batch {i}".encode())
    journal.sync()
    (segment,) = journal.segment_paths()
    journal._lock.close()  # a crash: the process is gone, its lock with it
    whole = segment.stat().st_size
    # A crash in the middle of the fourth record (never flushed, so never answered).
    with open(segment, "ab") as handle:
        handle.write(encode_record(4, b"batch 3")[:-3])

    again = Journal(tmp_path)
    assert [r.payload for r in again.pending()] == [b"batch 0", b"batch 1", b"batch 2"]
    assert segment.stat().st_size == whole
    again.append(b"batch 3")
    again.sync()
    again._lock.close()
    third = Journal(tmp_path)
    assert [r.payload for r in third.pending()] == [b"batch 0", b"batch 1", b"batch 2", b"batch 3"]


def test_a_damaged_record_ends_its_segment(tmp_path: Path) -> None:
    records = b"".join(encode_record(n, b"x" * n) for n in range(1, 5))
    damaged = bytearray(records)
    second = len(encode_record(1, b"x"))
    damaged[second + 20] ^= 0xFF  # a byte of the second record's payload
    found, used, problem = read_records(bytes(damaged))
    assert [r.sequence for r in found] == [1]
    assert used == second
    assert problem == "record checksum does not match"


@given(
    payloads=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    cut=st.integers(min_value=0),
)
def test_reading_a_cut_stream_yields_exactly_the_whole_records(
    payloads: list[bytes], cut: int
) -> None:
    encoded = [encode_record(n + 1, p) for n, p in enumerate(payloads)]
    stream = b"".join(encoded)
    cut %= len(stream) + 1
    whole = 0
    position = 0
    for record in encoded:
        if position + len(record) > cut:
            break
        position += len(record)
        whole += 1
    found, used, problem = read_records(stream[:cut])
    assert [r.payload for r in found] == payloads[:whole]
    assert used == position
    assert (problem is None) == (cut == position)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    found, used, _problem = read_records(data)
    assert used <= len(data) and (found == [] or used > 0)


def test_segments_holding_only_committed_batches_are_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 100)
    journal = Journal(tmp_path)
    numbers = [journal.append(b"y" * 80) for _ in range(6)]  # a segment per record
    journal.sync()
    assert len(journal.segment_paths()) == 6
    journal.mark_committed(numbers[3])
    remaining = journal.segment_paths()
    assert [int(p.name.split(".")[0]) for p in remaining] == numbers[4:]
    assert all(p.exists() for p in remaining)
    assert len(list(tmp_path.glob("*.journal"))) == 2
    journal.mark_committed(numbers[5])
    journal.close()
    assert list(tmp_path.glob("*.journal")) == []  # all committed: nothing kept
    assert Journal(tmp_path).pending() == []


def test_one_process_at_a_time(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    with pytest.raises(JournalError, match="in use by another process"):
        Journal(tmp_path)
    journal.close()
    Journal(tmp_path).close()


def test_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match="is not usable"):
        Journal(blocker / "journal")


def test_inspecting_a_journal_changes_nothing_and_counts_what_waits(tmp_path: Path) -> None:
    import pickle

    from typer.testing import CliRunner

    from ecohub.cli.main import app
    from ecohub.ingest.journal import inspect_journal

    def payload(values: int, rejected: int) -> bytes:
        columns = tuple(tuple(range(values)) for _ in range(8)) if values else ()
        return pickle.dumps((columns, ["bad input"] * rejected))

    journal = Journal(tmp_path)
    first = journal.append(payload(5, 0))
    journal.append(payload(7, 1))
    journal.append(payload(0, 2))
    journal.sync()
    journal.mark_committed(first)
    (segment,) = journal.segment_paths()
    with open(segment, "ab") as handle:  # a torn record after the flushed ones
        handle.write(b"EHJ1\x00")
    size = segment.stat().st_size

    status = inspect_journal(tmp_path)
    assert status.in_use and status.committed == first and status.segments == 1
    assert [r.sequence for r in status.pending] == [first + 1, first + 2]
    cut = f"{segment.name}: record header cut short at byte {size - 5} of {size}"
    assert status.problems == [cut]
    result = CliRunner().invoke(app, ["journal", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "in use by a running gateway" in text
    assert "2 batch(es) (2-3), 7 values and 3 rejected inputs" in text
    assert segment.stat().st_size == size  # nothing cut while inspecting
    journal.close()
    assert not inspect_journal(tmp_path).in_use

    missing = CliRunner().invoke(app, ["journal", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no journal directory" in missing.output
