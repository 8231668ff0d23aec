"""Seed 004 tables (migration 0004): conversations, messages, embeddings, quality, contradictions, loops, citations."""

from __future__ import annotations

from mmos_core.models import Base  # noqa: F401  (tables register on the shared metadata)
