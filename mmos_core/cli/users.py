"""`mmos users …`: accounts and roles (no password hash is ever printed)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mmos_core.cli.common import fail

# --- users --------------------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, help="Accounts and roles (no password hash is ever printed).")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name (stored lower-case).")],
    role: Annotated[str, typer.Option(help="analyst, reviewer, manager or admin.")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail (links a later single sign-on).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")] = False,
) -> None:
    """Create a local account; the password is prompted for (hidden, twice) or read from stdin."""
    from mmos_core.core import db
    from mmos_core.services.auth import AuthError
    from mmos_core.services.users import add_user, system_actor

    password = _read_password(password_stdin)
    try:
        with db.session_scope() as session:
            row = add_user(
                session=session, actor=system_actor(), username=username, role=role, password=password,
                password_again=password, display_name=display_name, email=email,
            )
    except AuthError as exc:
        fail(str(exc))
    typer.echo(f"created {row.username} ({row.role.value}), id {row.id}")


@app.command("list")
def users_list() -> None:
    """Accounts with role, state and last login."""
    from mmos_core.core import db
    from mmos_core.services.users import list_users, system_actor

    with db.session_scope() as session:
        rows = list_users(session=session, actor=system_actor())
    typer.echo(f"{'id':>4} {'username':<24} {'role':<9} {'active':<6} {'sign-in':<14} {'last login':<16} email")
    for r in rows:
        how = "+".join(k for k, on in (("password", r.local_password), ("sso", r.single_sign_on)) if on)
        last = f"{r.last_login_at:%Y-%m-%d %H:%M}" if r.last_login_at else "-"
        typer.echo(f"{r.id:>4} {r.username:<24} {r.role.value:<9} {'yes' if r.is_active else 'no':<6} {how:<14} {last:<16} {r.email or ''}")


def _user_change(username: str, change) -> None:
    from mmos_core.core import db
    from mmos_core.services.auth import AuthError
    from mmos_core.services.users import find_user, system_actor

    try:
        with db.session_scope() as session:
            row = find_user(session=session, actor=system_actor(), username=username)
            row = change(session, system_actor(), row.id)
    except AuthError as exc:
        fail(str(exc))
    typer.echo(f"{row.username}: role {row.role.value}, {'active' if row.is_active else 'inactive'}")


@app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Give USERNAME another ROLE (the last active admin cannot be demoted)."""
    from mmos_core.services.users import set_role

    _user_change(username, lambda s, a, uid: set_role(session=s, actor=a, user_id=uid, role=role))


@app.command("deactivate")
def users_deactivate(
    username: str,
    reactivate: Annotated[bool, typer.Option("--reactivate", help="Allow sign-in again instead.")] = False,
) -> None:
    """Stop USERNAME from signing in (or allow it again with --reactivate)."""
    from mmos_core.services.users import set_active

    _user_change(username, lambda s, a, uid: set_active(session=s, actor=a, user_id=uid, active=reactivate))


@app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")] = False,
) -> None:
    """Set a new password for USERNAME (prompted, hidden, twice; or from stdin)."""
    from mmos_core.services.users import reset_password

    password = _read_password(password_stdin)
    _user_change(username, lambda s, a, uid: reset_password(session=s, actor=a, user_id=uid, password=password))

