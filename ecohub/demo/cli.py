"""``ecohub demo load``: the demo registry, real CNEMC data when the shared folder holds
it (else labelled simulated values), and a demo agency user."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine, select

from ecohub.commands import console, engine, print_report
from ecohub.config import get_settings
from ecohub.registry.importer import import_file
from ecohub.registry.models import Enterprise

demo_app = typer.Typer(help="Demo data for a first look.")
CREDENTIALS_FILE = "demo-credentials.txt"


def credentials_path() -> Path:
    """Where the demo agency user's password is kept: ``ECOHUB_VAR_DIR`` (default var/)."""
    return Path(get_settings().var_dir) / CREDENTIALS_FILE


@demo_app.command("load")
def demo_load(
    days: Annotated[
        int,
        typer.Option(
            min=1,
            max=366,
            help="Days of data: the newest run of consecutive real CNEMC days (at most "
            "this many), else simulated days.",
        ),
    ] = 30,
    cnemc_dir: Annotated[
        Path, typer.Option(help="Folder of real CNEMC data (china_sites/, stations/).")
    ] = Path("../shared/data/cnemc"),
    water: Annotated[
        Path | None,
        typer.Option(help="The surface-water release (default: ../shared/data/water/)."),
    ] = None,
) -> None:
    """Load the demo: the demo registry (enterprises, permits, outlets, their loggers);
    when the shared real data is there, the official CNEMC station lists (every station
    and city), the newest run of real hourly days and the national surface-water
    release, with the alarm rules judged over them; else labelled simulated values. And
    an agency user whose password is printed and kept in var/demo-credentials.txt
    (ECOHUB_VAR_DIR)."""
    from ecohub.demo import backfill

    store = engine()
    path = Path(str(files("ecohub.demo") / "registry.json"))
    print_report(import_file(store, path, "demo"), "demo registry")
    folder = cnemc_dir / "china_sites" if (cnemc_dir / "china_sites").is_dir() else cnemc_dir
    real = sorted(folder.glob("china_sites_*.csv")) if folder.is_dir() else []
    if real and (cnemc_dir / "stations").is_dir():
        _real_registry(store, cnemc_dir / "stations")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        if real:
            chosen = backfill.newest_run(real, days)
            task = progress.add_task("real CNEMC days", total=len(chosen))
            loaded = backfill.load_cnemc(store, folder, days, lambda n: progress.advance(task, n))
        else:
            task = progress.add_task("simulated stations", total=backfill.station_count(store))
            loaded = backfill.simulate(store, days, progress=lambda n: progress.advance(task, n))
    if loaded.source == "simulated" and loaded.values == 0:
        console.print("simulated demo values are up to date")
    elif loaded.source == "cnemc":
        first, last = loaded.days[0], loaded.days[-1]
        console.print(
            f"loaded {loaded.values:,} real values from {loaded.files} CNEMC files "
            f"({first} to {last}); the portal opens on {last}"
        )
        _judge_alarms(store, first, last)
    else:
        console.print(
            f"[yellow]{cnemc_dir} holds no CNEMC files: loaded {loaded.values:,} SIMULATED air "
            f"and water values for the last {days} days (source '{backfill.SIMULATED_SOURCE}'), "
            "so that the map and charts have something to show. They are not measurements.[/yellow]"
        )
    release = water or _water_release(cnemc_dir.parent / "water")
    if release is not None:
        _real_water(store, release)
    _supervision_demo(store)
    _complaints_demo(store)
    _permits_demo(store)
    _demo_user(store)


def _real_registry(store: Engine, stations: Path) -> None:
    from ecohub.registry.importer import import_records
    from ecohub.registry.station_lists import read_station_lists
    from ecohub.registry.stations import build_history, registry_records

    result = registry_records(build_history(read_station_lists(stations)))
    print_report(import_records(store, result.as_import_rows(), "demo"), "CNEMC station lists")


def _water_release(folder: Path) -> Path | None:
    found = sorted(folder.glob("cnemc_realtime_*.json")) if folder.is_dir() else []
    return found[-1] if found else None


def _real_water(store: Engine, release: Path) -> None:
    import re

    from ecohub.ingest.cnemc_water import read_release
    from ecohub.ingest.national import import_water_release

    year = re.search(r"(20\d\d)\d{4}", release.name)
    records = read_release(release, year=int(year.group(1)) if year else None, rejected=[])
    result = import_water_release(store, records, "demo")
    console.print(
        f"surface water: {result.records} sections of the national release "
        f"({result.values:,} values)"
    )


