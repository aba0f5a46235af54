"""``ecohub supervision``: the double-random directories and draws, the risk ranking,
penalty cases and credit ratings from the command line (what the API does, under the
actor ``ECOHUB_ACTOR``)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.commands import actor, console, fail
from ecohub.commands import engine as _engine
from ecohub.config import get_settings
from ecohub.supervision import case_terms, cases, credit, evidence, service
from ecohub.supervision.draw import DrawRules
from ecohub.supervision.overdue import sweep_overdue_cases
from ecohub.supervision.risk import load_weights
from ecohub.supervision.service import SupervisionError

supervision_app = typer.Typer(
    help="Supervision: double-random draws, risk ranking, penalty cases, credit ratings.",
    no_args_is_help=True,
)


def _today() -> dt.date:
    return utcnow().astimezone(local_zone()).date()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _print(document: Any) -> None:
    console.print_json(json.dumps(document, default=str, ensure_ascii=False))


@supervision_app.command("object")
def set_object(
    uscc: str,
    category: Annotated[str, typer.Argument(help="key, general or special")],
    region: Annotated[
        str | None, typer.Option(help="supervising region (default: its own)")
    ] = None,
) -> None:
    """Put an enterprise in the inspection-object directory."""
    try:
        _print(service.set_object(_engine(), uscc, category, actor(), region))
    except SupervisionError as error:
        raise fail(str(error)) from None


@supervision_app.command("inspector")
def set_inspector(
    code: str,
    name: str,
    region: str,
    qualification: Annotated[list[str] | None, typer.Option(help="repeatable")] = None,
    inactive: bool = False,
) -> None:
    """Add or change an inspector of the inspector directory."""
    try:
        service.set_inspector(
            _engine(), code, name, region, actor(), qualification or (), not inactive
        )
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"inspector {code} saved")


@supervision_app.command("conflict")
def conflict(inspector: str, uscc: str, reason: str) -> None:
    """Declare an inspector's conflict of interest with an enterprise (回避)."""
    try:
        service.declare_conflict(_engine(), inspector, uscc, reason, actor())
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"{inspector} will not be drawn for {uscc}")


def _rates(items: list[str]) -> dict[str, float]:
    rates = {}
    for item in items:
        category, _, rate = item.partition("=")
        try:
            rates[category.strip()] = float(rate)
        except ValueError:
            raise typer.BadParameter(
                f"--rate {item!r}: expected CATEGORY=SHARE, e.g. key=0.25"
            ) from None
    return rates


@supervision_app.command("draw")
def run_draw(
    title: str,
    rate: Annotated[list[str], typer.Option(help="CATEGORY=SHARE, e.g. key=0.25 (repeatable)")],
    team_size: int = 2,
    cross_region: bool = False,
    qualification: str | None = None,
    max_per_inspector: int | None = None,
    region: Annotated[list[str] | None, typer.Option(help="only these regions")] = None,
    region_match: Annotated[
        str, typer.Option(help="exact, or prefix: a city's inspectors for its districts")
    ] = "exact",
    publish: bool = False,
) -> None:
    """Draw inspection objects and inspector teams at random. The seed is made from fresh
    random bytes and the inputs' digest, both recorded; the draw is numbered."""
    rules = DrawRules(
        _rates(rate), team_size, cross_region, qualification, max_per_inspector, region_match
    )
    store = _engine()
    try:
        found = service.run_draw(store, title, rules, actor(), regions=region)
        if publish:
            service.publish_draw(store, found["id"], actor())
    except (SupervisionError, ValueError) as error:
        raise fail(str(error)) from None
    table = Table(
        "#",
        Column("enterprise", min_width=24, overflow="fold"),
        "credit code",
        "inspectors",
        title=f"draw no. {found['number']} (id {found['id']}): seed {found['seed']}",
    )
    for position, pick in enumerate(found["picks"], start=1):
        table.add_row(
            str(position), pick["enterprise"], pick["uscc"], ", ".join(pick["inspectors"])
        )
    console.print(table)
    for uscc, reason in found["unstaffed"]:
        console.print(f"[yellow]not staffed[/yellow] {uscc}: {reason}")
    console.print(f"inputs digest {found['inputs_digest']}")


@supervision_app.command("void")
def void(draw_id: int, reason: str) -> None:
    """Set an unpublished draw aside; it stays listed publicly with REASON."""
    try:
        service.void_draw(_engine(), draw_id, reason, actor())
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"draw {draw_id} voided: {reason}")


@supervision_app.command("verify")
def verify(
    path: Annotated[Path, typer.Argument(help="a published draw (JSON of the API)")],
) -> None:
    """Re-run a published draw from its seed and inputs and compare its picks."""
    try:
        document = json.loads(path.read_text("utf-8"))
        same = service.verify_draw(document)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise fail(f"{path}: not a published draw ({error})") from None
    if not same:
        raise fail(f"{path}: the seed and inputs do NOT give the published picks", code=1)
    console.print(f"{path}: reproduced: the same picks from seed {document['seed']}")


