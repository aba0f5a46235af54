"""The double-random draw (双随机、一公开): inspection objects drawn at random from the object
directory, an inspection team drawn at random from the inspector directory for each, and
everything needed to repeat the draw published with it.

Sources (found with the project's page search; the official texts of both documents
were not among the stored pages, so what follows is what reprints, news reports and
local implementing plans say of them):

- 国办发〔2015〕58号《国务院办公厅关于推广随机抽查规范事中事后监管的通知》: a reprint
  (lanzhou.baogaosu.com) gives its principles: random inspection to end arbitrary
  inspection (检查任性), with 随机抽查事项公开、程序公开、结果公开. Reprints and later
  provincial notices describe its mechanism as two directories, a 检查对象名录库 and a
  执法检查人员名录库, objects drawn from the first and inspectors chosen at random from
  the second (随机抽取检查对象、随机选派执法检查人员), and results published
  (及时公布查处结果). A local rule citing it (crsrw.com) draws 2 or more inspectors per
  object and says an inspector with an interest in the object shall withdraw
  (检查人员与抽查对象有利害关系的，应当依法回避). The text of 58号's own clauses on
  回避 and on electronic, traceable draws was not found.
- 环办〔2015〕88号《关于在污染源日常环境监管领域推广随机抽查制度的实施方案》: its text
  was not found. Provincial plans implementing it were: all pollution sources of a
  region are drawn from, split into 重点排污单位, 一般排污单位 and 特殊监管对象
  (Shandong's plan, zhb.org.cn 2016-02-01). Guangdong's plan (新华社 2015-12-20,
  rmzxb.com.cn): each quarter a city bureau draws at least 5 % and a county bureau at
  least 25 % of its 重点排污单位 (every key unit once a year), general units at least
  1:5 (city) or 1:10 (county) per inspector on staff and year, draws by 摇号 and the list
  kept secret until the inspection. Local figures that follow the same pattern: Chizhou
  2019 (each quarter 25 % of key, 15 % of special, 5 % of general units), Fuzhou Minqing
  (special sources every quarter, key sources at least 25 %), Yicheng 2024 (key at least
  25 % and general at least 2 % a quarter, every special object at least once a year).
  Fuzhou defines the inspector directory as the 在编在岗 enforcement officers holding an
  enforcement qualification (具有执法资格), kept up to date. The national proportions
  of 88号 itself could not be confirmed from its text.

So ``DrawRules.rates`` holds one share per category (e.g. ``{"key": 0.25, "special":
0.15, "general": 0.05}``), the plan's proportions being the service's to choose;
``qualification`` stands for 执法资格 or a field speciality; ``conflicts`` are declared
回避; excluding the previous team and ``max_per_inspector`` are local practice, not
found in the sources above.

How the draw is made, so that anyone holding the published inputs and seed can repeat it
(``verify``):

1. Inputs are put in canonical order: objects and inspectors by code, categories by
   name. Duplicate codes are refused. Input order never matters.
2. ``inputs_digest`` is the SHA-256 of a canonical JSON of every input (objects,
   inspectors, rules, conflicts, previous teams; sets sorted, duplicates removed).
3. Random numbers are the raw 64-bit words of PCG64 seeded with ``seed``
   (``numpy.random.Generator(PCG64(seed)).bit_generator.random_raw``). NumPy promises
   the same stream from a ``Generator`` method only on the same build of numpy
   (numpy.org, "Compatibility policy"), so the integers below are made here from the
   bit generator's words: an integer uniform on [0, n) is ``w % n`` for the first word
   ``w`` below ``2**64 - 2**64 % n`` (rejection, no modulo bias).
4. For each category with a rate, in name order, ``round(rate × n)`` of its n objects
   are drawn without replacement by a partial Fisher–Yates shuffle of the objects in
   code order. The rounding is half up (四舍五入) on the decimal value of the rate as
   written (``Decimal(repr(rate))``), so 5 % of 10 is 1, 25 % of 6 (1.5) is 2 and 5 % of
   9 (0.45) is 0. A category without a rate is not drawn.
5. For each drawn object, in drawn order, the team is drawn the same way from the
   eligible inspectors in code order: of the object's region (unless ``cross_region``;
   with ``region_match`` prefix, of a region covering it: see :func:`in_region`),
   holding ``qualification`` when set, not in a declared conflict with the object, not
   on its previous team, and with fewer than ``max_per_inspector`` picks so far in this
   draw. With fewer eligible than ``team_size`` the object is unstaffed, with a reason
   naming who each filter removed, and no random number is used for it.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any, TypeVar

from numpy.random import PCG64, Generator

from ecohub.registry.regions import region_prefix

# Changes with any change to the procedure above, so old and new draws never share digests.
ALGORITHM = "ecohub.supervision.draw/1"
_WORD = 1 << 64
_T = TypeVar("_T")
_Entry = TypeVar("_Entry", "InspectionObject", "Inspector")


@dataclass(frozen=True)
class InspectionObject:
    """One entry of the object directory (检查对象名录库)."""

    code: str
    region: str
    category: str  # e.g. key (重点排污单位), general (一般排污单位), special (特殊监管对象)


@dataclass(frozen=True)
class Inspector:
    """One entry of the inspector directory (执法检查人员名录库)."""

    code: str
    region: str
    qualifications: frozenset[str] = frozenset()


REGION_MATCHES = ("exact", "prefix")


@dataclass(frozen=True)
class DrawRules:
    rates: Mapping[str, float]  # share of each category's objects drawn, 0..1
    team_size: int = 2
    cross_region: bool = False  # False: only inspectors of the object's region
    qualification: str | None = None  # required of every team member when set
    max_per_inspector: int | None = None
    # How an inspector's region must match the object's (without cross_region): "exact",
    # the same code; "prefix", the inspector's region covers the object's (GB/T 2260: a
    # city's 310100 covers its district 310115, a province's 310000 all of 31…), as the
    # risk ranking filters regions.
    region_match: str = "exact"


@dataclass(frozen=True)
class Pick:
    object_code: str
    inspectors: tuple[str, ...]  # in the order drawn


@dataclass(frozen=True)
class DrawResult:
    seed: int
    inputs_digest: str
    picks: tuple[Pick, ...]  # in the order drawn
    unstaffed: tuple[tuple[str, str], ...]  # (object, reason), in the order drawn


@dataclass(frozen=True)
class _Inputs:
    """Every input in canonical order, validated."""

    objects: tuple[InspectionObject, ...]
    inspectors: tuple[Inspector, ...]
    rules: DrawRules
    conflicts: frozenset[tuple[str, str]]
    last_teams: dict[str, frozenset[str]]


def new_seed() -> int:
    """A fresh seed of 63 bits from the operating system's CSPRNG, to record and publish."""
    return secrets.randbits(63)


