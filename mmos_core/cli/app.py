"""`mmos` command line: every step of the workbench, scriptable.

    mmos up                      provision, start services + LLM server + worker, serve the UI
    mmos status                  services, LLM server, queues, workers
    mmos services start|stop     embedded PostgreSQL + Redis
    mmos migrate                 alembic upgrade head
    mmos models provision        GGUF weights + ONNX embedder into the cache dir
    mmos llm start|stop          the local llama.cpp server
    mmos worker                  an RQ worker on the high, default, low queues
    mmos ingest FILE ...         add a source
    mmos extract SOURCE -m M ... queue a source for models (optionally wait)
    mmos compare SOURCE          per-model comparison of a source's completed batches
    mmos users create|list|set-role|deactivate|reset-password   accounts and roles
"""

from __future__ import annotations

import typer

from mmos_core.cli import api_cli, catalog, conversations, data, export, metrics_cli, quality, runtime, sources, tokens, users
from mmos_core.core.logging import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help="MMOS workbench command line.", callback=lambda: setup_logging("cli"))

#: Every command module, in `mmos --help` order: (group name or None for top-level commands, its Typer app).
COMMAND_GROUPS: list[tuple[str | None, typer.Typer]] = [
    (None, runtime.app),
    (None, sources.app),
    (None, data.app),
    ("users", tokens.attach(users.app)),  # `mmos users token …` hangs under users
    ("quality", quality.app),
    ("catalog", catalog.app),
    ("conversations", conversations.app),
    ("export", export.app),  # fragments | preferences as CSV / JSONL / Parquet (docs/export.md)
    (None, api_cli.app),
    ("prometheus", metrics_cli.app),  # not under `mmos metrics`: that is the inference rollup command (cli/metrics_cli.py)
]
for group, sub in COMMAND_GROUPS:
    if group is None:
        app.add_typer(sub)
    else:
        app.add_typer(sub, name=group)


if __name__ == "__main__":
    app()
