"""Measured quality per batch (`model_performance`) and optimizer runs (docs/quality.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.core.domain import OptimizationStatus
from mmos_core.models.base import Base, now


class ModelPerformance(Base):
    """Per-batch, per-source performance row written when a batch completes (the core design section 4)."""

    __tablename__ = "model_performance"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_provider: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("processing_batches.id", ondelete="CASCADE"))
    source_type: Mapped[str] = mapped_column(String(32))
    fragments_extracted: Mapped[int] = mapped_column(Integer)
    # The core design's self-reported quality: AVG(confidence × 10). Kept for the seed's queries; docs/quality.md
    # replaces it with measured quality.
    extraction_quality_avg: Mapped[float | None] = mapped_column(Numeric(5, 2))
    relevance_score_avg: Mapped[float | None] = mapped_column(Numeric(5, 2))
    confidence_avg: Mapped[float | None] = mapped_column(Numeric(5, 3))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    cost_per_fragment: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    tokens_per_fragment: Mapped[float | None] = mapped_column(Numeric(12, 2))
    time_per_fragment_seconds: Mapped[float | None] = mapped_column(Numeric(12, 3))
    located_share: Mapped[float | None] = mapped_column(Numeric(5, 4))
    malformed_share: Mapped[float | None] = mapped_column(Numeric(5, 4))
    # Measured quality (docs/quality.md, migration 0006; formulas in mmos_core/analysis/quality_score.py and docs/quality.md).
    checked_fragments: Mapped[int | None] = mapped_column(Integer)
    grounded_fragments: Mapped[int | None] = mapped_column(Integer)
    grounding_rate: Mapped[float | None] = mapped_column(Numeric(5, 4))
    reference_kind: Mapped[str | None] = mapped_column(String(16))  # 'verified' | 'baseline_batch'
    reference_size: Mapped[int | None] = mapped_column(Integer)
    agreement_precision: Mapped[float | None] = mapped_column(Numeric(5, 4))
    agreement_recall: Mapped[float | None] = mapped_column(Numeric(5, 4))
    agreement_f1: Mapped[float | None] = mapped_column(Numeric(5, 4))
    human_judgements: Mapped[int | None] = mapped_column(Integer)
    human_score: Mapped[float | None] = mapped_column(Numeric(5, 4))
    quality_score: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_ci_low: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_ci_high: Mapped[float | None] = mapped_column(Numeric(4, 2))
    quality_rule: Mapped[str | None] = mapped_column(String(16))
    # rule q-v2's evidence (migration 0007): direct quotes, verbatim ones, the person's own, judged fragments
    direct_quotes: Mapped[int | None] = mapped_column(Integer)
    quotes_exact: Mapped[int | None] = mapped_column(Integer)
    quotes_by_person: Mapped[int | None] = mapped_column(Integer)
    judged_fragments: Mapped[int | None] = mapped_column(Integer)
    support_rate: Mapped[float | None] = mapped_column(Numeric(5, 4))
    baseline_model: Mapped[str | None] = mapped_column(String(200))
    # quality_score − the baseline model's quality_score on the same source (points on 0-10)
    quality_delta: Mapped[float | None] = mapped_column(Numeric(6, 2))
    # cost_per_fragment − the baseline model's cost_per_fragment on the same source (USD per fragment)
    cost_delta: Mapped[float | None] = mapped_column(Numeric(12, 6))
    evaluation_date: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())


class OptimizationRun(Base):
    """One `process_batch` strategy run over one source (the optimizer design): the models tried in order, the
    sample chunks, each decision with the measured quality behind it, and the batches it queued."""

    __tablename__ = "optimization_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    models: Mapped[list[str]] = mapped_column(ARRAY(String(200)))
    quality_threshold: Mapped[float] = mapped_column(Numeric(4, 2))
    budget_per_fragment: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    sample_chunk_ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    step: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=OptimizationStatus.sampling.value)
    chosen_model: Mapped[str | None] = mapped_column(String(200))
    batch_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("strategy IN ('progressive','aggressive','conservative')", name="ck_optruns_strategy"),
        CheckConstraint("status IN ('sampling','full','completed','failed')", name="ck_optruns_status"),
    )
