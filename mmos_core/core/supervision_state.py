"""Reading the state file of `mmos up`'s supervisor (docs/deploy.md, "Supervision without Docker").

The supervisor (`mmos_core/cli/supervise.py`) writes `<data_dir>/run/supervisor.json`; `mmos status` and the
UI's sidebar read it here, so there is one reader for both (the UI may not import the CLI). Pure file and
dict work: no Redis, no database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = Path("run") / "supervisor.json"


def state_path(data_dir: Path) -> Path:
    """Where the supervisor of this data dir records its children (`<data_dir>/run/supervisor.json`)."""
    return Path(data_dir).expanduser().resolve() / STATE_FILE


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (one of another user counts as alive)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(path: Path) -> dict[str, Any] | None:
    """The recorded state, with `running` corrected when the supervisor's pid is gone; None if there is none.

    A supervisor killed outright leaves `running: true` behind: it reads as not running, and each child
    whose pid is gone as `gone`.
    """
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    if state.get("running") and not pid_alive(state.get("pid")):
        state["running"] = False
        for child in state.get("children", {}).values():
            child["state"] = "gone" if not pid_alive(child.get("pid")) else child["state"]
    return state


@dataclass(frozen=True)
class ChildSummary:
    """One supervised child as the sidebar shows it."""

    name: str
    state: str
    restarts: int
    line: str  # e.g. "worker-1 restarted 2× (last exit code -9, 13:02 UTC)"

    @property
    def up(self) -> bool:
        """Running now (not waiting out a backoff, stopped or gone)."""
        return self.state == "running"


def _clock(stamp: str | None) -> str | None:
    """`HH:MM UTC` of an ISO time the supervisor wrote (UTC), or None."""
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return f"{when:%H:%M} UTC"


_SHOWN_STATE = {"backoff": "waiting to restart", "starting": "starting", "stopped": "stopped", "gone": "gone"}


def child_summaries(state: dict[str, Any] | None) -> list[ChildSummary]:
    """The children of a *running* supervisor, one line each: once restarted, how often, its last exit
    code and the time of its last restart; and what it does when it is not running. Empty when there is
    no state or the supervisor is not running (a stale file of an earlier `mmos up` says nothing about now).
    """
    if not state or not state.get("running"):
        return []
    out = []
    for name, child in (state.get("children") or {}).items():
        restarts = int(child.get("restarts") or 0)
        status = str(child.get("state") or "?")
        exit_code = child.get("last_exit")
        if restarts:
            details = [f"last exit code {exit_code}"] if exit_code is not None else []
            when = _clock(child.get("last_restart_at"))
            details += [when] if when else []
            line = f"{name} restarted {restarts}×" + (f" ({', '.join(details)})" if details else "")
        elif exit_code is not None:
            line = f"{name} exited (code {exit_code})"
        else:
            line = name
        if status != "running":
            line += f", {_SHOWN_STATE.get(status, status)}"
        elif not restarts:
            line += " running"
        out.append(ChildSummary(name=name, state=status, restarts=restarts, line=line))
    return out
