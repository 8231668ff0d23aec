"""Streamlit glue shared by the pages: cached resources and the status sidebar. No SQL, no rules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from mmos_core.jobs.enqueue import failed_enqueues
from mmos_core.llm.server import server_url
from mmos_core.services.auth import CurrentUser, Permission

__all__ = ["failed_enqueues"]  # pages read after a transaction why a job could not be queued

_USER_KEY = "current_user"


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


def sidebar_status() -> None:
    """Worker and LLM-server indicators; warns when queued work cannot run."""
    status = runtime_status()
    with st.sidebar:
        st.caption("Runtime")
        workers = int(status["workers"])  # type: ignore[arg-type]
        st.markdown(f"{_dot(bool(workers))} workers: {workers}")
        st.markdown(f"{_dot(bool(status['llm']))} local LLM server at {server_url()}")
        if not workers:
            st.warning("No worker is running: queued batches wait until `mmos worker` (or `mmos up`) runs.")


def _dot(ok: bool) -> str:
    # Material icons come with Streamlit's own font; emoji need fonts a server may lack.
    return ":green[:material/check_circle:]" if ok else ":red[:material/cancel:]"


def current_user() -> CurrentUser | None:
    """The signed-in user of this browser session (identity only: id, name, role)."""
    return st.session_state.get(_USER_KEY)


def set_current_user(user: CurrentUser) -> None:
    """Remember who signed in for this browser session."""
    st.session_state[_USER_KEY] = user


def sign_out() -> None:
    """Forget the session's user (and leave the OIDC session when there is one)."""
    st.session_state.pop(_USER_KEY, None)
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


def oidc_configured() -> bool:
    """Whether `.streamlit/secrets.toml` has an `[auth]` section for `st.login`."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False
    except Exception:  # no secrets file at all
        return False


def browser_session_id() -> str | None:
    """Streamlit's id of this browser session (groups a reviewer's feedback, seed 002 `session_id`)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.session_id if ctx else None
    except Exception:
        return None