@supervision_app.command("risk")
def risk(
    start: str,
    end: str,
    region: str | None = None,
    top: int = 20,
) -> None:
    """Enterprises ranked by risk score over [START, END) (local dates)."""
    first, last = local_day_start(_date(start)), local_day_start(_date(end))
    weights = load_weights(get_settings().supervision_risk_weights)
    try:
        found = evidence.ranked(_engine(), first, last, weights, region=region)
    except ValueError as error:
        raise fail(str(error)) from None
    table = Table(
        "rank",
        Column("enterprise", min_width=24, overflow="fold"),
        "score",
        "exceedance h",
        "anomaly h",
        "offline h",
        "transmission",
        "penalties",
    )
    for rank, item in enumerate(found[:top], start=1):
        rate = item["transmission_rate"]
        table.add_row(
            str(rank),
            f"{item['name']} {item['uscc']}",
            f"{item['risk']['score']:.1f}",
            f"{item['exceedance_hours']:.0f}",
            f"{item['anomaly_hours']:.0f}",
            f"{item['offline_hours']:.0f}",
            "—" if rate is None else f"{rate:.1%}",
            str(item["penalties"]),
        )
    console.print(table)


@supervision_app.command("case")
def open_case(
    uscc: str,
    title: str,
    violation: str,
    discovered: str,
    complaint_event: Annotated[
        int | None, typer.Option(help="the complaint event the case grew from")
    ] = None,
) -> None:
    """Open a penalty case at the discovery of a violation (DISCOVERED: a date)."""
    try:
        case_id = cases.open_case(
            _engine(),
            uscc,
            title,
            violation,
            _date(discovered),
            actor(),
            source_complaint_event_id=complaint_event,
        )
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"case {case_id} opened")


@supervision_app.command("step")
def step(
    case_id: int,
    name: Annotated[str, typer.Argument(help="filed, investigated, notified, decided, …")],
    on: str,
    note: str | None = None,
    penalty: Annotated[str | None, typer.Option(help="yuan (for decided)")] = None,
    basis: Annotated[str | None, typer.Option(help="legal basis (for decided)")] = None,
) -> None:
    """Record a case's next step."""
    try:
        amount = Decimal(penalty) if penalty is not None else None
    except InvalidOperation:
        raise fail(f"--penalty {penalty!r} is not an amount") from None
    try:
        _print(
            cases.record_step(
                _engine(),
                case_id,
                name,
                _date(on),
                actor(),
                note=note,
                penalty_yuan=amount,
                legal_basis=basis,
            )
        )
    except SupervisionError as error:
        raise fail(str(error)) from None


@supervision_app.command("served")
def served(case_id: int, on: str) -> None:
    """Record the day the penalty decision was served on the party (starts the 15 days
    to pay; the agency must serve it within 7 working days of the decision)."""
    try:
        case_terms.serve_decision(_engine(), case_id, _date(on), actor())
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"case {case_id}: decision served on {on}")


@supervision_app.command("extend")
def extend(
    case_id: int,
    rule: Annotated[str, typer.Argument(help="decide_case, decide_filing, …")],
    days: int,
    on: Annotated[str, typer.Argument(help="the day approved (extension) or first day")],
    reason: Annotated[str, typer.Argument(help="why, and who approved it")],
    suspension: Annotated[bool, typer.Option(help="中止: days the clock stood still")] = False,
) -> None:
    """Record an approved extension (第五十七条) or a suspension of a case's period."""
    kind = "suspension" if suspension else "extension"
    try:
        found = case_terms.change_time(
            _engine(), case_id, kind, rule, days, _date(on), reason, actor()
        )
    except SupervisionError as error:
        raise fail(str(error)) from None
    console.print(f"case {case_id}: {rule} now due {found['due']}")


@supervision_app.command("show")
def show(case_id: int) -> None:
    """A case: steps, deadlines as of today, re-inspections, daily penalty."""
    found = cases.get_case(_engine(), case_id, today=_today())
    if found is None:
        raise fail(f"no case {case_id}")
    _print(found)


@supervision_app.command("rate")
def rate(uscc: str, year: int) -> None:
    """Rate an enterprise's environmental credit for a year (a draft in its review window)."""
    try:
        _print(credit.rate(_engine(), uscc, year, actor()))
    except SupervisionError as error:
        raise fail(str(error)) from None


@supervision_app.command("sweep")
def sweep() -> None:
    """Raise (and close) the alarms of penalty-case steps past their legal deadlines;
    ``ecohub serve`` does this in its housekeeping."""
    events = sweep_overdue_cases(_engine())
    console.print(f"{len(events)} alarm events (opened, escalated or closed)")


def register(app: typer.Typer) -> None:
    app.add_typer(supervision_app, name="supervision")
