"""Browser sign-in sessions (docs/sessions.md) against the real embedded PostgreSQL: start, claim,
check, expiry, revocation (sign-out, deactivation, password reset), role changes; and the two cookie
routes through Starlette's test client, XSRF check included."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from mmos_core.core.db import session_scope
from mmos_core.models import WebSession
from mmos_core.services.auth import create_user
from mmos_core.services.users import reset_password, set_active, set_role
from mmos_core.services.web_sessions import (
    CLAIM_TTL,
    check_session,
    claim_session,
    end_session,
    secret_sha256,
    start_session,
)
from mmos_core.session_routes import CLAIM_PATH, COOKIE_NAME, END_PATH, session_routes

PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _make(username: str, role: str):
    with session_scope() as session:
        return create_user(session=session, username=username, role=role, password=PASSWORD)


def _start(user_id: int, *, ttl_hours: float = 12.0, now: dt.datetime = T0):
    with session_scope() as session:
        return start_session(session=session, user_id=user_id, ttl_hours=ttl_hours, now=now)


def _claim(code: str, now: dt.datetime = T0):
    with session_scope() as session:
        return claim_session(session=session, claim_code=code, now=now)


def _check(*, now: dt.datetime = T0, **which):
    with session_scope() as session:
        return check_session(session=session, now=now, **which)


def test_start_claim_check_stores_only_digests(clean_db):
    ada = _make("ada", "analyst")
    started = _start(ada.id)
    assert len(started.claim_code) >= 43 and started.expires_at == T0 + dt.timedelta(hours=12)
    pending = _check(session_id=started.session_id)
    assert pending is not None and pending.user == ada and not pending.claimed

    issued = _claim(started.claim_code, now=T0 + dt.timedelta(seconds=5))
    assert issued is not None and issued.session_id == started.session_id
    assert len(issued.token) >= 43 and issued.token != started.claim_code
    assert issued.max_age_s == 12 * 3600 - 5
    by_token = _check(token=issued.token)
    assert by_token is not None and by_token.user == ada and by_token.claimed

    with session_scope() as session:
        row = session.get(WebSession, started.session_id)
        assert row.token_sha256 == secret_sha256(issued.token)
        assert row.claim_sha256 is None and row.claim_expires_at is None
        stored = " ".join(str(v) for v in vars(row).values())
    assert issued.token not in stored and started.claim_code not in stored


def test_claim_code_works_once_and_only_in_time(clean_db):
    ada = _make("ada", "analyst")
    first = _start(ada.id)
    assert _claim(first.claim_code) is not None
    assert _claim(first.claim_code) is None  # used
    late = _start(ada.id)
    assert _claim(late.claim_code, now=T0 + CLAIM_TTL + dt.timedelta(seconds=1)) is None
    assert _check(session_id=late.session_id) is not None  # the tab that signed in stays signed in
    assert _claim("not-a-code") is None and _claim("") is None and _claim("x" * 10_000) is None


def test_unknown_or_malformed_token_is_no_one(clean_db):
    _make("ada", "analyst")
    assert _check(token="no-such-token") is None
    assert _check(token="") is None
    assert _check() is None
    assert _check(session_id=999) is None


def test_session_expires(clean_db):
    ada = _make("ada", "analyst")
    started = _start(ada.id, ttl_hours=1)
    issued = _claim(started.claim_code)
    assert _check(token=issued.token, now=T0 + dt.timedelta(minutes=59)) is not None
    assert _check(token=issued.token, now=T0 + dt.timedelta(hours=1)) is None
    assert _check(session_id=started.session_id, now=T0 + dt.timedelta(hours=2)) is None
    with pytest.raises(ValueError), session_scope() as session:
        start_session(session=session, user_id=ada.id, ttl_hours=0)


def test_sign_out_revokes_by_id_or_token(clean_db):
    ada = _make("ada", "analyst")
    one, two = _start(ada.id), _start(ada.id)
    token = _claim(two.claim_code).token
    with session_scope() as session:
        assert end_session(session=session, session_id=one.session_id, now=T0)
        assert not end_session(session=session, session_id=one.session_id, now=T0)  # idempotent
        assert end_session(session=session, token=token, now=T0)
    assert _check(session_id=one.session_id) is None
    assert _check(token=token) is None and _check(session_id=two.session_id) is None
    with session_scope() as session:
        reasons = session.scalars(select(WebSession.revoked_reason)).all()
    assert reasons == ["sign_out", "sign_out"]


def test_deactivation_and_password_reset_end_every_session(clean_db):
    root = _make("root", "admin")
    ada = _make("ada", "analyst")
    tab = _start(ada.id)
    token = _claim(_start(ada.id).claim_code).token
    mine = _start(root.id)
    with session_scope() as session:
        set_active(session=session, actor=root, user_id=ada.id, active=False)
    assert _check(session_id=tab.session_id) is None and _check(token=token) is None
    with session_scope() as session:
        set_active(session=session, actor=root, user_id=ada.id, active=True)
    assert _check(token=token) is None  # reactivating does not revive old sessions
    with pytest.raises(ValueError), session_scope() as session:  # no new session for an inactive account
        set_active(session=session, actor=root, user_id=ada.id, active=False)
        start_session(session=session, user_id=ada.id, ttl_hours=1)

    fresh = _start(root.id)
    with session_scope() as session:
        reset_password(session=session, actor=root, user_id=root.id, password="another long one")
    assert _check(session_id=fresh.session_id) is None and _check(session_id=mine.session_id) is None
    with session_scope() as session:
        reasons = {r for (r,) in session.execute(select(WebSession.revoked_reason))}
    assert reasons == {"deactivated", "password_reset"}


def test_role_change_applies_at_next_check(clean_db):
    root = _make("root", "admin")
    ada = _make("ada", "analyst")
    token = _claim(_start(ada.id).claim_code).token
    with session_scope() as session:
        set_role(session=session, actor=root, user_id=ada.id, role="reviewer")
    assert _check(token=token).user.role.value == "reviewer"


# --- the cookie routes -----------------------------------------------------------------------------


@pytest.fixture()
def client(clean_db):
    with TestClient(Starlette(routes=session_routes()), base_url="http://testserver") as c:
        yield c


def _xsrf(client: TestClient) -> dict[str, str]:
    """Streamlit's XSRF cookie on the client and the header its frontend sends (the cookie's value)."""
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

    token = generate_xsrf_token_string()
    client.cookies.set("_streamlit_xsrf", token)
    return {"X-Xsrftoken": token}


def test_claim_route_sets_httponly_cookie_once(client):
    ada = _make("ada", "analyst")
    started = _start(ada.id, now=dt.datetime.now(dt.UTC))
    headers = _xsrf(client)
    response = client.post(CLAIM_PATH, json={"code": started.claim_code}, headers=headers)
    assert response.status_code == 204, response.text
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/" in set_cookie
    assert "Max-Age=43" in set_cookie  # about 12 h in seconds
    assert response.headers["cache-control"] == "no-store"
    token = client.cookies.get(COOKIE_NAME)
    assert _check(token=token, now=dt.datetime.now(dt.UTC)).user == ada

    again = client.post(CLAIM_PATH, json={"code": started.claim_code}, headers=headers)
    assert again.status_code == 410 and "set-cookie" not in again.headers
    assert client.post(CLAIM_PATH, content=b"not json", headers=headers).status_code == 400


def test_routes_refuse_without_xsrf_or_from_another_site(client):
    ada = _make("ada", "analyst")
    started = _start(ada.id, now=dt.datetime.now(dt.UTC))
    assert client.post(CLAIM_PATH, json={"code": started.claim_code}).status_code == 403  # no XSRF token
    headers = _xsrf(client)
    cross = client.post(CLAIM_PATH, json={"code": started.claim_code}, headers={**headers, "Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert client.post(END_PATH).status_code == 403  # cookie but no header: the end route checks the same
    assert client.post(END_PATH, headers={"X-Xsrftoken": "2|00|00|0"}).status_code == 403
    assert _check(session_id=started.session_id, now=dt.datetime.now(dt.UTC)).claimed is False


def test_end_route_revokes_and_deletes_the_cookie(client):
    ada = _make("ada", "analyst")
    started = _start(ada.id, now=dt.datetime.now(dt.UTC))
    headers = _xsrf(client)
    assert client.post(CLAIM_PATH, json={"code": started.claim_code}, headers=headers).status_code == 204
    token = client.cookies.get(COOKIE_NAME)
    response = client.post(END_PATH, headers=headers)
    assert response.status_code == 204
    assert f'{COOKIE_NAME}=""' in response.headers["set-cookie"] and "Max-Age=0" in response.headers["set-cookie"]
    assert _check(token=token, now=dt.datetime.now(dt.UTC)) is None
    assert client.cookies.get(COOKIE_NAME) is None
