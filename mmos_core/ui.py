"""Streamlit glue shared by the pages: cached resources and the status sidebar. No SQL, no rules."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from mmos_core.core.supervision_state import ChildSummary, child_summaries, read_state, state_path
from mmos_core.jobs.enqueue import failed_enqueues
from mmos_core.llm.server import server_url
from mmos_core.services.auth import CurrentUser, Permission, reload_user
from mmos_core.services.web_sessions import check_session, end_session, start_session
from mmos_core.session_routes import CLAIM_PATH, COOKIE_NAME, END_PATH, base_path

__all__ = ["failed_enqueues"]  # pages read after a transaction why a job could not be queued

_USER_KEY = "current_user"
# this tab's browser session (docs/sessions.md): its id, its unclaimed one-time code, a cookie to delete, a link to reopen
_WEB_SESSION_KEY = "web_session_id"
_CLAIM_KEY = "web_session_claim"
_END_COOKIE_KEY = "web_session_end_cookie"
_RETURN_KEY = "return_to"
_SOURCE_KEY = "selected_source_id"  # the source the analyst works on, shared by the pages that pick one


@st.cache_resource(show_spinner="Connecting to the database…")
def session_factory() -> sessionmaker[Session]:
    """The process's one sessionmaker (embedded services are started on first use)."""
    from mmos_core.core.db import get_sessionmaker

    return get_sessionmaker()


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction for a page action: commits at the end of the block, rolls back on error."""
    with session_factory().begin() as session:
        yield session


@st.cache_resource(show_spinner="Loading the model catalog…")
def model_names() -> list[str]:
    """Names of the models that can be queued now (local first, then cloud models with keys)."""
    from mmos_core.llm.catalog import available_models

    return [m.name for m in available_models()]


@st.cache_resource(show_spinner=False)
def local_model_names() -> list[str]:
    """The local (free) models: the default choice when queueing."""
    from mmos_core.llm.catalog import local_models

    return [m.name for m in local_models()]


@st.cache_data(ttl=5, show_spinner=False)
def runtime_status() -> dict[str, object]:
    """Workers alive and LLM server health, for the sidebar (refreshed every 5 s)."""
    from rq import Worker

    from mmos_core.core.redis import get_redis

    status: dict[str, object] = {"workers": len(Worker.all(connection=get_redis()))}
    try:
        from mmos_core.llm.server import is_healthy, is_running

        # A busy llama.cpp server answers nothing until its generation ends: a live process counts
        # as up (its own pid file, checked against /proc), an answering one as healthy.
        status["llm"] = is_running() or is_healthy(timeout_s=0.5)
    except Exception:
        status["llm"] = False
    return status


@st.cache_data(ttl=5, show_spinner=False)
def supervised_children() -> list[ChildSummary]:
    """The processes `mmos up` supervises for this data dir, with their restarts (docs/deploy.md); empty
    when no supervisor runs here (refreshed every 5 s)."""
    from mmos_core.core.config import get_settings

    return child_summaries(read_state(state_path(get_settings().data_dir)))


def sidebar_status() -> None:
    """Worker and LLM-server indicators, the children of `mmos up` and their restarts; warns when queued
    work cannot run."""
    status = runtime_status()
    children = supervised_children()
    with st.sidebar:
        st.caption("Runtime")
        workers = int(status["workers"])  # type: ignore[arg-type]
        st.markdown(f"{_dot(bool(workers))} workers: {workers}")
        st.markdown(f"{_dot(bool(status['llm']))} local LLM server at {server_url()}")
        if children:
            st.caption("Supervised by `mmos up`")
            for child in children:
                st.markdown(f"{_dot(child.up)} {child.line}")
        if not workers:
            st.warning("No worker is running: queued batches wait until `mmos worker` (or `mmos up`) runs.")


def _dot(ok: bool) -> str:
    # Material icons come with Streamlit's own font; emoji need fonts a server may lack.
    return ":green[:material/check_circle:]" if ok else ":red[:material/cancel:]"


def current_user() -> CurrentUser | None:
    """The signed-in user of this browser session (identity only: id, name, role), as `resume_session`
    checked it at the start of this run."""
    return st.session_state.get(_USER_KEY)


def set_current_user(user: CurrentUser) -> None:
    """Remember who is signed in for this browser tab (identity only; `sign_in` also starts the browser session)."""
    st.session_state[_USER_KEY] = user


def sign_in(user: CurrentUser) -> None:
    """Sign `user` in (docs/sessions.md): start their browser session in the database, remember it in
    this tab, and queue the one-time claim code that `session_cookie_claim` hands the browser so a
    refresh, a new tab or a shared link find the user signed in (the HttpOnly `mmos_session` cookie).

    Raises:
        ValueError: the account is unknown or deactivated (callers pass a user they just authenticated).
    """
    from mmos_core.core.config import get_settings

    with transaction() as session:
        started = start_session(session=session, user_id=user.id, ttl_hours=get_settings().session_ttl_hours)
    st.session_state[_USER_KEY] = user
    st.session_state[_WEB_SESSION_KEY] = started.session_id
    st.session_state[_CLAIM_KEY] = (started.session_id, started.claim_code, started.claim_expires_at)
    st.session_state.pop(_END_COOKIE_KEY, None)


def resume_session() -> CurrentUser | None:
    """Who is signed in for this run, checked against the database on every run (docs/sessions.md).

    The tab's own browser session if it has one, else the session named by the browser's
    `mmos_session` cookie (sent with the WebSocket handshake: a refresh, a second tab, a shared link).
    The account is read afresh, so a role change applies at once; a revoked or expired session or a
    deactivated account signs the tab out (its state is forgotten). A tab whose user was set without
    a browser session (`set_current_user`, as tests do) is checked against the account only.

    Returns:
        The user as the database has them now, or None when nobody is signed in.
    """
    session_id = st.session_state.get(_WEB_SESSION_KEY)
    token = _cookie_token()
    remembered = st.session_state.get(_USER_KEY)
    with transaction() as session:
        active = check_session(session=session, session_id=session_id) if session_id is not None else None
        if active is None and token:
            active = check_session(session=session, token=token)
        fresh = None
        if active is None and session_id is None and remembered is not None:
            fresh = reload_user(session=session, user_id=remembered.id)
    if active is not None:
        st.session_state[_WEB_SESSION_KEY] = active.session_id
        fresh = active.user
        if active.claimed:
            st.session_state.pop(_CLAIM_KEY, None)
    if fresh is None:
        _forget()
        return None
    if fresh != remembered:
        st.session_state[_USER_KEY] = fresh
    return fresh


def sign_out() -> None:
    """End this tab's browser session (and the cookie's) in the database, forget the user, have the
    next run delete the cookie (`session_cookie_end`), and leave the OIDC session when there is one.
    Every other tab of the browser is signed out at its next run."""
    session_id = st.session_state.get(_WEB_SESSION_KEY)
    token = _cookie_token()
    if session_id is not None or token:
        with transaction() as session:
            if session_id is not None:
                end_session(session=session, session_id=session_id, reason="sign_out")
            if token:
                end_session(session=session, token=token, reason="sign_out")
    _forget()
    st.session_state[_END_COOKIE_KEY] = True
    if oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def require(permission: Permission) -> CurrentUser:
    """The signed-in user if their role grants `permission`; otherwise an error and the page stops."""
    user = current_user()
    if user is None:
        st.warning("Please sign in.")
        st.stop()
    if not user.can(permission):
        st.error(f"Your role ({user.role.value}) does not allow this page.")
        st.stop()
    return user


def _forget() -> None:
    for key in (_USER_KEY, _WEB_SESSION_KEY, _CLAIM_KEY):
        st.session_state.pop(key, None)


def _cookie_token() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser behind this run (bare mode)
        return None
    return value if isinstance(value, str) and value else None  # AppTest's context holds stand-ins


def _post_script(path: str, body: dict[str, str]) -> str:
    """A script that POSTs `body` as JSON to this server's `path` with Streamlit's XSRF token (docs/sessions.md)."""
    return (
        "<script>(() => {"
        "const m = document.cookie.match(/(?:^|;\\s*)_streamlit_xsrf=([^;]*)/);"
        f"fetch({json.dumps(base_path() + path)}, {{method: 'POST', credentials: 'same-origin', cache: 'no-store',"
        " headers: {'Content-Type': 'application/json', 'X-Xsrftoken': m ? decodeURIComponent(m[1]) : ''},"
        f" body: {json.dumps(json.dumps(body))}}});"
        "})();</script>"
    )


def session_cookie_claim() -> None:
    """While this tab's sign-in has an unclaimed code, render the script that trades it for the
    HttpOnly session cookie (`mmos_core/session_routes.py`). Call it on every signed-in run."""
    pending = st.session_state.get(_CLAIM_KEY)
    if pending is None:
        return
    session_id, code, claim_expires_at = pending
    if session_id != st.session_state.get(_WEB_SESSION_KEY) or claim_expires_at <= dt.datetime.now(dt.UTC):
        st.session_state.pop(_CLAIM_KEY, None)  # the tab stays signed in; only refresh / new tabs will not be
        return
    st.html(_post_script(CLAIM_PATH, {"code": code}), unsafe_allow_javascript=True)


def session_cookie_end() -> None:
    """After a sign-out, render (once) the script that deletes the session cookie; the session itself
    is already revoked in the database, so a cookie left behind opens nothing."""
    if st.session_state.pop(_END_COOKIE_KEY, None):
        st.html(_post_script(END_PATH, {}), unsafe_allow_javascript=True)


def _intended_page_name() -> str | None:
    # The URL path the browser asked for (`/review` → "review"), which Streamlit's page manager keeps
    # before `st.navigation` resolves it (docs/sessions.md, "Links through sign-in").
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.pages_manager.intended_page_name if ctx is not None else None
    except Exception:
        return None


def remember_requested_page(url_paths: Collection[str]) -> str | None:
    """Signed out: remember the page the URL asks for (one of `url_paths`, e.g. "review" for a shared
    `/review?fragment=12`) with its query parameters, for `open_requested_page` after sign-in; a bare
    `/?source=3` keeps its query parameters only.

    Returns:
        The requested page's URL path when it is one of `url_paths` (app.py then serves the sign-in
        form at that path, so the address bar keeps the link), else None.
    """
    name = _intended_page_name() or ""  # empty on reruns (the form's submit): the first run's request stays
    query = {key: st.query_params.get_all(key) for key in st.query_params}
    if name in url_paths or (not name and query and _RETURN_KEY not in st.session_state):
        st.session_state[_RETURN_KEY] = (name, query)
    remembered = st.session_state.get(_RETURN_KEY)
    return remembered[0] if remembered is not None and remembered[0] in url_paths else None


def open_requested_page(chosen: Any, pages: Iterable[Any]) -> None:
    """Signed in: open the view remembered by `remember_requested_page` (once). `chosen` is the page
    this run's `st.navigation` picked and `pages` those it offers; a page the user's role cannot open
    is dropped (they land on `chosen`)."""
    wanted = st.session_state.pop(_RETURN_KEY, None)
    if wanted is None:
        return
    name, query = wanted
    if name and chosen.url_path != name:
        for page in pages:
            if page.url_path == name:
                st.switch_page(page, query_params=query)
        return
    for key, values in query.items():
        if key not in st.query_params:
            st.query_params[key] = values


def oidc_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an `[auth]` section for `st.login`."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
    except Exception:  # no secrets file at all
        return False


def browser_session_id() -> str | None:
    """Streamlit's id of this browser session (groups a reviewer's feedback, the catalog design `session_id`)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx else None
    except Exception:
        return None


