"""Linking public complaints (12369) about the same thing into one event.

When a chemical plant vents at night, a dozen neighbours call the hotline within a day,
each in their own words and from their own home. The agency handles that as one event:
one dispatch, one reply to all. A complaint is linked to an earlier one when all three
hold:

1. **the same medium** (air, water, noise…): odour and noise from the same plant are two
   events, handled by different teams against different standards;
2. **near in space and time**: the great-circle (haversine) distance between the two
   reported positions is at most ``radius_m`` and their times at most ``window_hours``
   apart. People report from where they live, a few hundred metres from the source;
3. **similar words**: the text similarity is at least ``min_similarity``.

A complaint joins the event of the earlier complaint that passes all three and is most
similar to it (ties: the nearer, then the closer in time); one that matches nothing
starts a new event. The link is single-link: a complaint may join an event through any
of its complaints, so a long event chains along as people keep calling.

**Text similarity** is the cosine similarity of two sets of features, |A ∩ B| /
√(|A|·|B|), where a complaint's features are the characters and the character bigrams of
its words (:func:`tokens`: jieba's segmentation without punctuation and stopwords)
written one after the other. Why this and not something cleverer:

- it explains itself: the words two complaints share (:func:`shared`: 化工厂, 刺鼻,
  夜间) beside "230 m away, 3.5 h earlier, similarity 0.21" is something a case handler
  can check;
- the words that matter (the source: 化工厂, 工地, 饭店; what is wrong: 刺鼻, 打桩,
  油烟; the enterprise's name) are what neighbours share, and the stopword list
  (``data/stopwords.txt``) removes what every complaint says (投诉, 希望, 尽快处理);
- characters and bigrams rather than words, because a Chinese character carries meaning
  (臭, 吵, 烟, 灰, 水) and because they do not depend on how jieba cuts what its
  dictionary lacks: an enterprise's name, 偷排 as 偷 + 排, 扬尘 as 扬 + 尘, 噪音 and
  噪声 (sharing 噪), 刺鼻 and 刺鼻子. Words alone, and words with bigrams, linked no
  better on the labelled set;
- it needs no model and no corpus statistics: IDF weights learnt from the complaints
  being linked were tried and did no better, while making a link depend on what else
  had been seeded into the linker;
- sets, not bags: a long complaint repeating 臭 five times is not more like another.

Medium, space and time do most of the work: on the labelled set
(``tests/data/complaints_labelled.csv``, scripts/make_complaints_labelled.py) they alone
reach nearly the F1 of the whole rule. The text is a veto against linking different
things of the same medium within a kilometre or two and a day or two (a KTV and a
building site, a restaurant and a coal yard), and the threshold is low because
neighbours describing one thing often share few words ("半夜打桩，还让不让人睡了" and
"工地机器轰鸣到后半夜"): it buys precision at the cost of some recall, so a plain measure
is enough and a stronger one would mostly split events.

**Candidates** come from a grid keyed by medium: rows of ``radius_m`` of latitude, each
row cut into columns at least ``radius_m`` wide everywhere in it and in its neighbours,
so every complaint within the radius lies in the 3×3 cells around the new one; the cells
keep their complaints, and only those within the time window are compared. The grid
assumes no event straddles the ±180° meridian.

This module is pure: no database, no settings; its only I/O reads its stopword list.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import jieba

MEDIA = ("air", "water", "noise", "waste", "radiation", "ecology", "other")
EARTH_RADIUS_M = 6_371_008.8  # the mean radius (IUGG)
M_PER_DEG_LAT = EARTH_RADIUS_M * math.pi / 180


@dataclass(frozen=True)
class Complaint:
    """What linking needs of a complaint: its medium, where, when, and its words."""

    id: int
    medium: str  # one of MEDIA
    longitude: float  # WGS84 degrees
    latitude: float
    at: dt.datetime  # timezone-aware, when the thing was observed (or reported)
    tokens: tuple[str, ...]  # tokens(text)


@dataclass(frozen=True)
class LinkSettings:
    """The thresholds of a link. The defaults are tuned on the dev split of the labelled
    set (``python -m benchmarks.complaints_linking --tune``): the most precise of the
    settings within 0.005 of the best pairwise F1, since a wrong link gives a citizen
    the answer to another thing while a missed one costs a second dispatch."""

    radius_m: float = 1250.0
    """At most this far apart (haversine, metres): neighbours on either side of the same
    plant, each up to a kilometre from it, may be this far from each other."""
    window_hours: float = 48.0
    """At most this far apart in time (hours, either way): people keep calling for days."""
    min_similarity: float = 0.08
    """At least this text similarity (the cosine of the feature sets, 0–1)."""


@dataclass(frozen=True)
class Match:
    """Why a complaint joins an event: the earlier complaint it is most like, and how
    like, how far and how long before or after."""

    event_id: int
    complaint_id: int  # the earlier complaint it matched best
    score: float  # the text similarity
    distance_m: float
    hours: float  # absolute time difference


@lru_cache(maxsize=1)
def _ready() -> frozenset[str]:
    """Load jieba's dictionary, quietly (it logs its progress to stderr), and read the
    stopwords; once (jieba.initialize is itself locked and idempotent)."""
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    text = (files("ecohub.complaints") / "data" / "stopwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _is_word(token: str) -> bool:
    """False for punctuation, symbols and whitespace."""
    return any(unicodedata.category(char)[0] in "LN" for char in token)


def tokens(text: str) -> tuple[str, ...]:
    """The words of a complaint: jieba's precise segmentation, NFKC-normalised (full-width
    letters and digits become ASCII) and lower-cased, without punctuation, whitespace and
    stopwords. Deterministic; no word holds whitespace. Without jieba's HMM for unknown
    words: it costs a third more time and changes no link, the similarity reading
    characters (the words serve the stopwords and the explanation, :func:`shared`)."""
    stop = _ready()
    normalised = unicodedata.normalize("NFKC", text).lower()
    return tuple(
        word
        for word in (token.strip() for token in jieba.lcut(normalised, HMM=False))
        if word and word not in stop and _is_word(word)
    )


@lru_cache(maxsize=8192)
def features(words: tuple[str, ...]) -> frozenset[str]:
    """The characters of the words and the character bigrams of the words written one
    after the other (so 偷排 is found whether jieba cut it as 偷排 or 偷 + 排)."""
    joined = "".join(words)
    found = set(joined)
    found.update(map(str.__add__, joined, joined[1:]))
    return frozenset(found)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """The cosine similarity of two feature sets: |A ∩ B| / √(|A|·|B|), 0 when empty."""
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def shared(a: Complaint, b: Complaint) -> tuple[str, ...]:
    """The words two complaints share, in ``a``'s order: what to show beside a link."""
    theirs = set(b.tokens)
    return tuple(dict.fromkeys(word for word in a.tokens if word in theirs))


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """The great-circle distance in metres between two WGS84 points on the mean sphere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _seconds(at: dt.datetime) -> float:
    """POSIX seconds of an aware time (a naive one would silently be read as local)."""
    if at.utcoffset() is None:
        raise ValueError(f"complaint time without a time zone: {at.isoformat()}")
    return at.timestamp()


@dataclass(frozen=True, slots=True)
class _Entry:
    seconds: float
    longitude: float
    latitude: float
    complaint_id: int
    event_id: int
    features: frozenset[str]


@dataclass(slots=True)
class _Cell:
    """The complaints of one grid cell in order of time (``seconds`` beside them, for
    bisection), so a match reads only those within the window however long the stream."""

    seconds: list[float]
    entries: list[_Entry]

    def add(self, entry: _Entry) -> None:
        if not self.seconds or entry.seconds >= self.seconds[-1]:
            self.seconds.append(entry.seconds)
            self.entries.append(entry)
        else:
            at = bisect_right(self.seconds, entry.seconds)
            self.seconds.insert(at, entry.seconds)
            self.entries.insert(at, entry)

    def between(self, start: float, end: float) -> list[_Entry]:
        return self.entries[bisect_left(self.seconds, start) : bisect_right(self.seconds, end)]

    def drop_before(self, horizon: float) -> int:
        cut = bisect_left(self.seconds, horizon)
        del self.seconds[:cut], self.entries[:cut]
        return cut


class Linker:
    """The complaints seen so far, on a grid by medium, and the best match of a new one.

    ``match`` then ``add``, one complaint at a time, in any order of time; ``forget_before``
    drops what can no longer match, to bound memory over a long stream."""

    def __init__(self, settings: LinkSettings = LinkSettings()) -> None:
        self.settings = settings
        self._lat_step = settings.radius_m / M_PER_DEG_LAT  # degrees of a row
        self._lon_steps: dict[int, float] = {}
        self._cells: dict[tuple[str, int, int], _Cell] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _lon_step(self, row: int) -> float:
        """The width in degrees of the row's columns: at least ``radius_m`` at the
        latitude one row beyond its poleward edge, so a point within the radius of a
        point in a neighbouring row is at most one column away."""
        step = self._lon_steps.get(row)
        if step is None:
            edge = max(abs(row), abs(row + 1)) * self._lat_step + self._lat_step
            step = self._lat_step / max(math.cos(math.radians(min(edge, 89.9))), 1e-3) * 1.001
            self._lon_steps[row] = step
        return step

    def _candidates(self, complaint: Complaint, seconds: float) -> Iterator[_Entry]:
        """The complaints of the same medium in the 3×3 cells around ``complaint`` and
        within the window of ``seconds``."""
        window = self.settings.window_hours * 3600.0
        row = math.floor(complaint.latitude / self._lat_step)
        for r in (row - 1, row, row + 1):
            column = math.floor(complaint.longitude / self._lon_step(r))
            for c in (column - 1, column, column + 1):
                cell = self._cells.get((complaint.medium, r, c))
                if cell is not None:
                    yield from cell.between(seconds - window, seconds + window)

    def match(self, complaint: Complaint) -> Match | None:
        """The best earlier complaint passing every threshold, or None."""
        radius, least = self.settings.radius_m, self.settings.min_similarity
        mine = features(complaint.tokens)
        seconds = _seconds(complaint.at)
        best: tuple[float, float, float, int] | None = None
        found: _Entry | None = None
        for entry in self._candidates(complaint, seconds):
            score = similarity(mine, entry.features)
            if score < least:
                continue
            distance = haversine_m(
                complaint.longitude, complaint.latitude, entry.longitude, entry.latitude
            )
            if distance > radius:
                continue
            rank = (-score, distance, abs(entry.seconds - seconds), entry.complaint_id)
            if best is None or rank < best:
                best, found = rank, entry
        if best is None or found is None:
            return None
        return Match(found.event_id, found.complaint_id, -best[0], best[1], best[2] / 3600.0)

    def add(self, complaint: Complaint, event_id: int) -> None:
        """Keep ``complaint`` as part of event ``event_id`` for later matches."""
        entry = _Entry(
            _seconds(complaint.at),
            complaint.longitude,
            complaint.latitude,
            complaint.id,
            event_id,
            features(complaint.tokens),
        )
        row = math.floor(complaint.latitude / self._lat_step)
        key = (complaint.medium, row, math.floor(complaint.longitude / self._lon_step(row)))
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell([], [])
        cell.add(entry)
        self._count += 1

    def forget_before(self, at: dt.datetime) -> int:
        """Drop the complaints older than ``at`` minus the window (no complaint at or
        after ``at`` can match them); returns how many were dropped."""
        horizon = _seconds(at) - self.settings.window_hours * 3600.0
        dropped = 0
        for key in list(self._cells):
            cell = self._cells[key]
            dropped += cell.drop_before(horizon)
            if not cell.seconds:
                del self._cells[key]
        self._count -= dropped
        return dropped


def cluster(
    complaints: Iterable[Complaint], settings: LinkSettings = LinkSettings()
) -> dict[int, int]:
    """Complaint id → event id, linking in order of time (then id); a complaint that
    matches nothing starts an event whose id is its own."""
    ordered = sorted(complaints, key=lambda c: (_seconds(c.at), c.id))
    linker = Linker(settings)
    events: dict[int, int] = {}
    window = dt.timedelta(hours=settings.window_hours)
    swept: dt.datetime | None = None
    for complaint in ordered:
        if swept is None or complaint.at - swept > window:
            linker.forget_before(complaint.at)
            swept = complaint.at
        found = linker.match(complaint)
        event = complaint.id if found is None else found.event_id
        linker.add(complaint, event)
        events[complaint.id] = event
    return events
