"""Text the platform writes out for people's tools: CSV cells that a spreadsheet will not
run as a formula.

A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
Excel, LibreOffice and WPS as a formula (CSV injection, OWASP): a site code
``=cmd|' /C calc'!A0`` would run a program on the reader's machine. Such text cells are
written with a leading apostrophe, which the spreadsheet hides; numbers are left alone
(a negative number is not a formula).
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: text starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