def _judge_alarms(store: Engine, first: dt.date | None, last: dt.date | None) -> None:
    """The alarm rules over the loaded history (a bulk load raises no live alarms)."""
    from ecohub.alarms.replay import heavy_pollution_warnings, judge_history
    from ecohub.clock import local_day_start

    if first is None or last is None:
        return
    start, end = local_day_start(first), local_day_start(last + dt.timedelta(days=1))
    done = judge_history(store, start, end)
    warnings = heavy_pollution_warnings(store, start, end)
    console.print(
        f"alarm rules judged over {done.days} days: {done.events} alarm events, "
        f"{len(warnings)} heavy-pollution warnings in {len({w.city for w in warnings})} cities"
    )


DEMO_DRAW = "演示：双随机抽查（模拟执法人员）"
DEMO_INSPECTORS = (
    ("DEMO-BJ-1", "110000"),
    ("DEMO-BJ-2", "110000"),
    ("DEMO-SH-1", "310000"),
    ("DEMO-SH-2", "310000"),
    ("DEMO-GZ-1", "440100"),
    ("DEMO-GZ-2", "440100"),
    ("DEMO-HB-1", "130100"),
    ("DEMO-HB-2", "130100"),
    ("DEMO-HL-1", "230100"),
    ("DEMO-HL-2", "230100"),
)


def _supervision_demo(store: Engine) -> None:
    """The demo enterprises in the inspection-object directory, simulated inspectors
    (named as such) and one published double-random draw, so that the supervision pages
    show something; loading the demo again adds no second draw."""
    from ecohub.supervision import service
    from ecohub.supervision.draw import DrawRules

    with store.connect() as connection:
        usccs = [row[0] for row in connection.execute(select(Enterprise.uscc)).all()]
    for number, uscc in enumerate(sorted(usccs)):
        service.set_object(store, uscc, "key" if number % 2 == 0 else "general", "demo")
    for code, region in DEMO_INSPECTORS:
        service.set_inspector(store, code, f"模拟执法人员 {code}", region, "demo")
    if any(item["title"] == DEMO_DRAW for item in service.list_draws(store, public=False)):
        return
    drawn = service.run_draw(store, DEMO_DRAW, DrawRules({"key": 1.0, "general": 0.5}), "demo")
    service.publish_draw(store, drawn["id"], "demo")
    console.print(
        f"supervision: {len(usccs)} enterprises in the object directory, "
        f"{len(DEMO_INSPECTORS)} simulated inspectors, draw {drawn['id']} published (seed "
        f"{drawn['seed']}, {len(drawn['picks'])} enterprises drawn)"
    )


def _permits_demo(store: Engine) -> None:
    """A renewal of the first demo enterprise's permit, filed for the demonstration and
    awaiting acceptance, so that the service hall shows the procedure (once)."""
    from ecohub.permits import lifecycle

    uscc = "91110106MA00DEM01H"
    if any(row["uscc"] == uscc for row in lifecycle.list_applications(store)):
        return
    limits = [
        {
            "outlet_code": "DA001",
            "parameter_code": code,
            "concentration_limit": limit,
            "unit": "mg/m³",
        }
        for code, limit in (("a34013", 5), ("a21026", 10), ("a21002", 30))
    ]
    try:
        made = lifecycle.apply(
            store,
            uscc=uscc,
            kind="renewal",
            management_class="key",
            permit_no=f"{uscc}001P",
            content={"limits": limits, "reason": "演示数据：许可证延续申请"},
            actor="demo",
        )
    except lifecycle.PermitError as error:  # the registry lacks the demo permit
        console.print(f"[yellow]permits: no demonstration application ({error})[/yellow]")
        return
    console.print(f"permits: a demonstration renewal application {made['reference']} filed")


