"""`mmos api`: serve the HTTP API (docs/api.md) with uvicorn.

The CLI and the API are sibling entry points (pyproject.toml's layers contract), so the app factory
is named by its dotted path, as jobs are, and never imported here.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False)

#: The app factory uvicorn calls (`factory=True`).
APP_FACTORY = "mmos_core.api.app:create_app"


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8600,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs); tokens: `mmos users token create` or `POST /tokens`."""
    import uvicorn

    typer.echo(f"MMOS API on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level, proxy_headers=True,
                log_config=None)  # the app's own logging setup (core/logging.py) formats uvicorn's lines too
