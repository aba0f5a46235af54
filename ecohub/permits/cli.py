"""``ecohub permits``: the permit procedure (applications, decisions, versions,
revocation), execution reports, a month's emissions accounting and environmental
protection tax of an enterprise, and the exchange with the tax authority."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ecohub.commands import actor, console, fail, progress
from ecohub.commands import engine as _engine
from ecohub.permits import exchange, lifecycle, reconcile, reports, versions
from ecohub.permits.accounting import AccountingError, enterprise_year
from ecohub.permits.api import parse_month
from ecohub.permits.tax import month_tax

permits_app = typer.Typer(
    help="Permits: the procedure, execution reports, emissions, the tax and its exchange.",
    no_args_is_help=True,
)


@permits_app.command("tax")
def tax(
    uscc: str,
    month: Annotated[str, typer.Argument(help="YYYY-MM (Beijing calendar)")],
    zone: Annotated[str | None, typer.Option(help="the province's rate zone (河北: 一档…)")] = None,
) -> None:
    """The month's emissions of every outlet and its tax, every step (JSON)."""
    try:
        year, number = parse_month(month)
        found = month_tax(_engine(), uscc, year, number, zone=zone)
    except (AccountingError, ValueError) as error:
        raise fail(str(error)) from None
    console.print_json(json.dumps(found, default=str, ensure_ascii=False))


@permits_app.command("tax-all")
def tax_all(
    month: Annotated[str, typer.Argument(help="YYYY-MM (Beijing calendar)")],
    out: Annotated[Path | None, typer.Option(help="write every enterprise's month as JSON")] = None,
    zone: Annotated[
        str | None, typer.Option(help="the rate zone for every zoned enterprise (河北: 一档…)")
    ] = None,
) -> None:
    """Every enterprise's emissions and tax of a month at once (a progress bar; a line
    per enterprise, or the whole computation as JSON with --out). 江苏's zones come from
    each enterprise's division; 河北's must be given with --zone."""
    from ecohub.permits.bulk import month_all

    try:
        year, number = parse_month(month)
        with progress() as bar:
            tasks: dict[str, Any] = {}

            def advance(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total)
                bar.update(tasks[what], completed=done, total=total)

            found = month_all(_engine(), year, number, zone=zone, progress=advance)
    except (AccountingError, ValueError) as error:
        raise fail(str(error)) from None
    if out is not None:
        out.write_text(json.dumps(found, default=str, ensure_ascii=False), "utf-8")
    total = sum(item["tax"] for item in found)
    for item in found if out is None else []:
        console.print(f"{item['uscc']}  {item['name']}  {item['tax']:.2f} 元")
    console.print(f"{len(found)} enterprises, {total:,.2f} 元 in all")


@permits_app.command("emissions")
def emissions(uscc: str, year: int) -> None:
    """The year's emissions of every outlet's pollutants against the permit's annual mass
    limits, month by month (JSON)."""
    try:
        found = enterprise_year(_engine(), uscc, year)
    except AccountingError as error:
        raise fail(str(error)) from None
    console.print_json(json.dumps(found, default=str, ensure_ascii=False))


def _show(found: Any) -> None:
    console.print_json(json.dumps(found, default=str, ensure_ascii=False))


@permits_app.command("applications")
def applications() -> None:
    """Applications, newest first."""
    for row in lifecycle.list_applications(_engine()):
        console.print(
            f"{row['id']:>5}  {row['reference']}  {row['uscc']}  {row['kind']:<8} "
            f"{row['status']:<12} {row['permit_no'] or ''}  due {row['decision_due'] or '-'}"
        )


@permits_app.command("decide")
def decide(
    application_id: int,
    status: Annotated[str, typer.Argument(help="accepted, not_accepted, refused, issued")],
    reason: Annotated[str | None, typer.Option(help="the written reason (refusals)")] = None,
    site_check: Annotated[bool, typer.Option(help="a site check is needed (现场核查)")] = False,
    on: Annotated[str | None, typer.Option(help="the decision's day, YYYY-MM-DD")] = None,
) -> None:
    """The agency's step on an application (issuing writes the new version)."""
    try:
        found = lifecycle.decide(
            _engine(),
            application_id,
            status,
            actor=actor(),
            by="agency",
            reason=reason,
            site_check=site_check,
            on=dt.date.fromisoformat(on) if on else None,
        )
    except (lifecycle.PermitError, ValueError) as error:
        raise fail(str(error)) from None
    _show(found)


