"""The process supervisor behind `mmos up` (docs/deploy.md, "Supervision without Docker").

`mmos up` starts its workers, the LLM server, the UI and (with `--api`) the HTTP API as children of one
`Supervisor`. A child that exits while the supervisor runs is started again after an exponential backoff
(`backoff_base_s * 2**(n-1)`, capped at `backoff_cap_s`; `n` counts the quick failures in a row and drops back
to zero once a child has stayed up `healthy_after_s`). Every restart is logged and recorded in a small JSON
state file (`<data_dir>/run/supervisor.json`), which `mmos status` and the UI's sidebar read through
`mmos_core/core/supervision_state.py` (the one reader).

A child that serves HTTP (the LLM server, the API, the UI) names a `health_url`: after each start it is
`starting` until that URL answers (probed at most every `health_every_s`), then `running`, and a restart
says so once the server answers again. A live process that stops answering later is not killed (a busy
llama.cpp server answers nothing until its generation ends).

The children are plain argument vectors, so tests substitute tiny fake commands (tests/unit/test_supervise.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmos_core.core.supervision_state import read_state

__all__ = ["Child", "Supervisor", "status_lines"]

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Child:
    """One supervised process: a name (`worker-0`, `llm`, `ui`, `api`), its argv, extra env, a log file and,
    for a server, the URL that answers 2xx once it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    log_file: Path | None = None
    health_url: str | None = None
    # runtime, kept by the Supervisor
    proc: subprocess.Popen | None = field(default=None, repr=False)
    restarts: int = 0
    failures_in_row: int = 0
    started_mono: float = 0.0
    next_start_mono: float | None = None
    last_exit: int | None = None
    last_restart_at: str | None = None
    healthy_at: str | None = None
    next_probe_mono: float = 0.0
    state: str = "new"


