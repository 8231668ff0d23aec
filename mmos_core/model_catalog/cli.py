"""`mmos catalog ...`: sync the model catalog, recommendations, feedback imports."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Model catalog and recommendations (seed 002).")
