"""The service hall's forms read into an application's content, and their errors said in
the user's language: each text area holds one row per line of comma-separated cells;
a cell that is not what its column takes, a line with too few cells, a value the
application's rules refuse and a day that is not a date are named by the area, the line
as the form counts it (from 1, blank lines included), the column and its name."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ecohub.permits.lifecycle import PermitError
from ecohub.web.i18n import term, text

# The columns of each text area (the last ones may be left out down to ``width``).
COLUMNS: dict[str, tuple[tuple[str, ...], int]] = {
    "limits": (
        ("outlet_code", "parameter_code", "concentration_limit", "unit", "annual_mass_limit_kg"),
        4,
    ),
    "monitoring": (("outlet_code", "parameter_code", "frequency"), 3),
    "outlets": (("code", "name", "kind"), 3),
}
NUMBERS = frozenset({"concentration_limit", "annual_mass_limit_kg"})


class FormError(ValueError):
    """A form's input refused; the message is already in the user's language."""


def field_name(lang: str, key: str) -> str:
    return term(lang, "permit_form_field", key)


def _cell(lang: str, area: str, line: int, column: int, key: str, value: str) -> Any:
    if key not in NUMBERS:
        return value
    if not value and key == "annual_mass_limit_kg":
        return None
    try:
        return float(value)
    except ValueError:
        raise FormError(
            text(lang)["pm_err_number"]
            % (field_name(lang, area), line, column, field_name(lang, key), value)
        ) from None


def rows(lang: str, source: str, area: str) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a text area: (form line, the row's values by column)."""
    names, width = COLUMNS[area]
    found = []
    for line, raw in enumerate(source.splitlines(), start=1):
        if not raw.strip():
            continue
        cells = [cell.strip() for cell in raw.replace("，", ",").split(",")]
        if len(cells) < width:
            raise FormError(text(lang)["pm_err_width"] % (field_name(lang, area), line, width))
        values = {
            key: _cell(lang, area, line, column, key, value)
            for column, (key, value) in enumerate(zip(names, cells, strict=False), start=1)
        }
        found.append((line, values))
    return found


def content_from_form(form: Any, lang: str = "zh") -> tuple[dict[str, Any], dict[str, list[int]]]:
    """An application's content from the hall's form, and the form line of each row."""
    content: dict[str, Any] = {}
    lines: dict[str, list[int]] = {}
    for area in COLUMNS:
        parsed = rows(lang, str(form.get(area) or ""), area)
        content[area] = [values for _, values in parsed]
        lines[area] = [line for line, _ in parsed]
    if form.get("effective_on"):
        content["effective_on"] = str(form.get("effective_on"))
    if form.get("reason"):
        content["reason"] = str(form.get("reason"))
    return content, lines


def explain(error: PermitError, lang: str, lines: dict[str, list[int]] | None = None) -> str:
    """A refusal of the procedure in the user's language where it names a place in the
    content (its problem translated when known), else its own text."""
    if error.section is None or error.problem is None:
        return str(error)
    words = text(lang)
    problem = term(lang, "permit_form_problem", error.problem)
    if problem == error.problem:  # not a known kind: pydantic's own words
        problem = str(error).split(": ", 1)[-1]
    else:
        try:
            problem = problem % error.context
        except (KeyError, TypeError, ValueError):
            problem = str(error).split(": ", 1)[-1]
    area = field_name(lang, error.section)
    if error.item is None:
        return words["pm_err_field"] % (area, problem)
    numbers = (lines or {}).get(error.section, [])
    line = numbers[error.item - 1] if 0 < error.item <= len(numbers) else error.item
    column = field_name(lang, error.column) if error.column else "—"
    return words["pm_err_line"] % (area, line, column, problem)


def missing(lang: str, key: str) -> str:
    """'<field>: required' in ``lang``."""
    return text(lang)["pm_err_field"] % (
        field_name(lang, key),
        term(lang, "permit_form_problem", "missing"),
    )


def day(lang: str, value: object, key: str) -> dt.date | None:
    """A day of a form (empty: None), else :class:`FormError` naming the field."""
    given = str(value or "").strip()
    if not given:
        return None
    try:
        return dt.date.fromisoformat(given)
    except ValueError:
        raise FormError(text(lang)["pm_err_date"] % (field_name(lang, key), given)) from None
