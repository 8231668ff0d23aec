"""`mmos conversations ...`: import, run and analyse multi-agent conversations."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Multi-agent conversations: import, run, analyse (seed 004).")
