"""Declarative base of every workbench table; the schema itself changes only through Alembic
(`migrations/versions/`), these classes describe it for queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from mmos_core.core.vectors import EMBEDDING_DIM

__all__ = ["Base", "EMBEDDING_DIM", "now"]


class Base(DeclarativeBase):
    """Declarative base of every workbench table."""

    type_annotation_map = {dict[str, Any]: JSONB}


def now() -> Any:
    """Server-side `now()` for column defaults."""
    return func.now()
