"""Running extraction jobs as several workers would, and killing an RQ worker the hard way, as a crash or an
OOM kill would (tests of concurrency and of resumption after a kill)."""

from __future__ import annotations

import os
import signal
import threading


def run_batches_at_once(batch_ids: list[int]) -> dict[int, str]:
    """Run each batch's job function in its own thread, all released together (as many workers would); returns
    the error each failed batch raised, as "Type: message" (what RQ would record)."""
    from workers.extraction import run_extraction

    errors: dict[int, str] = {}
    start = threading.Barrier(len(batch_ids))

    def run(batch_id: int) -> None:
        start.wait()
        try:
            run_extraction(batch_id)
        except Exception as exc:  # what RQ would record
            errors[batch_id] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(b,)) for b in batch_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


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
