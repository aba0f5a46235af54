"""``ecohub users`` (portal accounts: people) and ``ecohub keys`` (API keys: machines).

The account functions (and argon2, which hashes passwords) are imported when a command
runs: see :mod:`ecohub.commands`."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.commands import actor, console, engine, err_console, fail
from ecohub.registry.models import Enterprise

users_app = typer.Typer(help="Portal users: people who sign in with a password.")
keys_app = typer.Typer(help="API keys of machines uploading data or calling the API.")


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise fail(f"role must be one of {', '.join(r.value for r in Role)}") from None


def _enterprise_id(session: Session, uscc: str | None) -> int | None:
    """The id of the enterprise with credit code ``uscc`` (None without one)."""
    if not uscc:
        return None
    found = session.scalars(select(Enterprise).filter_by(uscc=uscc)).one_or_none()
    if found is None:
        raise fail(f"no enterprise with USCC {uscc}")
    return found.id


def _password(given: str | None) -> str:
    if given:
        return given
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[
        str,
        typer.Option(help="admin, agency, inspector (named by badge code), enterprise or public."),
    ] = "agency",
    enterprise: Annotated[
        str | None, typer.Option(help="Unified social credit code (enterprise users).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="The password (asked for when not given; prefer being asked)."),
    ] = None,
) -> None:
    """Add a portal user."""
    from ecohub.accounts import users as accounts

    chosen = _role(role)
    with Session(engine()) as session:
        enterprise_id = _enterprise_id(session, enterprise)
        try:
            accounts.create_user(
                session,
                username=username,
                password=_password(password),
                role=chosen,
                actor=actor(),
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
    from ecohub.accounts import users as accounts

    with Session(engine()) as session:
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
    from ecohub.accounts import users as accounts

    with Session(engine()) as session:
        try:
            accounts.set_password(session, username, _password(password), actor())
        except accounts.UserError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(f"password of {username} changed")


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Disable a user at once (their sessions end)."""
    from ecohub.accounts import users as accounts

    with Session(engine()) as session:
        try:
            accounts.disable_user(session, username, actor())
        except accounts.UserError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(f"disabled {username}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    role: Annotated[str, typer.Option(help="admin, agency, enterprise or operator.")] = "operator",
    enterprise: Annotated[
        str | None, typer.Option(help="Unified social credit code (enterprise keys).")
    ] = None,
) -> None:
    """Issue an API key; it is printed once and stored only as a hash."""
    from ecohub.accounts.keys import issue_key

    chosen = _role(role)
    with Session(engine()) as session:
        enterprise_id = _enterprise_id(session, enterprise)
        try:
            key = issue_key(
                session,
                name=name,
                role=chosen,
                created_by=actor(),
                enterprise_id=enterprise_id,
            )
        except ValueError as error:
            err_console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None
        session.commit()
    console.print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (name, role, lookup id, created, revoked) — never the secrets."""
    from ecohub.accounts.keys import ApiKey

    with Session(engine()) as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            console.print(f"{key.lookup}  {key.role:<10} {key.name}  ({state})")


@keys_app.command("revoke")
def keys_revoke(lookup: Annotated[str, typer.Argument(help="The key's 8-character id.")]) -> None:
    """Revoke an API key at once."""
    from ecohub.accounts.keys import revoke_key

    with Session(engine()) as session:
        if not revoke_key(session, lookup):
            err_console.print(f"[red]no active key {lookup}[/red]")
            raise typer.Exit(1)
        session.commit()
    console.print(f"revoked {lookup}")


def register(app: typer.Typer) -> None:
    """Add these groups to ``app``."""
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