def source_picker(sources: Sequence[Any], *, key: str | None = None, label: str = "Source") -> int:
    """A select box over `sources` (rows with `source_id`, `source_code`, `title`) that remembers the
    choice across pages and puts it in the URL (`?source=ID`), so a copied link reopens the same source.

    Returns:
        The chosen source id (the first one when nothing was chosen yet).
    Raises:
        ValueError: `sources` is empty (callers say so and stop first).
    """
    if not sources:
        raise ValueError("source_picker needs at least one source")
    ids = [s.source_id for s in sources]
    labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
    wanted = st.session_state.get(_SOURCE_KEY)
    if wanted not in ids:
        try:
            wanted = int(st.query_params.get("source", ""))
        except ValueError:
            wanted = None
    chosen = st.selectbox(label, ids, index=ids.index(wanted) if wanted in ids else 0, format_func=labels.get, key=key)
    st.session_state[_SOURCE_KEY] = chosen
    st.query_params["source"] = str(chosen)
    return chosen


def remember_source(source_id: int) -> None:
    """Make `source_id` the source the pages pick next (after adding one)."""
    st.session_state[_SOURCE_KEY] = source_id


def has_source_selected() -> bool:
    """Whether the analyst has picked (or just added) a source in this browser session."""
    return bool(st.session_state.get(_SOURCE_KEY))