def seed_from(entropy: bytes, digest: str) -> int:
    """The seed of a draw made from ``entropy`` (bytes of the operating system's CSPRNG,
    recorded and published) and its ``inputs_digest``: the first 63 bits of
    SHA-256(entropy ‖ digest as ASCII). Anyone can recompute it; the agency cannot choose
    it without drawing anew, and every stored draw is numbered and listed."""
    if len(entropy) < 16:
        raise ValueError("entropy: at least 16 bytes")
    word = hashlib.sha256(entropy + digest.encode("ascii")).digest()[:8]
    return int.from_bytes(word, "big") >> 1


def conflicts_digest(conflicts: Iterable[tuple[str, str]]) -> str:
    """SHA-256 (hex) of the declared (inspector code, object) conflicts as canonical JSON
    (sorted, duplicates removed): published instead of the pairs themselves."""
    pairs = sorted({(str(who), str(what)) for who, what in conflicts})
    text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def drawn_objects(objects: Iterable[InspectionObject], rules: DrawRules, seed: int) -> list[str]:
    """The codes of the objects a draw picks, in the order drawn (step 4): the part of a
    draw anyone can repeat without the conflicts, which only the teams depend on."""
    inputs = _canonical(objects, (), rules, (), None)
    return [obj.code for obj in _draw_objects(inputs, _Stream(seed))]


