"""``ecohub demo load``: the demo registry, real CNEMC data when the shared folder holds
it (else labelled simulated values), and a demo agency user."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ecohub.commands import console, engine, print_report
from ecohub.registry.importer import import_file

demo_app = typer.Typer(help="Demo data for a first look.")
DEMO_CREDENTIALS = Path("var") / "demo-credentials.txt"


@demo_app.command("load")
def demo_load(
    days: Annotated[int, typer.Option(min=1, max=366, help="Days of air and water data.")] = 30,
    cnemc_dir: Annotated[
        Path, typer.Option(help="Folder of real CNEMC china_sites_YYYYMMDD.csv files.")
    ] = Path("../shared/data/cnemc"),
) -> None:
    """Load the demo: the registry (air and water sites, enterprises, permits, outlets,
    points), real CNEMC data when the folder holds it (else labelled simulated values),
    and an agency user whose password is printed and kept in var/demo-credentials.txt."""
    import secrets

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from ecohub.accounts.keys import Role
    from ecohub.accounts.users import User, create_user
    from ecohub.demo import backfill

    store = engine()
    path = Path(str(files("ecohub.demo") / "registry.json"))
    report = import_file(store, path, "demo")
    print_report(report, "demo registry")
    real = sorted(cnemc_dir.glob("china_sites_*.csv")) if cnemc_dir.is_dir() else []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        if real:
            task = progress.add_task("real CNEMC files", total=min(days, len(real)))
            loaded = backfill.load_cnemc(
                store, cnemc_dir, days, lambda n: progress.advance(task, n)
            )
        else:
            task = progress.add_task("simulated stations", total=backfill.station_count(store))
            loaded = backfill.simulate(store, days, progress=lambda n: progress.advance(task, n))
    if loaded.source == "simulated" and loaded.values == 0:
        console.print("simulated demo values are up to date")
    elif loaded.source == "cnemc":
        console.print(f"loaded {loaded.values:,} real values from {loaded.files} CNEMC files")
    else:
        console.print(
            f"[yellow]{cnemc_dir} holds no CNEMC files: loaded {loaded.values:,} SIMULATED air "
            f"and water values for the last {days} days (source '{backfill.SIMULATED_SOURCE}'), "
            "so that the map and charts have something to show. They are not measurements.[/yellow]"
        )
    with Session(store) as session:
        if session.scalars(select(User).filter_by(username="agency")).first() is None:
            password = secrets.token_urlsafe(12)
            create_user(
                session, username="agency", password=password, role=Role.AGENCY, actor="demo"
            )
            session.commit()
            DEMO_CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
            DEMO_CREDENTIALS.write_text(f"agency {password}\n", encoding="utf-8")
            DEMO_CREDENTIALS.chmod(0o600)
            console.print(f"demo agency user: agency / {password} (kept in {DEMO_CREDENTIALS})")
        elif DEMO_CREDENTIALS.exists():
            console.print(f"demo agency user: see {DEMO_CREDENTIALS}")


def register(app: typer.Typer) -> None:
    """Add this group to ``app``."""
    app.add_typer(demo_app, name="demo")
