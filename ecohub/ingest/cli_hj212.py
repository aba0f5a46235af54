"""``ecohub hj212 inspect``: read raw captures and logs of HJ 212 traffic and say, frame by
frame, whether the gateway accepts it and why not (:mod:`ecohub.protocol.hj212.inspect`,
decisions in docs/hj212.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ecohub.commands import console

hj212_app = typer.Typer(help="HJ 212 traffic: inspect captures and logs.")


def _reports(paths: list[Path]) -> Iterator[Any]:
    from ecohub.protocol.hj212.inspect import inspect_lines

    for path in paths:
        with path.open("rb") as lines:
            yield from inspect_lines(lines, str(path))


@hj212_app.command("inspect")
def inspect(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Captures, logs (frames anywhere in a line, CRLF or not, any encoding "
            "around them) or JSON lines with a 'raw' field.",
            exists=True,
            dir_okay=False,
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per frame, then the summary.")
    ] = False,
) -> None:
    """Per frame: accepted, accepted only from a tolerant point, or rejected with the
    reason; the header fields (password masked) and the number of values. A closing
    summary counts them by reason. Exit status 1 when any frame is rejected."""
    from ecohub.protocol.hj212.inspect import summarise

    reports = []
    for report in _reports(paths):
        reports.append(report)
        if as_json:
            print(json.dumps(report.to_dict(), ensure_ascii=False))
        else:
            reason = f" {report.reason.code}: {report.reason.text}" if report.reason else ""
            console.print(
                f"{report.where} {report.verdict} CN={report.cn} MN={report.mn} "
                f"values={len(report.values)}{reason}",
                markup=False,
                soft_wrap=True,
            )
    summary = summarise(reports)
    if as_json:
        print(json.dumps({"summary": summary.to_dict()}, ensure_ascii=False))
    else:
        for line in summary.lines():
            console.print(line, markup=False)
    if any(report.verdict == "rejected" for report in reports):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this group to ``app``."""
    app.add_typer(hj212_app, name="hj212")
