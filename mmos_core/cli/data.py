"""`mmos backup` / `mmos restore`: PostgreSQL, Redis and the confidence lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmos_core.cli.common import fail

app = typer.Typer()


# --- backup / restore ---------------------------------------------------------------------------


@app.command("backup")
def backup_cmd(dest: Annotated[Path, typer.Argument(help="Folder to write the backup under.")]) -> None:
    """Back up PostgreSQL (pg_dump), Redis (every key with its TTL) and the confidence lake (a bar of its steps)."""
    from mmos_core.cli.progress import bars
    from mmos_core.storage.backup import BackupError, backup

    try:
        with bars() as progress:
            out = backup(dest, progress=progress)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(f"backup written to {out}")


@app.command("restore")
def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A backup folder (mmos-backup-...).")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="A fresh data dir to restore into.")],
) -> None:
    """Restore a backup into a fresh data dir (starts embedded PostgreSQL + Redis there) and verify counts."""
    from mmos_core.cli.progress import bars
    from mmos_core.storage.backup import BackupError, RestoreError, restore

    try:
        with bars() as progress:
            result = restore(src, data_dir=data_dir, progress=progress)
    except (RestoreError, BackupError) as exc:
        fail(str(exc))
    typer.echo(
        f"restored {sum(result.row_counts.values())} rows in {len(result.row_counts)} tables, "
        f"{result.redis_keys} Redis keys, {result.lake_entries} lake entries into {data_dir}; "
        f"use it with MMOS_DATA_DIR={data_dir}"
    )


