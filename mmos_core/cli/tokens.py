"""`mmos users token create|list|revoke`: personal API tokens (docs/api.md), from the shell of the deployment.

The shell is trusted as for `mmos users create`: no password is asked; the token is printed once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mmos_core.cli.common import fail

app = typer.Typer(no_args_is_help=True, help="Personal API tokens for the HTTP API (`mmos api`); the token is shown once.")


def attach(users_app: typer.Typer) -> typer.Typer:
    """`users_app` with this group under it as `token` (`mmos users token …`); returns `users_app` for COMMAND_GROUPS."""
    users_app.add_typer(app, name="token")
    return users_app


@app.command("create")
def token_create(
    username: Annotated[str, typer.Option(help="Whose token: it acts with this account's role.")],
    name: Annotated[str, typer.Option(help="What the token is for (shown in lists).")] = "cli",
) -> None:
    """Create a token for USERNAME and print it (only its SHA-256 is stored: copy it now)."""
    from mmos_core.core import db
    from mmos_core.services.api_tokens import create_token
    from mmos_core.services.auth import AuthError
    from mmos_core.services.users import find_user, system_actor

    try:
        with db.session_scope() as session:
            user = find_user(session=session, actor=system_actor(), username=username)
            new = create_token(session=session, user_id=user.id, name=name)
    except AuthError as exc:
        fail(str(exc))
    typer.echo(f"token {new.row.id} for {new.row.username} ({name}); shown once, store it now:", err=True)
    typer.echo(new.token)


@app.command("list")
def token_list(
    username: Annotated[str | None, typer.Option(help="Only this account's tokens.")] = None,
) -> None:
    """Tokens with owner, name, creation, last use and revocation (never the token)."""
    from mmos_core.core import db
    from mmos_core.services.api_tokens import list_tokens
    from mmos_core.services.users import system_actor

    with db.session_scope() as session:
        rows = list_tokens(session=session, actor=system_actor(), all_users=True)
    if username:
        rows = [r for r in rows if r.username == username.strip().lower()]

    def when(t) -> str:
        return f"{t:%Y-%m-%d %H:%M}" if t else "-"

    typer.echo(f"{'id':>4} {'user':<20} {'name':<24} {'created':<16} {'last used':<16} revoked")
    for r in rows:
        typer.echo(f"{r.id:>4} {r.username:<20} {r.name[:24]:<24} {when(r.created_at):<16} {when(r.last_used_at):<16} {when(r.revoked_at)}")


@app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID: requests with it get 401 from now on."""
    from mmos_core.core import db
    from mmos_core.services.api_tokens import TokenNotFound, revoke_token
    from mmos_core.services.users import system_actor

    try:
        with db.session_scope() as session:
            row = revoke_token(session=session, actor=system_actor(), token_id=token_id)
    except TokenNotFound as exc:
        fail(str(exc))
    typer.echo(f"token {row.id} of {row.username} revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S %z}")
