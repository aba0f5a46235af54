"""Generate the labelled set of public environmental complaints that the linking of
complaints into events (``ecohub.complaints.linking``) is tuned and judged on.

    python -m scripts.make_complaints_labelled [--out tests/data/complaints_labelled.csv]

Deterministic: one ``random.Random(SEED)`` drives everything and nothing iterates over a
set or a hash, so the committed CSV is reproduced byte for byte (a test checks it).

How it is made
--------------
1. *Places.* 40 neighbourhoods (片区) in 8 real districts of each of 北京, 石家庄, 郑州, 西安
   and 成都 at approximate real coordinates; each gets six made-up roads and a dozen
   made-up 小区 scattered within 1.6 km of its centre (``scripts/complaints_scenarios.py``).
2. *Scenarios.* A hand-written bank of 49 event scenarios (odour from a chemical plant at
   night, piling at 2 a.m., restaurant fumes, a black and stinking river, manure into a
   ditch, KTV noise, illegal dumping of hazardous waste, a base station on the roof…),
   each with a medium, a kind of place and 4–7 paraphrases in different voices.
3. *Events.* 600 base events, each a scenario (drawn so that the media have the shares
   of ``MEDIUM_SHARES``: air 38 %, noise 36 %, water 11 %, waste 7 %…) at a source (an
   enterprise, a site, a river reach…) in a neighbourhood, starting at a random minute
   between 1 April and 30 September 2024 (night scenarios between 20:00 and 04:00, day
   ones between 07:00 and 19:00, the others between 06:00 and 24:00). A source of the
   same kind in the neighbourhood is reused with probability 0.35 (rivers 0.7), otherwise
   a new one is placed within 1.3 km of the centre, its name drawn from the place's
   templates and its neighbours the 3 nearest 小区 within 1 km (new 小区 150–600 m away
   when there are fewer than 2; a base station's complainants all live in the 小区 on
   whose roof it is). No two events share a source and a medium within 15 days:
   complaints that close about the same thing at the same place are one event, so a base
   event that would is given a new source, and a hard negative that would is dropped.
4. *Hard negatives*, added on purpose, each its own event with its own complainants:
   - *recurrence* (8 % of base events): the same scenario at the same source 21–45 days
     later. Labelled a different event: once the agency has handled a complaint, a
     recurrence weeks later is a new case, handled anew;
   - *other medium* (7 %): another scenario of the same place with a different medium
     within ±6 h (odour and noise from the same chemical plant are two events);
   - *neighbour* (7 %): the same scenario at another source of the same kind 1–3 km away
     (a neighbouring 小区's restaurant, another site), −12 to +24 h (not for muck trucks
     on a road or a base station on a roof);
   - *nearby* (7 %): another scenario with the same medium at another kind of source
     150–700 m away (a KTV and a building site, both noise), −6 to +12 h.
5. *Complainants.* 1–12 per event, drawn with weights 38, 16, 11, 8, 6, 5, 4, 3, 3, 2, 2, 2
   (many singletons, some big clusters). The first reports within 90 minutes of the
   start; each other one within 6 h (55 %), 6–24 h (30 %) or 24–60 h (15 %). A
   complainant lives in one of the source's 3 nearest 小区 (weights 3, 2, 1) and is placed
   within 60 m of it, or (25 %) reports the source's own address and is placed within 40 m
   of the source. Each picks a paraphrase not yet used for the event while any is left,
   names the source by its name or a generic word (even odds), and perturbs it: drops a
   clause (30 %, of three or more), adds a scenario or generic clause (35 %), prefixes
   time-of-day words (30 %, unless it already opens with them), adds their 小区 or the
   source's address (25 %), makes a typical typo (15 %), drops the punctuation (8 %).
6. *Split.* By neighbourhood: 16 of the 40 (shuffled) are ``dev``, 24 ``test``, so every
   event and the hard negatives around it (which share its neighbourhood) are in one
   split, and tuning never sees a test event.

``generate(base_events=…, extra_areas=…, days=…)`` scales the same process for the
throughput benchmark (more events, more neighbourhoods around the same cities, a year).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scripts.complaints_scenarios import (
    BRANDS,
    CITIES,
    GENERIC_EXTRAS,
    OLD_ESTATES,
    PLACES,
    RIVERS,
    ROAD_ENDS,
    ROAD_STEMS,
    SCENARIOS,
    SURNAMES,
    TIME_WORDS,
    TYPOS,
    XQ_ENDS,
    XQ_STEMS,
    Scenario,
)

SEED = 12369
CST = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2024, 4, 1, tzinfo=CST)
DAYS = 183
BASE_EVENTS = 600
# the share of each medium among base events: an assumption after the yearly summaries
# of the national 12369 network, where air and noise are each over a third
MEDIUM_SHARES = {
    "air": 0.38,
    "noise": 0.36,
    "water": 0.11,
    "waste": 0.07,
    "ecology": 0.03,
    "radiation": 0.02,
    "other": 0.03,
}
SCENARIO_WEIGHTS = [
    MEDIUM_SHARES[s.medium] / sum(t.medium == s.medium for t in SCENARIOS) for s in SCENARIOS
]
DEV_SHARE = 0.4
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "complaints_labelled.csv"
COLUMNS = ("id", "event_label", "split", "medium", "longitude", "latitude", "at", "text", "address")
COMPLAINANT_WEIGHTS = (38, 16, 11, 8, 6, 5, 4, 3, 3, 2, 2, 2)  # 1 … 12 complainants
# the kinds of hard negative and the share of base events that get one (docstring, 4.)
HARD_NEGATIVES = (
    ("recurrence", 0.08),
    ("other_medium", 0.07),
    ("neighbour", 0.07),
    ("nearby", 0.07),
)
M_PER_DEG = 111_195.0
# a paraphrase that opens with one of these already says when
TIME_STARTS = ("今天", "昨天", "每天", "这几", "这两", "最近", "晚上", "半夜", "夜里", "大半夜")


@dataclass
class Estate:
    name: str
    lon: float
    lat: float


@dataclass
class Source:
    kind: str
    name: str
    road: str
    number: int
    lon: float
    lat: float
    estates: list[Estate]


@dataclass
class Area:
    city: str
    district: str
    name: str
    lon: float
    lat: float
    roads: list[str]
    estates: list[Estate]
    sources: dict[str, list[Source]] = field(default_factory=dict)
    split: str = "test"


@dataclass
class Event:
    label: str
    kind: str  # base, recurrence, other_medium, neighbour, nearby
    scenario: Scenario
    area: Area
    source: Source
    start: dt.datetime


@dataclass(frozen=True)
class Row:
    id: int
    event_label: str
    split: str
    medium: str
    longitude: float
    latitude: float
    at: dt.datetime
    text: str
    address: str


def offset(lon: float, lat: float, metres: float, bearing: float) -> tuple[float, float]:
    """The point ``metres`` from (lon, lat) towards ``bearing`` (radians from north)."""
    north, east = metres * math.cos(bearing), metres * math.sin(bearing)
    return lon + east / (M_PER_DEG * math.cos(math.radians(lat))), lat + north / M_PER_DEG


def scatter(rng: random.Random, lon: float, lat: float, radius: float) -> tuple[float, float]:
    """A point uniformly distributed on the disc of ``radius`` metres around (lon, lat)."""
    return offset(lon, lat, radius * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi))


def _distance(a_lon: float, a_lat: float, b_lon: float, b_lat: float) -> float:
    east = (b_lon - a_lon) * M_PER_DEG * math.cos(math.radians((a_lat + b_lat) / 2))
    return math.hypot(east, (b_lat - a_lat) * M_PER_DEG)


def _unique_names(
    rng: random.Random, make: Callable[[random.Random], str], count: int
) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = make(rng)
        if name not in names:
            names.append(name)
    return names


def _estate_name(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(OLD_ESTATES)
    return rng.choice(XQ_STEMS) + rng.choice(XQ_ENDS)


def _road_name(rng: random.Random) -> str:
    return rng.choice(ROAD_STEMS) + rng.choice(ROAD_ENDS)


def make_area(
    rng: random.Random, city: str, district: str, name: str, lon: float, lat: float
) -> Area:
    """A neighbourhood with six roads and a dozen 小区 within 1.6 km of its centre."""
    roads = _unique_names(rng, _road_name, 6)
    estates = [
        Estate(estate, *scatter(rng, lon, lat, 1600.0))
        for estate in _unique_names(rng, _estate_name, 12)
    ]
    return Area(city, district, name, lon, lat, roads, estates)


def make_areas(rng: random.Random, extra: int) -> list[Area]:
    """The 40 hand-placed neighbourhoods, then ``extra`` more within 35 km of the cities."""
    areas = [
        make_area(rng, city, district, name, lon, lat)
        for city, districts in CITIES.items()
        for district, name, lon, lat in districts
    ]
    cities = list(CITIES.items())
    for k in range(extra):
        city, districts = cities[k % len(cities)]
        district, name, _, _ = districts[(k // len(cities)) % len(districts)]
        lon = sum(d[2] for d in districts) / len(districts)
        lat = sum(d[3] for d in districts) / len(districts)
        lon, lat = scatter(rng, lon, lat, 35_000.0)
        areas.append(make_area(rng, city, district, f"{name}{k + 2}号片区", lon, lat))
    return areas


def _source_name(rng: random.Random, kind: str, road: str, estate: str) -> str:
    template = rng.choice(PLACES[kind][1])
    return template.format(
        brand=rng.choice(BRANDS),
        surname=rng.choice(SURNAMES),
        road=road,
        river=rng.choice(RIVERS),
        xq=estate,
    )


def new_source(rng: random.Random, area: Area, kind: str, lon: float, lat: float) -> Source:
    """A source of ``kind`` at (lon, lat); its neighbours are the 3 nearest 小区 within
    1 km (new 小区 are built 150–600 m away when there are fewer than 2)."""
    near = sorted(area.estates, key=lambda e: _distance(lon, lat, e.lon, e.lat))
    near = [e for e in near if _distance(lon, lat, e.lon, e.lat) <= 1000.0][:3]
    while len(near) < 2:
        name = _estate_name(rng)
        if any(name == e.name for e in area.estates):
            continue
        estate = Estate(name, *offset(lon, lat, rng.uniform(150, 600), rng.uniform(0, 6.3)))
        area.estates.append(estate)
        near.append(estate)
    if kind == "rooftop":  # the base station is on the complainants' own building
        lon, lat, near = near[0].lon, near[0].lat, near[:1]
    road = rng.choice(area.roads)
    name = _source_name(rng, kind, road, near[0].name)
    source = Source(kind, name, road, rng.randint(1, 300), lon, lat, near)
    area.sources.setdefault(kind, []).append(source)
    return source


def pick_source(rng: random.Random, area: Area, kind: str) -> Source:
    """An existing source of ``kind`` in the area (rivers more often) or a new one."""
    existing = area.sources.get(kind, [])
    reuse = 0.7 if kind == "river" else 0.35
    if existing and rng.random() < reuse:
        return rng.choice(existing)
    return new_source(rng, area, kind, *scatter(rng, area.lon, area.lat, 1300.0))


def start_time(rng: random.Random, day: dt.datetime, when: str) -> dt.datetime:
    """The start of an event on ``day``: night 20:00–04:00, day 07:00–19:00, any 06–24."""
    if when == "night":
        hour = rng.uniform(20, 28)
    elif when == "day":
        hour = rng.uniform(7, 19)
    else:
        hour = rng.uniform(6, 24)
    return day + dt.timedelta(minutes=round(hour * 60))


def hard_negative(rng: random.Random, kind: str, base: Event, label: str) -> Event | None:
    """The hard negative of ``kind`` around ``base``, or None when the place has none."""
    source, scenario, area = base.source, base.scenario, base.area
    if kind == "recurrence":
        start = base.start + dt.timedelta(days=rng.uniform(21, 45))
        return Event(label, kind, scenario, area, source, _minute(start))
    if kind == "other_medium":
        others = [s for s in SCENARIOS if s.place == scenario.place and s.medium != scenario.medium]
        if not others:
            return None
        start = base.start + dt.timedelta(hours=rng.uniform(-6, 6))
        return Event(label, kind, rng.choice(others), area, source, _minute(start))
    if kind == "neighbour":
        if scenario.place in ("rooftop", "road"):
            return None
        lon, lat = offset(source.lon, source.lat, rng.uniform(1000, 3000), rng.uniform(0, 6.3))
        other = new_source(rng, area, scenario.place, lon, lat)
        start = base.start + dt.timedelta(hours=rng.uniform(-12, 24))
        return Event(label, kind, scenario, area, other, _minute(start))
    others = [s for s in SCENARIOS if s.medium == scenario.medium and s.place != scenario.place]
    chosen = rng.choice(others)
    lon, lat = offset(source.lon, source.lat, rng.uniform(150, 700), rng.uniform(0, 6.3))
    other = new_source(rng, area, chosen.place, lon, lat)
    start = base.start + dt.timedelta(hours=rng.uniform(-6, 12))
    return Event(label, kind, chosen, area, other, _minute(start))


def clashes(events: list[Event], candidate: Event) -> bool:
    """True when an event of the same medium at the same source starts within 15 days
    of ``candidate``: complaints about the same thing at the same place that close in
    time are one event, so the generator never makes two (a recurrence comes 21 days or
    more later)."""
    return any(
        event.source is candidate.source
        and event.scenario.medium == candidate.scenario.medium
        and abs(event.start - candidate.start) < dt.timedelta(days=15)
        for event in events
    )


def _minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def plan_events(rng: random.Random, areas: list[Area], count: int, days: int) -> list[Event]:
    """``count`` base events over ``days`` days, each followed by its hard negatives."""
    events: list[Event] = []
    by_source: dict[int, list[Event]] = {}  # id(source) → its events, for clashes()
    width = max(4, len(str(count * 2)))

    def accept(event: Event) -> bool:
        if clashes(by_source.get(id(event.source), []), event):
            return False
        events.append(event)
        by_source.setdefault(id(event.source), []).append(event)
        return True

    for _ in range(count):
        area = rng.choice(areas)
        scenario = rng.choices(SCENARIOS, weights=SCENARIO_WEIGHTS)[0]
        source = pick_source(rng, area, scenario.place)
        start = start_time(rng, START + dt.timedelta(days=rng.randrange(days)), scenario.when)
        base = Event(f"E{len(events) + 1:0{width}d}", "base", scenario, area, source, start)
        if not accept(base):
            spot = scatter(rng, area.lon, area.lat, 1300.0)
            base.source = new_source(rng, area, scenario.place, *spot)
            accept(base)
        for kind, share in HARD_NEGATIVES:
            if rng.random() < share:
                label = f"E{len(events) + 1:0{width}d}"
                negative = hard_negative(rng, kind, base, label)
                if negative is not None:
                    accept(negative)
    return events


def _delay(rng: random.Random, first: bool) -> dt.timedelta:
    """When a complainant reports after the event's start."""
    if first:
        return dt.timedelta(minutes=rng.uniform(0, 90))
    draw = rng.random()
    if draw < 0.55:
        return dt.timedelta(hours=rng.uniform(0, 6))
    if draw < 0.85:
        return dt.timedelta(hours=rng.uniform(6, 24))
    return dt.timedelta(hours=rng.uniform(24, 60))


