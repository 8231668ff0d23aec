"""`mmos prometheus serve|dump`: the workbench's Prometheus metrics (services/metrics.py, docs/deploy.md "Metrics").

A group of its own, not a subcommand of `mmos metrics`: that name is already the command printing the hourly
inference rollup (cli/runtime.py), and Typer cannot hang subcommands under a command. `prometheus` also says
what the output is for.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Prometheus metrics of batches, LLM calls, queues, workers and budget.")
log = logging.getLogger(__name__)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="TCP port of the /metrics endpoint (9464 is Prometheus' default exporter range).")] = 9464,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
) -> None:
    """Serve GET /metrics (Prometheus text format) until interrupted; every scrape reads PostgreSQL and Redis."""
    from prometheus_client import start_http_server

    from mmos_core.services.metrics import build_registry

    server, thread = start_http_server(port, addr=host, registry=build_registry())
    bound = server.server_address[1]
    typer.echo(f"Prometheus metrics on http://{host}:{bound}/metrics", err=True)
    log.info("serving Prometheus metrics on %s:%s", host, bound)
    try:
        while thread.is_alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


@app.command("dump")
def dump() -> None:
    """Print one scrape in the Prometheus text format (for a node_exporter textfile, or to look)."""
    from prometheus_client import generate_latest

    from mmos_core.services.metrics import build_registry

    typer.echo(generate_latest(build_registry()).decode(), nl=False)
