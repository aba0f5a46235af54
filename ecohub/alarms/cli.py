"""``ecohub alarms``: list, inspect, acknowledge, annotate and close alarms; subscriptions,
maintenance windows, the offline sweep and notification delivery from the shell."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.alarms import lifecycle
from ecohub.alarms.lifecycle import AlarmError
from ecohub.alarms.tables import AlarmKind, alarm_subscriptions
from ecohub.commands import actor, console, err_console, parse_time, progress
from ecohub.commands import engine as _engine
from ecohub.registry.models import Enterprise, MonitoringPoint, Site

alarms_app = typer.Typer(help="Alarms: list, acknowledge, annotate, close; subscriptions.")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{message}[/red]")
    return typer.Exit(2)


def _local(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")


def _point_id(store: Engine, code: str) -> int:
    with Session(store) as session:
        found = session.scalars(select(MonitoringPoint.id).filter_by(code=code)).one_or_none()
    if found is None:
        raise _fail(f"no monitoring point with code {code!r}")
    return found


@alarms_app.command("list")
def alarms_list(
    status: Annotated[
        str, typer.Option(help="unclosed (open or acknowledged), open, acknowledged, closed, all")
    ] = "unclosed",
    kind: Annotated[str | None, typer.Option(help="Only this alarm kind.")] = None,
    point: Annotated[str | None, typer.Option(help="Only this monitoring point (code).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List alarms, newest first."""
    from ecohub.alarms.notify import alarm_payload  # httpx: imported when used

    if status not in ("unclosed", "open", "acknowledged", "closed", "all"):
        raise _fail(f"unknown status {status!r}")
    if kind and kind not in {member.value for member in AlarmKind}:
        raise _fail(f"unknown kind {kind!r}: {', '.join(m.value for m in AlarmKind)}")
    store = _engine()
    found = lifecycle.list_alarms(
        store,
        status=None if status == "all" else status,
        kind=kind,
        point_id=_point_id(store, point) if point else None,
        limit=limit,
    )
    if as_json:
        for alarm in found:
            console.print_json(json.dumps(alarm_payload(alarm), ensure_ascii=False))
        return
    table = Table("id", "kind", "status", "severity", "started (CST)", "ended", "summary")
    for alarm in found:
        table.add_row(
            str(alarm["id"]),
            alarm["kind"],
            alarm["status"],
            alarm["severity"],
            _local(alarm["started_at"]),
            _local(alarm["ended_at"]),
            alarm["summary"],
        )
    console.print(table)
    console.print(f"{len(found)} alarm(s)")


@alarms_app.command("show")
def alarms_show(alarm_id: Annotated[int, typer.Argument(help="Alarm id.")]) -> None:
    """One alarm with its evidence and history."""
    from ecohub.alarms.notify import alarm_payload  # httpx: imported when used

    store = _engine()
    found = lifecycle.get_alarm(store, alarm_id)
    if found is None:
        raise _fail(f"no alarm {alarm_id}")
    payload: dict[str, Any] = alarm_payload(found)
    payload["history"] = [
        {
            "at": event["at"].isoformat(),
            "actor": event["actor"],
            "action": event["action"],
            "note": event["note"],
        }
        for event in lifecycle.alarm_history(store, alarm_id)
    ]
    console.print_json(json.dumps(payload, ensure_ascii=False))


@alarms_app.command("ack")
def alarms_ack(
    alarm_id: Annotated[int, typer.Argument(help="Alarm id.")],
    note: Annotated[str | None, typer.Option(help="What is being done about it.")] = None,
) -> None:
    """Acknowledge an alarm (recorded with your ECOHUB_ACTOR name)."""
    try:
        lifecycle.acknowledge(_engine(), alarm_id, actor(), note)
    except AlarmError as error:
        raise _fail(str(error)) from None
    console.print(f"alarm {alarm_id} acknowledged")


@alarms_app.command("annotate")
def alarms_annotate(
    alarm_id: Annotated[int, typer.Argument(help="Alarm id.")],
    note: Annotated[str, typer.Argument(help="The note.")],
) -> None:
    """Add a note to an alarm's history."""
    try:
        lifecycle.annotate(_engine(), alarm_id, actor(), note)
    except AlarmError as error:
        raise _fail(str(error)) from None
    console.print(f"note added to alarm {alarm_id}")


@alarms_app.command("close")
def alarms_close(
    alarm_id: Annotated[int, typer.Argument(help="Alarm id.")],
    reason: Annotated[str, typer.Option(help="Why it is closed by hand (required).")],
) -> None:
    """Close an alarm by hand with a reason."""
    try:
        lifecycle.close(_engine(), alarm_id, actor(), reason)
    except AlarmError as error:
        raise _fail(str(error)) from None
    console.print(f"alarm {alarm_id} closed")


@alarms_app.command("sweep")
def alarms_sweep() -> None:
    """Run the offline sweep once (``ecohub serve`` runs it every minute)."""
    from ecohub.alarms.offline import sweep_offline

    events = sweep_offline(_engine())
    console.print(f"offline sweep: {len(events)} alarm event(s)")


@alarms_app.command("notify")
def alarms_notify() -> None:
    """Deliver due notifications once (``ecohub serve`` does it every minute)."""
    from ecohub.alarms.notify import Notifier

    notifier = Notifier(_engine())
    try:
        report = notifier.deliver_due()
    finally:
        notifier.close()
    console.print(
        f"{report.sent} sent in {report.messages} message(s), {report.retried} to retry, "
        f"{report.failed} failed"
    )
    for error in report.errors:
        err_console.print(f"[yellow]{error}[/yellow]")


