"""Run Alembic migrations from code (the CLI, `mmos up` and the test fixtures use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def alembic_config() -> Config:
    """Alembic config of this checkout (script location `migrations/`); logging left to the caller."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(revision: str = "head") -> None:
    """Migrate the configured (or embedded) database to `revision`."""
    command.upgrade(alembic_config(), revision)
