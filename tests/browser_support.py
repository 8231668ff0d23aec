"""What the Chromium tests share: Debian's chromium and Playwright (or a clear skip), and the workbench
served by `streamlit run app.py` on a free port (optionally with an RQ worker) for the test database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def unavailable(reason: str) -> None:
    """Skip with `reason`, or fail when MMOS_REQUIRE_MODELS says nothing may be skipped (CI)."""
    if os.environ.get("MMOS_REQUIRE_MODELS"):
        pytest.fail(f"MMOS_REQUIRE_MODELS is set: {reason}")
    pytest.skip(reason)


def require_browser() -> None:
    """Debian's chromium and the playwright package, or a skip that says how to install them."""
    if not Path(CHROMIUM).exists():
        unavailable("Debian chromium is not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    """Poll `url` until it answers. Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@contextmanager
def live_streamlit(*, worker: bool = False, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """`streamlit run app.py` (and, with `worker`, one `mmos worker`) on a free port with this process's
    environment; yields the base URL and stops everything afterwards."""
    port = free_port()
    env = dict(os.environ)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", *extra_args],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )]
    if worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "mmos_core.cli.app", "worker"], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