def _clauses(text: str) -> list[str]:
    return [piece for piece in re.split(r"(?<=[，。！？；])", text) if piece]


def perturb(rng: random.Random, text: str, scenario: Scenario, home: str, address: str) -> str:
    """One complainant's changes to a paraphrase (rates in the module docstring)."""
    clauses = _clauses(text)
    if len(clauses) >= 3 and rng.random() < 0.3:
        del clauses[rng.randrange(1, len(clauses))]
    text = "".join(clauses)
    if rng.random() < 0.35:
        pool = scenario.extras if rng.random() < 0.6 else GENERIC_EXTRAS
        text = text.rstrip("，。！？； ") + "，" + rng.choice(pool) + rng.choice(("。", "！", ""))
    if rng.random() < 0.3 and not text.startswith(TIME_STARTS):
        text = rng.choice(TIME_WORDS[scenario.when]) + rng.choice(("，", "", " ")) + text
    if rng.random() < 0.25:
        if rng.random() < 0.5:
            text = f"我是{home}的居民，" + text
        else:
            text = text.rstrip() + f" 地址：{address}"
    if rng.random() < 0.15:
        present = [(right, wrong) for right, wrong in TYPOS if right in text]
        if present:
            right, wrong = rng.choice(present)
            text = text.replace(right, wrong, 1)
    if rng.random() < 0.08:
        text = re.sub(r"[，。！？；：、]+", " ", text).strip()
    return text


