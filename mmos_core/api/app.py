"""The HTTP API's app factory (docs/api.md): FastAPI over the same services as the UI.

`mmos api --host --port` serves `create_app()` with uvicorn; OpenAPI docs at `/docs` (`/openapi.json`).
Routes are plain `def` functions: FastAPI runs them in its thread pool, as the services are synchronous.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from mmos_core.api import auth, batches, comparison, errors, export, fragments, reports, sources, tokens
from mmos_core.api.limits import BodyLimit
from mmos_core.core.db import session_scope
from mmos_core.core.logging import request_context, setup_logging
from mmos_core.core.redis import get_redis

log = logging.getLogger(__name__)

DESCRIPTION = """The MMOS workbench over HTTP: add sources, queue them for models, follow the batches,
review fragments, compare models, read the quality reports, export.

Every endpoint but `GET /health` and `POST /tokens` needs `Authorization: Bearer <token>`; a token acts with
its owner's role and the UI's permissions. Errors are `{"error": message}`. Guide: docs/api.md."""


def health() -> JSONResponse:
    """`{"status": "ok" | "unavailable", "database": bool, "redis": bool}`, 200 when both answer, else 503.

    No token needed and no detail given (a load balancer's probe); `mmos health` says more.
    """
    checks: dict[str, Any] = {}
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        log.warning("health: database unavailable", exc_info=True)
        checks["database"] = False
    try:
        checks["redis"] = bool(get_redis().ping())
    except Exception:
        log.warning("health: redis unavailable", exc_info=True)
        checks["redis"] = False
    ok = all(checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)


class RequestId:
    """Pure ASGI middleware: binds the caller's `X-Request-ID` (else a new id) to every log line written
    while the request runs (`core.logging.request_context`) and echoes it in the response headers.
    Pure ASGI rather than `@app.middleware`, so errors raised by inner middleware keep their status."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64] or None
        with request_context(given) as rid:
            async def send_with_id(message) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1")))
                await send(message)

            await self.app(scope, receive, send_with_id)


def create_app() -> FastAPI:
    """A new app: every router, the `{"error": ...}` handlers (`api.errors`) and the body limit (`api.limits`)."""
    setup_logging("api")
    app = FastAPI(title="MMOS workbench API", version="1", description=DESCRIPTION, docs_url="/docs", redoc_url=None)

    errors.install(app, token_refusal=auth.token_refusal)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestId)  # outermost: every log line of a request carries its id
    app.add_api_route("/health", health, methods=["GET"], tags=["health"], summary="Database and Redis reachable?")
    for module in (tokens, sources, batches, fragments, comparison, reports, export):
        app.include_router(module.router)
    return app