# Handling agencies of the demo regions (the province above each city's).
DEMO_AGENCIES = (
    ("BJ", "北京市生态环境局", "110000", None),
    ("SH", "上海市生态环境局", "310000", None),
    ("GD", "广东省生态环境厅", "440000", None),
    ("GZ", "广州市生态环境局", "440100", "GD"),
    ("HEB", "河北省生态环境厅", "130000", None),
    ("SJZ", "石家庄市生态环境局", "130100", "HEB"),
    ("HLJ", "黑龙江省生态环境厅", "230000", None),
    ("HRB", "哈尔滨市生态环境局", "230100", "HLJ"),
)
# Made-up complaints near each demo enterprise (medium, text), labelled as such.
DEMO_COMPLAINTS = {
    "91110106MA00DEM01H": (
        ("noise", "热电厂冷却塔晚上噪声很大，影响休息"),
        ("air", "电厂烟囱冒白烟，附近有刺鼻气味"),
        ("noise", "晚上十一点以后电厂那边还是嗡嗡响，睡不着"),
    ),
    "91310115MA1HDEM025": (
        ("air", "化工厂晚上偷排废气，刺鼻的化学品气味"),
        ("air", "附近化工厂排放异味，晚上味道特别大，窗户不敢开"),
        ("air", "又闻到化工厂那股臭味了，头晕恶心"),
        ("water", "化工厂旁边的河道水发黑，有油花"),
    ),
    "91440101MA5CDEM03X": (
        ("water", "污水处理厂出水口发臭，河水浑浊"),
        ("air", "污水厂臭味飘到小区，夏天尤其严重"),
    ),
    "91130100MA0DDEM04X": (
        ("air", "钢铁厂粉尘很大，车上落满黑灰"),
        ("air", "钢厂夜里冒黄烟，空气很呛"),
        ("noise", "钢厂运料车半夜进出，噪音扰民"),
    ),
    "91230100MA1BDEM05Q": (("air", "热电厂烟囱冒黑烟，烧煤味很重"),),
}


def _complaints_demo(store: Engine) -> None:
    """The demo regions' handling agencies (the demo agency user is staff of Beijing's)
    and a few made-up complaints near the demo enterprises (ticket source ``DEMO-…``,
    address 演示数据),
    so that the complaint pages and statistics show something; loading again files
    nothing twice."""
    from ecohub.complaints import handling, service
    from ecohub.complaints.intake import Submission, check, file_complaints

    for code, name, region, parent in DEMO_AGENCIES:
        handling.add_agency(store, code, name, region, "demo", parent_code=parent)
    handling.add_handler(store, "agency", "BJ", "demo")
    settings = get_settings()
    with store.connect() as connection:
        places = {
            row.uscc: (row.longitude, row.latitude)
            for row in connection.execute(select(Enterprise)).all()
            if row.longitude is not None
        }
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    batch = []
    for uscc, items in DEMO_COMPLAINTS.items():
        if uscc not in places:
            continue
        lon, lat = places[uscc]
        for number, (medium, words) in enumerate(items):
            batch.append(
                check(
                    Submission(
                        medium=medium,
                        text=words,
                        longitude=lon + 0.002 * (number % 3 - 1),
                        latitude=lat + 0.0015 * (number % 2),
                        observed_at=now - dt.timedelta(hours=6 * number + 2),
                        address="（演示数据，模拟举报）",
                        channel="hotline",
                        external_ref=f"DEMO-{uscc[-6:]}-{number}",
                    ),
                    now,
                )
            )
    filed = file_complaints(
        store, service.keys_of(settings), batch, "demo", service.link_settings(settings)
    )
    fresh = [item for item in filed if not item.repeat]
    console.print(
        f"complaints: {len(DEMO_AGENCIES)} handling agencies, {len(fresh)} made-up demonstration "
        f"complaints filed, marked 演示数据 ({len(filed) - len(fresh)} already there)"
    )


def _demo_user(store: Engine) -> None:
    import secrets

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.accounts.keys import Role
    from ecohub.accounts.users import User, create_user

    credentials = credentials_path()
    with Session(store) as session:
        if session.scalars(select(User).filter_by(username="agency")).first() is None:
            password = secrets.token_urlsafe(12)
            create_user(
                session, username="agency", password=password, role=Role.AGENCY, actor="demo"
            )
            session.commit()
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(f"agency {password}\n", encoding="utf-8")
            credentials.chmod(0o600)
            console.print(f"demo agency user: agency / {password} (kept in {credentials})")
        elif credentials.exists():
            console.print(f"demo agency user: see {credentials}")


def register(app: typer.Typer) -> None:
    """Add this group to ``app``."""
    app.add_typer(demo_app, name="demo")