def _validate_rules(rules: DrawRules) -> None:
    for category, rate in rules.rates.items():
        if not isinstance(category, str):
            raise ValueError(f"category {category!r} must be a string")
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ValueError(f"rate of category {category!r} must be a number, not {rate!r}")
        if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
            raise ValueError(f"rate of category {category!r} must be in [0, 1], not {rate!r}")
    if isinstance(rules.team_size, bool) or not isinstance(rules.team_size, int):
        raise ValueError(f"team_size must be an integer, not {rules.team_size!r}")
    if rules.team_size < 1:
        raise ValueError(f"team_size must be at least 1, not {rules.team_size}")
    limit = rules.max_per_inspector
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_per_inspector must be None or at least 1, not {limit!r}")
    if rules.region_match not in REGION_MATCHES:
        raise ValueError(f"region_match must be exact or prefix, not {rules.region_match!r}")


def _unique_by_code(items: Iterable[_Entry], what: str) -> tuple[_Entry, ...]:
    ordered = sorted(items, key=lambda item: item.code)
    for before, after in pairwise(ordered):
        if before.code == after.code:
            raise ValueError(f"{what} code {after.code!r} appears more than once")
    return tuple(ordered)


def _canonical(
    objects: Iterable[InspectionObject],
    inspectors: Iterable[Inspector],
    rules: DrawRules,
    conflicts: Iterable[tuple[str, str]],
    last_teams: Mapping[str, Iterable[str]] | None,
) -> _Inputs:
    _validate_rules(rules)
    return _Inputs(
        objects=_unique_by_code(objects, "object"),
        inspectors=_unique_by_code(inspectors, "inspector"),
        rules=rules,
        conflicts=frozenset((str(who), str(what)) for who, what in conflicts),
        last_teams={obj: frozenset(team) for obj, team in (last_teams or {}).items()},
    )


