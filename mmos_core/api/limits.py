"""Request size limit of the HTTP API (docs/api.md "Limits"): a body larger than the envelope around
`Settings.max_source_bytes` is refused with 413 before it is read whole.

The exact limit on a source's text or file is intake's (`text.intake`, `max_source_bytes`, also 413);
the envelope only leaves room for JSON escaping and multipart framing around it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmos_core.api.errors import ApiError, error_response
from mmos_core.core.config import get_settings

#: Bytes allowed around the source itself (form fields, multipart boundaries).
ENVELOPE_BYTES = 64 * 1024


def request_limit() -> int:
    """Largest request body accepted, in bytes: 2 × `max_source_bytes` (JSON escapes) + ENVELOPE_BYTES."""
    return 2 * get_settings().max_source_bytes + ENVELOPE_BYTES


def _refusal(size: int | None, limit: int) -> str:
    said = f"{size:,} bytes" if size is not None else "over the limit"
    return f"The request body is {said}; at most {limit:,} bytes are accepted (sources up to {get_settings().max_source_bytes:,} bytes)."


class BodyLimit:
    """ASGI middleware: 413 when Content-Length is over the limit, or when the body read so far passes it."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int] = request_limit):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(413, _refusal(int(declared), limit))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # raised inside the route's body read, so the app's ApiError handler answers it
                    raise ApiError(413, _refusal(None, limit))
            return message

        await self.app(scope, counted, send)
