"""Killing an RQ worker the hard way, as a crash or an OOM kill would (tests of resumption after a kill)."""

from __future__ import annotations

import os
import signal


def kill_worker(pid: int) -> None:
    """SIGKILL an RQ worker and its work horse (RQ puts the horse in a session of its own)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                os.kill(int(entry), signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
