"""Checking a stored or published double-random draw (:mod:`ecohub.supervision.draw`):
its rules from their published form, the public view of it (the declared conflict
pairs replaced by their digest: who declared an interest in which enterprise is not
published) and the re-run anyone can make (``ecohub supervision verify``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecohub.supervision import draw as drawing


def rules_from(document: Mapping[str, Any]) -> drawing.DrawRules:
    """Draw rules from their published form."""
    return drawing.DrawRules(
        rates={str(k): float(v) for k, v in document["rates"].items()},
        team_size=int(document.get("team_size", 2)),
        cross_region=bool(document.get("cross_region", False)),
        qualification=document.get("qualification"),
        max_per_inspector=document.get("max_per_inspector"),
        region_match=str(document.get("region_match", "exact")),
    )


def verify_draw(document: Mapping[str, Any]) -> bool:
    """Re-run a draw from its seed and inputs and compare: what anyone can do with the
    published record. The seed must be the one its recorded source gives (when recorded).
    With the conflict pairs (the agency's record) the whole draw is re-run; the public
    record carries only their digest, so there the objects drawn are re-run and each team
    is checked against every rule but the conflicts (the teams need the pairs behind
    ``conflicts_digest``, which the agency holds)."""
    inputs = document["inputs"]
    source = document.get("seed_source")
    if source and int(document["seed"]) != drawing.seed_from(
        bytes.fromhex(source["entropy"]), str(source["inputs_digest"])
    ):
        return False
    objects = [drawing.InspectionObject(*row) for row in inputs["objects"]]
    staff = [drawing.Inspector(c, r, frozenset(q)) for c, r, q in inputs["inspectors"]]
    rules = rules_from(inputs["rules"])
    published = [[p["uscc"], list(p["inspectors"])] for p in document["picks"]]
    if "conflicts" not in inputs:
        return _check_public(document, objects, staff, rules, published)
    result = drawing.draw(
        objects,
        staff,
        rules,
        int(document["seed"]),
        [tuple(pair) for pair in inputs["conflicts"]],
        inputs["last_teams"],
    )
    picks = [[p.object_code, list(p.inspectors)] for p in result.picks]
    return result.inputs_digest == document["inputs_digest"] and picks == published


def _check_public(
    document: Mapping[str, Any],
    objects: list[drawing.InspectionObject],
    staff: list[drawing.Inspector],
    rules: drawing.DrawRules,
    published: list[list[Any]],
) -> bool:
    drawn = drawing.drawn_objects(objects, rules, int(document["seed"]))
    unstaffed = [str(item[0]) for item in document["unstaffed"]]
    picked = [str(code) for code, _team in published]
    if sorted(drawn) != sorted(picked + unstaffed):
        return False
    if picked != [code for code in drawn if code in set(picked)]:
        return False
    by_code = {i.code: i for i in staff}
    by_object = {o.code: o for o in objects}
    previous = document["inputs"].get("last_teams", {})
    for code, team in published:
        members = [by_code.get(member) for member in team]
        if len(set(team)) != rules.team_size or None in members:
            return False
        for member in members:
            assert member is not None
            if not drawing.in_region(member, by_object[code], rules):
                return False
            if rules.qualification and rules.qualification not in member.qualifications:
                return False
            if member.code in previous.get(code, ()):
                return False
    return True


def public_view(document: dict[str, Any]) -> dict[str, Any]:
    """A draw as the public sees it: the conflict pairs replaced by their digest."""
    inputs = dict(document["inputs"])
    pairs = [tuple(pair) for pair in inputs.pop("conflicts", [])]
    inputs["conflicts_digest"] = drawing.conflicts_digest(pairs)
    inputs["conflicts_count"] = len({tuple(pair) for pair in pairs})
    document.pop("drawn_by", None)
    return {**document, "inputs": inputs}