@permits_app.command("versions")
def show_versions(permit_no: str) -> None:
    """Every version of a permit (JSON)."""
    try:
        _show(versions.permit_versions(_engine(), permit_no))
    except lifecycle.PermitError as error:
        raise fail(str(error)) from None


@permits_app.command("revoke")
def revoke(
    permit_no: str,
    on: Annotated[str, typer.Option(help="the first day without a permit, YYYY-MM-DD")],
    reason: Annotated[str, typer.Option(help="the written reason")],
) -> None:
    """Revoke (撤销) the version in force from a day."""
    try:
        found = versions.revoke(
            _engine(), permit_no, on=dt.date.fromisoformat(on), reason=reason, actor=actor()
        )
    except (lifecycle.PermitError, ValueError) as error:
        raise fail(str(error)) from None
    _show(found)


@permits_app.command("report")
def report(
    permit_no: str,
    kind: Annotated[str, typer.Argument(help="annual, semiannual, quarterly or monthly")],
    day: Annotated[str, typer.Argument(help="any day of the period, YYYY-MM-DD")],
) -> None:
    """Generate (or regenerate a draft of) an execution report from the data (JSON)."""
    try:
        found = reports.generate(
            _engine(), permit_no, kind, dt.date.fromisoformat(day), actor=actor()
        )
    except (reports.ReportError, ValueError) as error:
        raise fail(str(error)) from None
    _show(found)


@permits_app.command("exchange-export")
def exchange_export(
    first: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    last: Annotated[str, typer.Option("--to", help="last day, YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="the folder to write")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    kind: Annotated[list[str] | None, typer.Option(help="a kind to write (repeatable)")] = None,
) -> None:
    """Write the records for the tax authority with a manifest of checksums."""
    try:
        manifest = exchange.export(
            _engine(),
            out,
            first=dt.date.fromisoformat(first),
            last=dt.date.fromisoformat(last),
            kinds=kind or None,
            fmt=fmt,
            actor=actor(),
        )
    except (exchange.ExchangeError, ValueError) as error:
        raise fail(str(error)) from None
    for item in manifest["files"]:
        console.print(f"{item['file']:<32} {item['records']:>7} records  {item['sha256'][:16]}…")


@permits_app.command("exchange-import")
def exchange_import(
    files: list[Path],
    kind: Annotated[str | None, typer.Option(help="the kind of a CSV not named after it")] = None,
    strict: Annotated[
        bool, typer.Option(help="refuse a whole file with any bad line (nothing of it written)")
    ] = False,
) -> None:
    """Import records from the tax side (.jsonl, or <kind>.csv, as the export's schema.json
    describes them); bad lines are named and skipped, or with --strict refuse their file."""
    refused = 0
    for path in files:
        try:
            found = exchange.import_file(_engine(), path, kind=kind, actor=actor(), strict=strict)
        except (exchange.ExchangeError, OSError) as error:
            raise fail(str(error)) from None
        console.print(
            f"{path.name}: {found.new} new, {found.updated} updated, {found.unchanged} "
            f"unchanged, {found.refused} refused"
        )
        for message in found.errors:
            console.print(f"  [red]{message}[/red]")
        refused += found.refused
    if refused:
        raise typer.Exit(1)


@permits_app.command("reconcile")
def reconcile_month(
    uscc: str, month: Annotated[str, typer.Argument(help="YYYY-MM (Beijing calendar)")]
) -> None:
    """An enterprise's declared tax against the tax computed from its data (JSON)."""
    try:
        year, number = parse_month(month)
        _show(reconcile.reconcile(_engine(), uscc, year, number))
    except (AccountingError, ValueError) as error:
        raise fail(str(error)) from None


@permits_app.command("review-answer")
def review_answer(
    request_no: str,
    conclusion: Annotated[str, typer.Option(help="申报属实, 调整排放量 or 无法核实")],
    opinion: Annotated[str, typer.Option(help="the opinion's text")],
) -> None:
    """Answer a review request from the tax office (环境保护税法 第二十条)."""
    try:
        _show(
            reconcile.answer_review(
                _engine(), request_no, conclusion=conclusion, opinion=opinion, actor=actor()
            )
        )
    except (exchange.ExchangeError, ValueError) as error:
        raise fail(str(error)) from None


def register(app: typer.Typer) -> None:
    app.add_typer(permits_app, name="permits")