# --- links that keep their place (docs/ARCHITECTURE.md, "Rules": what a user may link lives in the URL) ---


def seed_from_query(spec: dict[str, tuple[str, Any]]) -> None:
    """Before a page draws its widgets, fill `st.session_state[key]` from the URL's `?param=` for each
    `key: (param, parse)` this browser session has not set yet, so a copied link reopens the same view.

    `parse` turns the text into the widget's value (`int`, `str`, `int_list`, …); a value it refuses
    (ValueError / TypeError) is ignored. Callers still check the value against the widget's options.
    """
    for key, (param, parse) in spec.items():
        if key in st.session_state:
            continue
        raw = st.query_params.get(param)
        if raw is None or raw == "":
            continue
        try:
            st.session_state[key] = parse(raw)
        except (ValueError, TypeError):
            continue


def keep_in_query(values: dict[str, Any]) -> None:
    """Write the page's linkable state to `st.query_params`: lists as comma-separated text; None, "",
    an empty list or False remove the parameter. Unchanged values are not rewritten (no extra rerun)."""
    for param, value in values.items():
        if value is None or value == "" or value is False or (isinstance(value, (list, tuple)) and not value):
            if param in st.query_params:
                del st.query_params[param]
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        if st.query_params.get(param) != text:
            st.query_params[param] = text


def int_list(raw: str) -> list[int]:
    """'3,5,8' → [3, 5, 8] (the URL form of a multiselect of ids). Raises ValueError on a non-number."""
    return [int(part) for part in raw.split(",") if part.strip()]


def data_version() -> tuple:
    """The fingerprint `services.data_version.data_version` (one small query): pages pass it as the first
    argument of `st.cache_data` reports so a rerun with unchanged data reuses them (bench/README.md)."""
    from mmos_core.services.data_version import data_version as fingerprint

    with transaction() as session:
        return fingerprint(session=session)
