"""The ``ecohub`` command: the composition of every area's command group.

Every command reads the database from ``ECOHUB_DATABASE_URL`` (default: an SQLite file
under ``./var/``). The commands themselves live with what they act on: each area's
``cli.py`` defines its typer group and a ``register(app)`` that adds it here; the
commands of the ground and domain floors are in :mod:`ecohub.cli.store`, and
``serve``/``journal``/``rates`` in :mod:`ecohub.cli.serve`. Their shared kit (consoles,
the store, time parsing, progress bars) is :mod:`ecohub.commands`.
"""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from ecohub.accounts import cli as accounts_cli
from ecohub.alarms import cli as alarms_cli
from ecohub.assessment import cli as assessment_cli
from ecohub.cli import serve as serve_cli
from ecohub.cli import store as store_cli
from ecohub.complaints import cli as complaints_cli
from ecohub.demo import cli as demo_cli
from ecohub.ingest import bus_cli, cli_hj212
from ecohub.ingest import cli as ingest_cli
from ecohub.lake import cli as lake_cli
from ecohub.permits import cli as permits_cli
from ecohub.simulate import cli as simulate_cli
from ecohub.supervision import cli as supervision_cli
from ecohub.timeseries import partitions_cli

app = typer.Typer(
    help="EcoHub: eco-environment data platform (registry, HJ 212 ingest, store, open data).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Markdown: a docstring's paragraphs are reflowed to the terminal's width (their
    # hard-wrapped lines broke mid-sentence in narrow terminals).
    rich_markup_mode="markdown",
)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"ecohub {metadata.version('ecohub')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """EcoHub: eco-environment data platform (registry, HJ 212 ingest, store, open data)."""


# In the order `ecohub --help` lists them.
for group in (
    store_cli,
    partitions_cli,
    demo_cli,
    simulate_cli,
    ingest_cli,
    cli_hj212,
    serve_cli,
    bus_cli,
    accounts_cli,
    alarms_cli,
    assessment_cli,
    supervision_cli,
    complaints_cli,
    permits_cli,
    lake_cli,
):
    group.register(app)


if __name__ == "__main__":
    app()
