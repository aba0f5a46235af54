"""The exchange format described for the tax side, generated from the layouts of
:mod:`ecohub.permits.exchange_schema` so that the description cannot drift from what the
import accepts: the JSON Schema (draft 2020-12) of a line of a ``.jsonl`` file, written
beside every export (``schema.json``) and served at ``GET /api/v1/permits/exchange/schema``,
and the field tables of ``docs/permits-and-tax.md`` (:func:`markdown_tables`)."""

from __future__ import annotations

from typing import Any

from ecohub.permits import exchange_schema as xs


def schema_document() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of a ``.jsonl`` exchange file: the
    envelope ``{"format", "kind", "record"}`` with each kind's record schema
    (:func:`exchange_schema.json_schema`) under ``$defs``."""
    kinds = [k.value for k in xs.Kind]
    return {
        "$schema": xs.JSON_SCHEMA_DIALECT,
        "$id": f"urn:ecohub:{xs.FORMAT_VERSION}",
        "title": "EcoHub 环境保护税涉税信息交换: one line of a .jsonl file",
        "description": (
            f"format {xs.FORMAT_VERSION}; a .csv file of one kind has the record's fields as its "
            "header, in the order of $defs/<kind>/properties, UTF-8, empty cells for absent "
            "optional fields"
        ),
        "type": "object",
        "properties": {
            "format": {"const": xs.FORMAT_VERSION},
            "kind": {"enum": kinds},
            "record": {"type": "object"},
        },
        "required": ["format", "kind", "record"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}},
                "then": {"properties": {"record": {"$ref": f"#/$defs/{kind}"}}},
            }
            for kind in kinds
        ],
        "$defs": {kind: xs.json_schema(kind) for kind in kinds},
    }


def field_rows(kind: xs.Kind | str) -> list[dict[str, str]]:
    """One row per field of a kind for the documentation: field, type, required, unit,
    meaning (the Chinese name, its choices and check) and source."""
    rows = []
    for f in xs.record_kind(kind).fields:
        meaning = f.zh
        if f.choices:
            meaning += f"; one of {' / '.join(f.choices)}"
        if f.check:
            meaning += f"; checked as {f.check}"
        rows.append(
            {
                "field": f.name,
                "type": f.type,
                "required": "yes" if f.required else "no",
                "unit": f.unit or "",
                "meaning": meaning,
                "source": f.source,
            }
        )
    return rows


def markdown_tables() -> str:
    """The field tables of the eight kinds as Markdown, from :data:`exchange_schema.KINDS`."""
    out = []
    columns = ("field", "type", "required", "unit", "meaning", "source")
    for layout in xs.KINDS.values():
        key = ", ".join(f"`{name}`" for name in layout.key)
        period = " .. ".join(
            f"`{name}`" for name in dict.fromkeys(xs.PERIOD_FIELDS[layout.kind]) if name
        )
        out.append(f"#### {layout.zh} (`{layout.kind.value}`, {layout.direction.value})\n")
        out.append(f"Key: {key}. Period: {period}. Basis: {layout.basis}.\n")
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        for row in field_rows(layout.kind):
            cells = [f"`{row['field']}`", *(row[c].replace("|", "\\|") for c in columns[1:])]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
