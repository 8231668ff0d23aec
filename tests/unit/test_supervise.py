"""The `mmos up` supervisor (mmos_core/cli/supervise.py, docs/deploy.md) with tiny fake children: a child
killed by PID is restarted after its backoff, the restart is counted in the state file and shown by
`mmos status`'s lines; the backoff doubles up to its cap."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from mmos_core.cli.supervise import Child, Supervisor, read_state, state_path, status_lines

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