def complaints_of(rng: random.Random, event: Event) -> list[tuple[dt.datetime, Row]]:
    """The event's complainants: (time, row without id and split)."""
    count = rng.choices(range(1, 13), weights=COMPLAINANT_WEIGHTS)[0]
    source, area, scenario = event.source, event.area, event.scenario
    unused = list(range(len(scenario.texts)))
    place = f"{area.city}{area.district}"
    made = []
    for index in range(count):
        estate = rng.choices(source.estates, weights=(3, 2, 1)[: len(source.estates)])[0]
        home = f"{place}{estate.name}{rng.randint(1, 24)}号楼"
        at_source = f"{place}{source.road}{source.number}号"
        if rng.random() < 0.25:
            lon, lat = scatter(rng, source.lon, source.lat, 40.0)
            address = at_source + rng.choice(("", f"（{source.name}）", "附近"))
        else:
            lon, lat = scatter(rng, estate.lon, estate.lat, 60.0)
            address = home
        pick = rng.choice(unused) if unused else rng.randrange(len(scenario.texts))
        if pick in unused:
            unused.remove(pick)
        generic = rng.choice(PLACES[scenario.place][0])
        text = scenario.texts[pick].format(
            src=source.name if rng.random() < 0.5 else generic,
            road=source.road,
            xq=estate.name,
        )
        text = perturb(rng, text, scenario, estate.name, at_source)
        at = _minute(event.start + _delay(rng, index == 0))
        row = Row(0, event.label, "", scenario.medium, lon, lat, at, text, address)
        made.append((at, row))
    return made