@alarms_app.command("subscribe")
def alarms_subscribe(
    name: Annotated[str, typer.Argument(help="Who receives it.")],
    webhook: Annotated[str | None, typer.Option(help="URL to POST signed JSON to.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address (ECOHUB_SMTP_*).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds (repeatable).")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region code and below.")] = None,
    enterprise: Annotated[str | None, typer.Option(help="Only this enterprise (USCC).")] = None,
    site: Annotated[str | None, typer.Option(help="Only this site (code).")] = None,
    digest: Annotated[
        int | None, typer.Option(help="Send one digest per this many minutes.", min=1)
    ] = None,
) -> None:
    """Subscribe a webhook or an e-mail address to alarm notifications."""
    from ecohub.alarms.notify import SubscriptionError, create_subscription

    if (webhook is None) == (email is None):
        raise _fail("give exactly one of --webhook and --email")
    store = _engine()
    enterprise_id = site_id = None
    with Session(store) as session:
        if enterprise:
            enterprise_id = session.scalars(
                select(Enterprise.id).filter_by(uscc=enterprise)
            ).one_or_none()
            if enterprise_id is None:
                raise _fail(f"no enterprise with USCC {enterprise}")
        if site:
            site_id = session.scalars(select(Site.id).filter_by(code=site)).one_or_none()
            if site_id is None:
                raise _fail(f"no site with code {site}")
    try:
        subscription_id, secret = create_subscription(
            store,
            name=name,
            channel="webhook" if webhook else "email",
            target=webhook or email or "",
            actor=actor(),
            kinds=kind,
            region_code=region,
            enterprise_id=enterprise_id,
            site_id=site_id,
            digest_minutes=digest,
        )
    except SubscriptionError as error:
        raise _fail(str(error)) from None
    console.print(f"subscription {subscription_id} created")
    if secret:
        console.print(f"webhook signing secret (shown once, keep it): {secret}")


@alarms_app.command("subscriptions")
def alarms_subscriptions() -> None:
    """List subscriptions (never their secrets)."""
    with _engine().connect() as connection:
        rows = connection.execute(select(alarm_subscriptions).order_by(alarm_subscriptions.c.id))
        table = Table("id", "name", "channel", "target", "kinds", "region", "digest", "active")
        for row in rows:
            table.add_row(
                str(row.id),
                row.name,
                row.channel,
                row.target,
                row.kinds or "all",
                row.region_code or "",
                f"{row.digest_minutes} min" if row.digest_minutes else "",
                "yes" if row.active else "no",
            )
    console.print(table)


@alarms_app.command("maintenance")
def alarms_maintenance(
    point: Annotated[str, typer.Argument(help="Monitoring point code.")],
    starts: Annotated[str, typer.Option(help="Start (ISO; CST when no offset).")],
    ends: Annotated[str, typer.Option(help="End (ISO; CST when no offset).")],
    reason: Annotated[str, typer.Option(help="Why (e.g. calibration, repair).")],
) -> None:
    """Declare a maintenance window: no alarm opens for the point inside it."""
    store = _engine()
    try:
        window = lifecycle.add_maintenance_window(
            store,
            _point_id(store, point),
            parse_time(starts),
            parse_time(ends),
            reason,
            actor(),
        )
    except AlarmError as error:
        raise _fail(str(error)) from None
    console.print(f"maintenance window {window} declared for {point}")


@alarms_app.command("judge")
def alarms_judge(
    start: Annotated[str, typer.Option(help="First day (ISO; Beijing time when no offset).")],
    end: Annotated[str, typer.Option(help="End, exclusive (ISO; Beijing time).")],
) -> None:
    """Judge the alarm rules over stored history, day by day (after a bulk import of past
    data, or to see what the rules would have raised in a past episode), then list the
    heavy-pollution warnings of the period by city."""
    from ecohub.alarms.replay import judge_history

    begin, finish = parse_time(start), parse_time(end)
    if finish <= begin:
        raise _fail("end must be after start")
    store = _engine()
    with progress() as bar:
        task = bar.add_task("judge alarm rules", total=max(1, (finish - begin).days + 1))
        done = judge_history(store, begin, finish, progress=lambda n: bar.advance(task, n))
    console.print(f"{done.days} days judged, {done.hours:,} hourly values, {done.events} events")
    _print_warnings(store, begin, finish)


@alarms_app.command("warnings")
def alarms_warnings(
    start: Annotated[str, typer.Option(help="From (ISO; Beijing time when no offset).")],
    end: Annotated[str, typer.Option(help="To, exclusive (ISO; Beijing time).")],
) -> None:
    """The heavy-pollution warnings (yellow, orange, red) of a period, by city and date."""
    _print_warnings(_engine(), parse_time(start), parse_time(end))


def _print_warnings(store: Engine, start: dt.datetime, end: dt.datetime) -> None:
    from ecohub.alarms.replay import heavy_pollution_warnings

    found = heavy_pollution_warnings(store, start, end)
    table = Table(title="heavy-pollution warnings (环办大气函〔2019〕648号)")
    for column in ("city", "level", "from", "to", "days"):
        table.add_column(column)
    for warning in found:
        table.add_row(
            f"{warning.name} {warning.city}",
            warning.level,
            _local(warning.started),
            _local(warning.ended) or "ongoing",
            str(warning.days),
        )
    console.print(table)
    console.print(f"{len(found)} warning(s) in {len({w.city for w in found})} cities")


def register(app: typer.Typer) -> None:
    """Add this group to ``app``."""
    app.add_typer(alarms_app, name="alarms")
