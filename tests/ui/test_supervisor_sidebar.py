"""The sidebar shows what `mmos up` supervises and how often it restarted it (docs/deploy.md, "Supervision
without Docker"), read from the supervisor's state file of this data dir; nothing when no supervisor runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

from mmos_core.core.config import get_settings
from mmos_core.core.supervision_state import state_path

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _state(pid: int) -> dict:
    return {
        "pid": pid, "running": True, "updated_at": "2026-12-01T13:04:00+00:00",
        "children": {
            "worker-0": {"pid": os.getpid(), "state": "running", "restarts": 2, "last_exit": -9,
                         "last_restart_at": "2026-12-01T13:02:11+00:00"},
            "llm": {"pid": None, "state": "backoff", "restarts": 1, "last_exit": 1,
                    "last_restart_at": "2026-12-01T13:03:40+00:00"},
            "ui": {"pid": os.getpid(), "state": "running", "restarts": 0, "last_exit": None, "last_restart_at": None},
        },
    }


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _sidebar(at: AppTest) -> tuple[list[str], list[str]]:
    return texts(at.sidebar.markdown), texts(at.sidebar.caption)


@pytest.mark.usefixtures("clean_db")
def test_sidebar_lists_supervised_children_and_their_restarts() -> None:
    path = state_path(get_settings().data_dir)
    path.unlink(missing_ok=True)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["current_user"] = signed_in("analyst")
    at.run()
    at.switch_page("pages/queue.py")
    at.run()
    assert not at.exception, at.exception
    markdown, captions = _sidebar(at)
    assert any("workers:" in m for m in markdown)
    assert not any("mmos up" in c for c in captions)  # no supervisor here: nothing said about one

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(json.dumps(_state(os.getpid())))  # this process stands in for a live supervisor
        st.cache_data.clear()
        at.run()
        assert not at.exception, at.exception
        markdown, captions = _sidebar(at)
        assert "Supervised by `mmos up`" in captions
        shown = [m for m in markdown if "worker-0" in m or "llm " in m or " ui " in f" {m} "]
        assert any(m.endswith("worker-0 restarted 2× (last exit code -9, 13:02 UTC)") for m in shown), shown
        assert any(m.endswith("llm restarted 1× (last exit code 1, 13:03 UTC), waiting to restart") for m in shown), shown
        assert any(m.endswith("ui running") for m in shown), shown
        worker_line = next(m for m in shown if "worker-0" in m)
        llm_line = next(m for m in shown if "llm restarted" in m)
        assert "check_circle" in worker_line and "cancel" in llm_line  # up vs waiting out its backoff

        path.write_text(json.dumps(_state(_dead_pid())))  # a supervisor killed outright left its file behind
        st.cache_data.clear()
        at.run()
        assert not at.exception, at.exception
        markdown, captions = _sidebar(at)
        assert not any("mmos up" in c for c in captions)
        assert not any("restarted" in m for m in markdown)
    finally:
        path.unlink(missing_ok=True)
