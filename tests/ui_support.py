"""Helpers shared by the AppTest files: a real signed-in account and the text of elements."""

from __future__ import annotations


def signed_in(role: str, username: str | None = None):
    """A real account of this role, as the sign-in page would leave it in the session."""
    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        return create_user(
            session=session, username=username or f"{role}-user", role=role, password="correct horse battery"
        )


def texts(elements) -> list[str]:
    """The values of AppTest elements (markdown, captions, alerts) as strings."""
    return [str(e.value) for e in elements]
