"""Every refusal of the HTTP API as JSON `{"error": message}` with its status (docs/api.md "Errors").

The services raise exceptions whose messages are written to be shown (see their docstrings); here
each kind gets its status. Anything unexpected is a 500 whose body says only that; the traceback
goes to the server log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmos_core.services.auth import AuthError
from mmos_core.services.feedback import FeedbackError
from mmos_core.services.review import ReviewError
from mmos_core.services.sources import DuplicateSourceError
from mmos_core.text.intake import IntakeError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal with its HTTP status and a message safe to show (`headers`: e.g. WWW-Authenticate on a 401)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message}` with this status."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One sentence out of pydantic / FastAPI validation errors: `where: what` per error, `; `-separated.

    A body that is not JSON reads `body: malformed JSON (Expecting value at line 1 column 1)`.
    """
    parts = []
    for err in errors[:10]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "request"
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error")
            parts.append(f"{where}: malformed JSON" + (f" ({detail})" if detail else ""))
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return "; ".join(parts) + more


def install(app: FastAPI, token_refusal: Callable[[Request], ApiError | None] | None = None) -> None:
    """Register the handlers on `app` (most specific exception first wins: Starlette walks the MRO).

    `token_refusal(request)` (run in the thread pool) is asked before a request validation error is
    answered: FastAPI decodes a JSON body before the route's token check, and a caller without a
    valid token gets its 401, not the 422.
    """

    def status_for(status: int):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return error_response(status, str(exc))

        return handler

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        refusal = await run_in_threadpool(token_refusal, request) if token_refusal else None
        if refusal is not None:
            return error_response(refusal.status, refusal.message, refusal.headers)
        return error_response(422, validation_message(list(exc.errors())))

    async def refused_intake(request: Request, exc: IntakeError) -> JSONResponse:
        # a text or file over Settings.max_source_bytes is "too large" (413); any other refusal is unprocessable
        return error_response(413 if exc.reason == "too_large" else 422, str(exc))

    async def invalid_value(request: Request, exc: ValidationError) -> JSONResponse:
        return error_response(422, validation_message(list(exc.errors())))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal error; the server log has the details.")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ValidationError, invalid_value)
    app.add_exception_handler(IntakeError, refused_intake)
    app.add_exception_handler(DuplicateSourceError, status_for(409))
    # what is left of a review refusal once the route checked the permission (403) and the fragment (404):
    # the verdict belongs to someone else
    app.add_exception_handler(ReviewError, status_for(409))
    app.add_exception_handler(FeedbackError, status_for(400))
    app.add_exception_handler(AuthError, status_for(400))
    app.add_exception_handler(LookupError, status_for(404))  # unknown source, model, token
    # programming errors that subclass LookupError / ValueError are not the client's fault
    app.add_exception_handler(KeyError, unexpected)
    app.add_exception_handler(IndexError, unexpected)
    app.add_exception_handler(UnicodeError, unexpected)
    app.add_exception_handler(ValueError, status_for(400))
    app.add_exception_handler(Exception, unexpected)
