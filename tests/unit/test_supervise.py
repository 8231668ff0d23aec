"""The `mmos up` supervisor (mmos_core/cli/supervise.py, docs/deploy.md) with tiny fake children: a child
killed by PID is restarted after its backoff, the restart is counted in the state file and shown by
`mmos status`'s lines; the backoff doubles up to its cap; a server child (a stand-in HTTP server) killed by
PID is restarted and `starting` until it answers again; the sidebar's lines
(`core/supervision_state.child_summaries`)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import urllib.request

from mmos_core.cli.supervise import Child, Supervisor, status_lines
from mmos_core.core.supervision_state import child_summaries, read_state, state_path

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _wait(cond, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_backoff_doubles_up_to_the_cap(tmp_path) -> None:
    sup = Supervisor([], tmp_path / "s.json", backoff_base_s=1, backoff_cap_s=10)
    assert [sup.backoff_s(n) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 10, 10]


def test_killed_child_is_restarted_and_counted(tmp_path) -> None:
    path = state_path(tmp_path)
    lines: list[str] = []
    sup = Supervisor([Child("fake", SLEEPER, log_file=tmp_path / "logs" / "fake.log")], path,
                     backoff_base_s=0.2, backoff_cap_s=0.5, poll_s=0.05, echo=lines.append)
    sup.start()
    thread = threading.Thread(target=sup.run, daemon=True)
    thread.start()
    try:
        first = read_state(path)["children"]["fake"]["pid"]
        assert first and read_state(path)["running"]
        os.kill(first, signal.SIGKILL)
        _wait(lambda: (read_state(path)["children"]["fake"]["restarts"] == 1
                       and read_state(path)["children"]["fake"]["state"] == "running"))
        child = read_state(path)["children"]["fake"]
        assert child["pid"] != first and child["last_exit"] == -signal.SIGKILL
        os.kill(child["pid"], 0)  # the new one is alive
        assert any("restarted fake" in line for line in lines)
        shown = "\n".join(status_lines(path))
        assert "supervisor: running" in shown and "restarts 1" in shown
    finally:
        sup.stop(timeout_s=5)
        thread.join(timeout=5)
    state = read_state(path)
    assert not state["running"] and state["children"]["fake"]["state"] == "stopped"


def test_quick_failures_back_off(tmp_path) -> None:
    """A child that exits at once is retried with growing waits, not in a tight loop."""
    path = tmp_path / "s.json"
    sup = Supervisor([Child("crash", [sys.executable, "-c", "raise SystemExit(3)"])], path,
                     backoff_base_s=0.3, backoff_cap_s=0.6, healthy_after_s=60, poll_s=0.02, echo=lambda _: None)
    sup.start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sup.poll_once()
        time.sleep(0.02)
    sup.stop(timeout_s=5)
    restarts = read_state(path)["children"]["crash"]["restarts"]
    # waits of 0.3, 0.6, 0.6, ... s plus start-up: a handful in 3 s, never dozens
    assert 2 <= restarts <= 6, restarts
    assert read_state(path)["children"]["crash"]["last_exit"] == 3


def test_stale_state_of_a_dead_supervisor_reads_as_not_running(tmp_path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"pid": 999999999, "running": true, "updated_at": "x", "children": {"w": {"pid": 999999998, "state": "running", "restarts": 2}}}')
    state = read_state(path)
    assert not state["running"] and state["children"]["w"]["state"] == "gone"
    assert status_lines(path)[0].startswith("supervisor: not running")
    assert status_lines(tmp_path / "missing.json") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_killed_server_child_is_restarted_and_answers_again(tmp_path) -> None:
    """A server child (a stand-in HTTP server) is `starting` until its health URL answers, `running` after;
    killed by PID it is restarted and, once it answers again, `running` with the restart counted."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    path = state_path(tmp_path)
    lines: list[str] = []
    sup = Supervisor([Child("llm", server, health_url=url)], path,
                     backoff_base_s=0.5, backoff_cap_s=1, poll_s=0.05, health_every_s=0.1, echo=lines.append)
    sup.start()
    assert read_state(path)["children"]["llm"]["state"] == "starting"
    thread = threading.Thread(target=sup.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: read_state(path)["children"]["llm"]["state"] == "running")
        first = read_state(path)["children"]["llm"]
        assert first["healthy_at"] and first["health_url"] == url and _answers(url)
        os.kill(first["pid"], signal.SIGKILL)
        _wait(lambda: read_state(path)["children"]["llm"]["restarts"] == 1)
        _wait(lambda: read_state(path)["children"]["llm"]["state"] == "running")
        child = read_state(path)["children"]["llm"]
        assert child["pid"] != first["pid"] and child["last_exit"] == -signal.SIGKILL and child["healthy_at"]
        assert _answers(url)
        assert any(f"llm answers again at {url} (restart #1)" in line for line in lines), lines
        [summary] = child_summaries(read_state(path))
        assert summary.up and summary.line.startswith("llm restarted 1× (last exit code -9, ")
    finally:
        sup.stop(timeout_s=5)
        thread.join(timeout=5)


def test_child_summaries_say_what_the_sidebar_shows() -> None:
    state = {"pid": os.getpid(), "running": True, "children": {
        "worker-1": {"state": "running", "restarts": 2, "last_exit": -9, "last_restart_at": "2026-12-01T13:02:59+00:00"},
        "worker-2": {"state": "backoff", "restarts": 0, "last_exit": 1},
        "llm": {"state": "starting", "restarts": 1, "last_exit": -9, "last_restart_at": "2026-12-01T14:10:00+01:00"},
        "ui": {"state": "running", "restarts": 0, "last_exit": None},
    }}
    assert [(c.line, c.up) for c in child_summaries(state)] == [
        ("worker-1 restarted 2× (last exit code -9, 13:02 UTC)", True),
        ("worker-2 exited (code 1), waiting to restart", False),
        ("llm restarted 1× (last exit code -9, 13:10 UTC), starting", False),
        ("ui running", True),
    ]
    assert child_summaries(None) == []
    assert child_summaries({**state, "running": False}) == []  # a stopped supervisor's file says nothing about now