class Supervisor:
    """Starts children, restarts the ones that die (exponential backoff with a cap) and records it all."""

    def __init__(
        self,
        children: list[Child],
        state_file: Path,
        *,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        healthy_after_s: float = 30.0,
        poll_s: float = 0.5,
        health_every_s: float = 1.0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.children = children
        self.state_file = state_file
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.healthy_after_s = healthy_after_s
        self.poll_s = poll_s
        self.health_every_s = health_every_s
        self.echo = echo or (lambda line: log.warning("%s", line))
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # stop() may run in a signal handler during poll_once()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every child and write the state file."""
        for child in self.children:
            self._spawn(child)
        self.write_state()

    def backoff_s(self, failures_in_row: int) -> float:
        """Seconds to wait before the `failures_in_row`-th quick restart: base * 2**(n-1), at most the cap."""
        return min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, failures_in_row - 1))

    def poll_once(self) -> None:
        """Notice exited children, schedule their restart, and start those whose backoff is over."""
        now = time.monotonic()
        changed = False
        with self._lock:
            if self._stopping.is_set():
                return
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    code = child.proc.returncode
                    ran_s = now - child.started_mono
                    child.failures_in_row = 1 if ran_s >= self.healthy_after_s else child.failures_in_row + 1
                    delay = self.backoff_s(child.failures_in_row)
                    child.proc, child.last_exit, child.state = None, code, "backoff"
                    child.next_start_mono = now + delay
                    self.echo(f"supervisor: {child.name} exited with code {code} after {ran_s:.1f} s; restarting in {delay:.1f} s")
                    changed = True
                elif child.proc is None and child.next_start_mono is not None and now >= child.next_start_mono:
                    child.restarts += 1
                    child.last_restart_at = _now()
                    self._spawn(child)
                    self.echo(f"supervisor: restarted {child.name} (pid {child.proc.pid if child.proc else '?'}, restart #{child.restarts})")
                    changed = True
        changed = self._probe_starting() or changed
        with self._lock:  # never after stop() recorded the children as stopped
            if changed and not self._stopping.is_set():
                self.write_state()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Poll until `stop()` is called (or `until()` is true)."""
        while not self._stopping.is_set() and not (until and until()):
            self.poll_once()
            self._stopping.wait(self.poll_s)

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM every child, SIGKILL those still alive after `timeout_s`, record them as stopped."""
        with self._lock:
            self._stopping.set()
            live = [c for c in self.children if c.proc is not None]
            for child in live:
                try:
                    child.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout_s
            for child in live:
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
                except subprocess.TimeoutExpired:
                    child.proc.kill()  # type: ignore[union-attr]
                    child.proc.wait()  # type: ignore[union-attr]
            for child in self.children:
                child.proc, child.state, child.next_start_mono = None, "stopped", None
            self.write_state(running=False)

    # --- internals ---------------------------------------------------------------------------

    def _probe_starting(self) -> bool:
        """Probe the `health_url` of children still `starting`; mark those that answer `running`.

        The requests run outside the lock (a slow server must not hold up `stop()`); a child restarted
        or stopped meanwhile is left as it is. Returns whether a child changed state.
        """
        now = time.monotonic()
        with self._lock:
            due = [(c, c.proc) for c in self.children
                   if c.state == "starting" and c.proc is not None and c.health_url and now >= c.next_probe_mono]
            for child, _ in due:
                child.next_probe_mono = now + self.health_every_s
        answered = [(c, proc) for c, proc in due if _answers(c.health_url, timeout_s=min(2.0, self.health_every_s))]  # type: ignore[arg-type]
        changed = False
        with self._lock:
            for child, proc in answered:
                if child.proc is proc and child.state == "starting" and not self._stopping.is_set():
                    child.state, child.healthy_at = "running", _now()
                    if child.restarts:
                        self.echo(f"supervisor: {child.name} answers again at {child.health_url} (restart #{child.restarts})")
                    changed = True
        return changed

    def _spawn(self, child: Child) -> None:
        env = {**os.environ, **(child.env or {})}
        out: Any = subprocess.DEVNULL
        if child.log_file is not None:
            child.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = open(child.log_file, "ab")  # noqa: SIM115 - the child owns the descriptor once started
        try:
            child.proc = subprocess.Popen(child.argv, env=env, stdout=out, stderr=subprocess.STDOUT if out is not subprocess.DEVNULL else out)
        except OSError as exc:  # a missing program counts as an immediate exit: backoff, then retry
            self.echo(f"supervisor: could not start {child.name}: {exc}")
            child.proc = None
            child.failures_in_row += 1
            child.next_start_mono = time.monotonic() + self.backoff_s(child.failures_in_row)
            child.state = "backoff"
            return
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        child.started_mono = time.monotonic()
        child.next_start_mono = None
        child.next_probe_mono = 0.0
        child.healthy_at = None
        child.state = "starting" if child.health_url else "running"

    def snapshot(self, *, running: bool = True) -> dict[str, Any]:
        """The state file's content: the supervisor's pid and, per child, pid, state (`starting` until a server's
        health URL answers), restarts, last exit code and when its health URL last began to answer."""
        return {
            "pid": os.getpid(),
            "running": running,
            "updated_at": _now(),
            "children": {
                c.name: {
                    "pid": c.proc.pid if c.proc is not None else None,
                    "state": c.state,
                    "restarts": c.restarts,
                    "last_exit": c.last_exit,
                    "last_restart_at": c.last_restart_at,
                    "health_url": c.health_url,
                    "healthy_at": c.healthy_at,
                    "argv": c.argv,
                }
                for c in self.children
            },
        }

    def write_state(self, *, running: bool = True) -> None:
        """Write the state file atomically (temp file + rename), so a reader never sees half of it."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.snapshot(running=running), indent=2))
        os.replace(tmp, self.state_file)


def _answers(url: str, *, timeout_s: float) -> bool:
    """Whether `GET url` answers 2xx within `timeout_s` (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status_lines(path: Path) -> list[str]:
    """`mmos status` lines for the supervisor of this data dir (empty when `mmos up` never ran here)."""
    state = read_state(path)
    if state is None:
        return []
    head = f"supervisor: {'running (pid ' + str(state['pid']) + ')' if state.get('running') else 'not running'}, updated {state.get('updated_at')}"
    lines = [head]
    for name, c in state.get("children", {}).items():
        exit_part = f", last exit {c['last_exit']}" if c.get("last_exit") is not None else ""
        when = f" (last {c['last_restart_at']})" if c.get("last_restart_at") else ""
        lines.append(f"  {name:<10} {c.get('state'):<8} pid {c.get('pid') or '-':<7} restarts {c.get('restarts', 0)}{when}{exit_part}")
    return lines
