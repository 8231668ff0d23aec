"""The two HTTP routes `app.py` mounts beside Streamlit (through `st.App`) to set and clear the
browser's HttpOnly session cookie (docs/sessions.md).

A Streamlit script talks to the browser over a WebSocket and cannot set a cookie; JavaScript can,
but not an HttpOnly one. So the signed-in page hands the browser a one-time claim code, and a
`fetch` from the page trades it here for the session token, which only this response carries:

- `POST {base}/_mmos/session/claim`, JSON body `{"code": "<claim code>"}` → 204 with
  `Set-Cookie: mmos_session=<token>; HttpOnly; SameSite=Strict; Path=/; Max-Age=<to expiry>`
  (plus `Secure` over HTTPS); 400 on a malformed body, 403 when the request is cross-site or
  fails Streamlit's XSRF check, 410 when the code is unknown, used or expired.
- `POST {base}/_mmos/session/end` → 204, the cookie's session revoked and the cookie deleted;
  403 as above.

Both refuse a request whose `Origin` is not this server and, while Streamlit's XSRF protection is
on (`server.enableXsrfProtection`, the default), one without the `X-Xsrftoken` header matching the
`_streamlit_xsrf` cookie — the same double-submit check Streamlit applies to its upload route.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from mmos_core.core.db import session_scope
from mmos_core.services.web_sessions import IssuedToken, claim_session, end_session

if TYPE_CHECKING:
    from starlette.requests import Request

#: The session cookie's name (docs/sessions.md); app.py reads it back through `st.context.cookies`.
COOKIE_NAME = "mmos_session"
CLAIM_PATH = "/_mmos/session/claim"
END_PATH = "/_mmos/session/end"
#: Largest request body accepted (a claim is about 60 bytes of JSON).
MAX_BODY_BYTES = 1024


def base_path() -> str:
    """Streamlit's `server.baseUrlPath` as a path prefix ("" or "/prefix"): `st.App` does not prefix
    the routes it is given, so they are mounted under it here, where the page's `fetch` calls them."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""


def _cookie_path() -> str:
    return base_path() or "/"


def _xsrf_ok(request: Request) -> bool:
    # Streamlit's own check (its upload route's): header token == cookie token, compared in constant time.
    from streamlit.web.server.server_util import is_xsrf_enabled
    from streamlit.web.server.starlette.starlette_app_utils import validate_xsrf_token
    from streamlit.web.server.starlette.starlette_server_config import XSRF_COOKIE_NAME

    if not is_xsrf_enabled():
        return True
    return validate_xsrf_token(request.headers.get("x-xsrftoken"), request.cookies.get(XSRF_COOKIE_NAME))


def refusal(request: Request) -> Response | None:
    """403 for a cross-site request or a failed XSRF check; None when the request may proceed."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return Response("cross-site request refused", status_code=403)
    if not _xsrf_ok(request):
        return Response("XSRF token missing or invalid", status_code=403)
    return None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _claim_in_db(code: str) -> IssuedToken | None:
    with session_scope() as session:
        return claim_session(session=session, claim_code=code)


def _end_in_db(token: str) -> None:
    with session_scope() as session:
        end_session(session=session, token=token, reason="sign_out")


async def claim(request: Request) -> Response:
    """Trade the JSON body's one-time `code` for the HttpOnly session cookie (see the module docstring)."""
    refused = refusal(request)
    if refused is not None:
        return refused
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return Response("body too large", status_code=400)
    try:
        code = json.loads(body)["code"]
    except (ValueError, KeyError, TypeError):
        return Response('expected {"code": "..."}', status_code=400)
    if not isinstance(code, str):
        return Response('expected {"code": "..."}', status_code=400)
    issued = await run_in_threadpool(_claim_in_db, code)
    if issued is None:
        return _no_store(Response("unknown, used or expired code", status_code=410))
    response = Response(status_code=204)
    response.set_cookie(
        COOKIE_NAME,
        issued.token,
        max_age=issued.max_age_s,
        path=_cookie_path(),
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return _no_store(response)


async def end(request: Request) -> Response:
    """Revoke the session of the presented cookie (if any) and delete the cookie."""
    refused = refusal(request)
    if refused is not None:
        return refused
    token = request.cookies.get(COOKIE_NAME)
    if token:
        await run_in_threadpool(_end_in_db, token)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path=_cookie_path(), secure=_secure(request), httponly=True, samesite="strict")
    return _no_store(response)


def session_routes() -> list[Route]:
    """The claim and end routes, under `base_path()`, for `st.App(..., routes=...)`."""
    prefix = base_path()
    return [
        Route(prefix + CLAIM_PATH, claim, methods=["POST"]),
        Route(prefix + END_PATH, end, methods=["POST"]),
    ]