def _digest(inputs: _Inputs) -> str:
    rules = inputs.rules
    document: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "objects": [[o.code, o.region, o.category] for o in inputs.objects],
        "inspectors": [[i.code, i.region, sorted(i.qualifications)] for i in inputs.inspectors],
        "rules": {
            "rates": {category: repr(float(rate)) for category, rate in rules.rates.items()},
            "team_size": rules.team_size,
            "cross_region": bool(rules.cross_region),
            "qualification": rules.qualification,
            "max_per_inspector": rules.max_per_inspector,
            # Only when not the default, so that earlier draws keep their digests.
            **({"region_match": rules.region_match} if rules.region_match != "exact" else {}),
        },
        "conflicts": sorted(inputs.conflicts),
        "last_teams": {obj: sorted(team) for obj, team in inputs.last_teams.items()},
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def inputs_digest(
    objects: Iterable[InspectionObject],
    inspectors: Iterable[Inspector],
    rules: DrawRules,
    conflicts: Iterable[tuple[str, str]] = (),
    last_teams: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """SHA-256 (hex) of a canonical JSON of every input of a draw; the order of the inputs,
    and duplicates among conflicts and within a previous team, do not change it."""
    return _digest(_canonical(objects, inspectors, rules, conflicts, last_teams))


def draw_count(rate: float, n: int) -> int:
    """How many of a category's ``n`` objects are drawn: ``rate × n`` rounded half up on
    the decimal value of the rate as written (5 % of 10 → 1, 25 % of 6 → 2)."""
    exact = Decimal(repr(float(rate))) * n
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class _Stream:
    """Uniform integers from the raw 64-bit words of PCG64 (step 3 of the module docstring)."""

    def __init__(self, seed: int) -> None:
        self._bits = Generator(PCG64(seed)).bit_generator

    def below(self, n: int) -> int:
        limit = _WORD - _WORD % n
        while True:
            word = int(self._bits.random_raw())
            if word < limit:
                return word % n

    def sample(self, items: Sequence[_T], k: int) -> list[_T]:
        """``k`` of ``items`` without replacement, by a partial Fisher–Yates shuffle."""
        pool = list(items)
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


def _draw_objects(inputs: _Inputs, stream: _Stream) -> list[InspectionObject]:
    by_category: dict[str, list[InspectionObject]] = {}
    for obj in inputs.objects:
        by_category.setdefault(obj.category, []).append(obj)
    drawn: list[InspectionObject] = []
    for category in sorted(inputs.rules.rates):
        members = by_category.get(category, [])
        drawn.extend(stream.sample(members, draw_count(inputs.rules.rates[category], len(members))))
    return drawn


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def in_region(inspector: Inspector, obj: InspectionObject, rules: DrawRules) -> bool:
    """Whether ``inspector`` may inspect ``obj`` by region under ``rules``: any region with
    ``cross_region``; else the same code (``exact``) or a region covering the object's
    (``prefix``: the object's code starts with the inspector's GB/T 2260 prefix)."""
    if rules.cross_region:
        return True
    if rules.region_match == "prefix":
        return obj.region.startswith(region_prefix(inspector.region))
    return inspector.region == obj.region


def _eligible(
    obj: InspectionObject, inputs: _Inputs, load: Mapping[str, int]
) -> tuple[list[Inspector], str]:
    """The inspectors eligible for ``obj`` in code order, and the reason text: how many are
    eligible and whom each filter removed (each inspector counted under the first)."""
    rules = inputs.rules
    previous = inputs.last_teams.get(obj.code, frozenset())
    need = rules.qualification
    cap = rules.max_per_inspector
    filters: list[tuple[str, str, Callable[[Inspector], bool]]] = [
        (
            f"without {need!r}",
            f"without {need!r}",
            lambda i: need is None or need in i.qualifications,
        ),
        ("conflict", "conflicts", lambda i: (i.code, obj.code) not in inputs.conflicts),
        ("previous-team exclusion", "previous-team exclusions", lambda i: i.code not in previous),
        (
            f"at the limit of {cap}",
            f"at the limit of {cap}",
            lambda i: cap is None or load[i.code] < cap,
        ),
    ]
    pool = [i for i in inputs.inspectors if in_region(i, obj, rules)]
    removed: list[str] = []
    for singular, plural, keep in filters:
        out = [i.code for i in pool if not keep(i)]
        pool = [i for i in pool if keep(i)]
        if out:
            removed.append(f"{_plural(len(out), singular, plural)} ({', '.join(out)})")
    if rules.cross_region:
        where = "in any region"
    elif rules.region_match == "prefix":
        where = f"covering region {obj.region}"
    else:
        where = f"of region {obj.region}"
    reason = f"{_plural(len(pool), 'eligible inspector')} {where} for a team of {rules.team_size}"
    if removed:
        last = removed.pop()
        reason += " after " + (f"{', '.join(removed)} and {last}" if removed else last)
    return pool, reason


def draw(
    objects: Iterable[InspectionObject],
    inspectors: Iterable[Inspector],
    rules: DrawRules,
    seed: int,
    conflicts: Iterable[tuple[str, str]] = (),
    last_teams: Mapping[str, Iterable[str]] | None = None,
) -> DrawResult:
    """Draw inspection objects and a team for each (the procedure of the module docstring).

    ``conflicts`` are declared (inspector, object) conflicts of interest (回避);
    ``last_teams`` maps an object to the inspectors of its previous inspection. The same
    inputs and seed give the same result whatever the order of the inputs.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    inputs = _canonical(objects, inspectors, rules, conflicts, last_teams)
    stream = _Stream(seed)
    load = dict.fromkeys((i.code for i in inputs.inspectors), 0)
    picks: list[Pick] = []
    unstaffed: list[tuple[str, str]] = []
    for obj in _draw_objects(inputs, stream):
        pool, reason = _eligible(obj, inputs, load)
        if len(pool) < rules.team_size:
            unstaffed.append((obj.code, reason))
            continue
        team = stream.sample(pool, rules.team_size)
        for member in team:
            load[member.code] += 1
        picks.append(Pick(obj.code, tuple(member.code for member in team)))
    return DrawResult(seed, _digest(inputs), tuple(picks), tuple(unstaffed))


def verify(
    result: DrawResult,
    objects: Iterable[InspectionObject],
    inspectors: Iterable[Inspector],
    rules: DrawRules,
    conflicts: Iterable[tuple[str, str]] = (),
    last_teams: Mapping[str, Iterable[str]] | None = None,
) -> bool:
    """Whether ``result`` is what the published inputs and its seed give: what a member of
    the public does to check a published draw."""
    return draw(objects, inspectors, rules, result.seed, conflicts, last_teams) == result