def generate(
    seed: int = SEED, *, base_events: int = BASE_EVENTS, extra_areas: int = 0, days: int = DAYS
) -> list[Row]:
    """The labelled complaints, ids in order of time (then of generation)."""
    rng = random.Random(seed)
    areas = make_areas(rng, extra_areas)
    events = plan_events(rng, areas, base_events, days)
    order = list(range(len(areas)))
    rng.shuffle(order)
    for index in order[: round(DEV_SHARE * len(areas))]:
        areas[index].split = "dev"
    made: list[tuple[dt.datetime, int, str, Row]] = []
    for event in events:
        for at, row in complaints_of(rng, event):
            made.append((at, len(made), event.area.split, row))
    made.sort(key=lambda item: (item[0], item[1]))
    return [
        Row(number, row.event_label, split, row.medium, row.longitude, row.latitude, row.at,
            row.text, row.address)
        for number, (_, _, split, row) in enumerate(made, start=1)
    ]  # fmt: skip


def header(rows: list[Row]) -> list[str]:
    """The '#' lines that open the CSV: what it is, how it was made, its size."""
    events = {row.event_label for row in rows}
    by_split = {
        split: (
            sum(row.split == split for row in rows),
            len({row.event_label for row in rows if row.split == split}),
        )
        for split in ("dev", "test")
    }
    sizes: dict[str, int] = {}
    for row in rows:
        sizes[row.event_label] = sizes.get(row.event_label, 0) + 1
    singletons = sum(1 for size in sizes.values() if size == 1)
    return [
        "Labelled public environmental complaints (12369), synthetic: made by",
        "scripts/make_complaints_labelled.py (seed 12369; its docstring says exactly how) from",
        f"a hand-written bank of {len(SCENARIOS)} scenarios with paraphrases in citizens' voices",
        "(scripts/complaints_scenarios.py). All names and addresses are made up; coordinates",
        "are WGS84 in real districts of 北京, 石家庄, 郑州, 西安 and 成都.",
        "event_label: complaints about the same thing share it. A recurrence of the same",
        "thing at the same place weeks later is a different event (handled anew), and so is",
        "another medium at the same place (odour and noise of one plant). Hard negatives on",
        "purpose: such recurrences 21-45 days later, another medium at the same source, the",
        "same scenario at another source 1-3 km away, the same medium at another kind of",
        "source 150-700 m away.",
        "split: by neighbourhood, dev (tuning) and test (reported figures).",
        f"{len(rows)} complaints, {len(events)} events ({singletons} with one complaint);"
        f" dev {by_split['dev'][0]} complaints / {by_split['dev'][1]} events,"
        f" test {by_split['test'][0]} / {by_split['test'][1]}.",
    ]


def write_csv(rows: list[Row], path: Path) -> None:
    """The rows as CSV (UTF-8, '\\n' line ends) after the '#' header lines."""
    out = io.StringIO()
    for line in header(rows):
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            (row.id, row.event_label, row.split, row.medium, f"{row.longitude:.6f}",
             f"{row.latitude:.6f}", row.at.isoformat(), row.text, row.address)
        )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")


def read_csv(path: Path = OUT) -> list[Row]:
    """The rows of a CSV written by :func:`write_csv`."""
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith("#")
    ]
    return [
        Row(int(r["id"]), r["event_label"], r["split"], r["medium"], float(r["longitude"]),
            float(r["latitude"]), dt.datetime.fromisoformat(r["at"]), r["text"], r["address"])
        for r in csv.DictReader(lines)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = generate()
    write_csv(rows, args.out)
    print(f"{len(rows)} complaints, {len({r.event_label for r in rows})} events → {args.out}")


if __name__ == "__main__":
    main()
