"""Linking complaints into events: quality on the labelled set, throughput on 100,000.

Quality: :func:`ecohub.complaints.linking.cluster` with the default settings on each split
of ``tests/data/complaints_labelled.csv`` (made by ``scripts/make_complaints_labelled.py``;
the defaults were tuned on ``dev``, ``test`` is the figure to quote). A pair of
complaints in the same split is predicted linked when ``cluster`` puts them in one event,
truly linked when they share ``event_label``; pairwise precision, recall and F1 follow,
and the B-cubed ones (per complaint, then averaged) for information. For comparison the
same with ``min_similarity=0`` (medium, space and time alone).

Throughput: the generator scaled to a year, 800 neighbourhoods around the same five
cities and about 100,000 complaints (the first ``--complaints`` in time); their words
(:func:`tokens`) once, then ``cluster`` in memory, the median of ``--repeats`` runs.
``--tune`` also searches the settings on ``dev`` and prints the best and the one chosen
(the defaults of :class:`LinkSettings`).

    python -m benchmarks.complaints_linking [--complaints 100000] [--repeats 3] [--tune]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Iterable

from ecohub.complaints.linking import Complaint, LinkSettings, cluster, tokens
from scripts.make_complaints_labelled import OUT, Row, generate, read_csv

TARGET_SECONDS = 15.0  # linking's share of the 60 s intake of 100,000 complaints


def _pairs(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def pairwise_scores(predicted: dict[int, int], truth: dict[int, str]) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of ``predicted`` (complaint → event) against
    ``truth`` (complaint → label) over all pairs of the complaints in ``truth``."""
    both = _pairs(Counter((predicted[c], truth[c]) for c in truth).values())
    linked = _pairs(Counter(predicted[c] for c in truth).values())
    true = _pairs(Counter(truth.values()).values())
    precision = both / linked if linked else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def bcubed_scores(predicted: dict[int, int], truth: dict[int, str]) -> tuple[float, float]:
    """B-cubed precision and recall: for each complaint, the share of its predicted event
    that truly belongs with it, and of its true event that was put with it; averaged."""
    cell = Counter((predicted[c], truth[c]) for c in truth)
    event = Counter(predicted[c] for c in truth)
    label = Counter(truth.values())
    precision = statistics.fmean(cell[predicted[c], truth[c]] / event[predicted[c]] for c in truth)
    recall = statistics.fmean(cell[predicted[c], truth[c]] / label[truth[c]] for c in truth)
    return precision, recall


def as_complaints(rows: list[Row]) -> list[Complaint]:
    return [
        Complaint(row.id, row.medium, row.longitude, row.latitude, row.at, tokens(row.text))
        for row in rows
    ]


def judge(
    rows: list[Row], complaints: list[Complaint], settings: LinkSettings
) -> tuple[float, ...]:
    """Pairwise precision, recall, F1 and B-cubed precision, recall on ``rows``."""
    truth = {row.id: row.event_label for row in rows}
    predicted = cluster(complaints, settings)
    return (*pairwise_scores(predicted, truth), *bcubed_scores(predicted, truth))


def quality(rows: list[Row]) -> dict[str, tuple[list[Row], list[Complaint]]]:
    """Print the figures of each split; returns the splits for tuning."""
    splits = {}
    for split in ("dev", "test"):
        chosen = [row for row in rows if row.split == split]
        splits[split] = (chosen, as_complaints(chosen))
    defaults = LinkSettings()
    print(f"labelled set: {len(rows):,} complaints, {len({r.event_label for r in rows})} events")
    print(f"settings: {defaults}")
    print(f"{'':<28}{'P':>7}{'R':>7}{'F1':>7}{'B3 P':>8}{'B3 R':>7}")
    for name, settings in (
        ("", defaults),
        (" without text", dataclasses.replace(defaults, min_similarity=0.0)),
    ):
        for split, (chosen, complaints) in splits.items():
            events = len({row.event_label for row in chosen})
            scores = judge(chosen, complaints, settings)
            label = f"{split}{name} ({len(chosen)}/{events})"
            print(f"{label:<28}" + "".join(f"{score:>7.3f}" for score in scores))
    return splits


def tune(rows: list[Row], complaints: list[Complaint]) -> None:
    """Search the settings on dev; print the ten best by pairwise F1 and the one chosen:
    the most precise within 0.005 of the best F1 (the F1 is flat near its top, and a
    wrong link costs more than a missed one: a complainant gets the answer to another
    thing, where a missed link costs a second dispatch)."""
    grid = itertools.product(
        (750.0, 1000.0, 1250.0, 1500.0, 1750.0, 2000.0, 2500.0),
        (24.0, 36.0, 48.0, 72.0, 96.0),
        [round(0.02 * step, 2) for step in range(0, 16)],
    )
    results = []
    for radius, window, threshold in grid:
        settings = LinkSettings(radius, window, threshold)
        results.append((judge(rows, complaints, settings)[:3], settings))
    results.sort(key=lambda item: -item[0][2])
    print("best on dev (P, R, F1):")
    for (precision, recall, f1), settings in results[:10]:
        print(f"  {precision:.3f} {recall:.3f} {f1:.3f}  {settings}")
    top = results[0][0][2]
    (precision, recall, f1), chosen = max(
        (item for item in results if item[0][2] >= top - 0.005), key=lambda item: item[0]
    )
    print(f"chosen:\n  {precision:.3f} {recall:.3f} {f1:.3f}  {chosen}")


def throughput(count: int, repeats: int) -> None:
    """Time the words of ``count`` complaints once, and ``cluster`` over them."""
    began = time.perf_counter()
    # a base event brings about 4.2 complaints with its hard negatives; 760 + 40 places
    rows = generate(base_events=round(count / 4.2), extra_areas=760, days=365)[:count]
    print(f"\ngenerated {len(rows):,} complaints in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    complaints = as_complaints(rows)
    spent = time.perf_counter() - began
    print(f"{'tokens() of each':<32}{spent:>8.1f} s  {len(rows) / spent:>10,.0f} complaints/s")
    seconds = []
    for run in range(repeats):
        began = time.perf_counter()
        events = cluster(complaints)
        seconds.append(time.perf_counter() - began)
        linked = len(set(events.values()))
        print(f"run {run + 1}: {seconds[-1]:.2f} s, {linked:,} events")
    median = statistics.median(seconds)
    print(
        f"{'cluster() in memory':<32}{median:>8.2f} s  {len(rows) / median:>10,.0f} complaints/s"
        f"  (median of {repeats})"
    )
    print(f"{'÷ target 15 s':<32}{median / TARGET_SECONDS:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tune", action="store_true", help="search the settings on dev")
    args = parser.parse_args()
    splits = quality(read_csv(OUT))
    if args.tune:
        tune(*splits["dev"])
    throughput(args.complaints, args.repeats)


if __name__ == "__main__":
    main()
