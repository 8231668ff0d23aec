"""Helpers shared by the `mmos` command modules."""

from __future__ import annotations

from pathlib import Path

import typer

#: The checkout (for `streamlit run app.py` and the default data dir).
REPO_ROOT = Path(__file__).resolve().parents[2]


def fail(message: str, code: int = 1) -> None:
    """Print `message` in red on stderr and exit with `code`.

    Raises:
        typer.Exit: always.
    """
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def redact(url: str) -> str:
    """`url` with its password hidden (`postgresql://u:***@host/db`); the URL unchanged if it cannot be parsed."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url

