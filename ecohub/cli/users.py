"""``ecohub users``: portal accounts (people), beside ``ecohub keys`` (machines).

The account functions (and argon2, which hashes passwords) are imported when a command
runs: see :mod:`ecohub.cli.main`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.api.keys import Role
from ecohub.config import get_settings
from ecohub.registry.models import Enterprise

users_app = typer.Typer(help="Portal users: people who sign in with a password.")
console = Console()
err_console = Console(stderr=True)


def _engine() -> Engine:
    from ecohub.cli.main import engine

    return engine()


def _password(given: str | None) -> str:
    if given:
        return given
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[str, typer.Option(help="admin, agency, enterprise or public.")] = "agency",
    enterprise: Annotated[
        str | None, typer.Option(help="Unified social credit code (enterprise users).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="The password (asked for when not given; prefer being asked)."),
    ] = None,
) -> None:
    """Add a portal user."""
    from ecohub.api import users as accounts

    try:
        chosen = Role(role)
    except ValueError:
        err_console.print(f"[red]role must be one of {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None
    with Session(_engine()) as session:
        enterprise_id = None
        if enterprise:
            found = session.scalars(select(Enterprise).filter_by(uscc=enterprise)).one_or_none()
            if found is None:
                err_console.print(f"[red]no enterprise with USCC {enterprise}[/red]")
                raise typer.Exit(2)
            enterprise_id = found.id
        try:
            accounts.create_user(
                session,
                username=username,
                password=_password(password),
                role=chosen,
                actor=get_settings().actor,
                enterprise_id=enterprise_id,
            )
        except accounts.UserError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(f"added {role} user {username}")


@users_app.command("list")
def users_list() -> None:
    """List users (name, role, state) — never their hashes."""
    from ecohub.api import users as accounts

    with Session(_engine()) as session:
        for user in accounts.list_users(session):
            state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
            console.print(f"{user.username:<20} {user.role:<10} ({state})")


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument()],
    password: Annotated[
        str | None, typer.Option(help="The new password (asked if absent).")
    ] = None,
) -> None:
    """Set a user's password; their open sessions end."""
    from ecohub.api import users as accounts

    with Session(_engine()) as session:
        try:
            accounts.set_password(session, username, _password(password), get_settings().actor)
        except accounts.UserError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(f"password of {username} changed")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user at once (their sessions end)."""
    from ecohub.api import users as accounts

    with Session(_engine()) as session:
        try:
            accounts.disable_user(session, username, get_settings().actor)
        except accounts.UserError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(f"disabled {username}")
