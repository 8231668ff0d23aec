"""Inference monitoring: ONNX model registry, audit trail of embedding inferences and their
recorded conventions (docs/embeddings.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.core.domain import OnnxModelStatus
from mmos_core.models.base import EMBEDDING_DIM, Base, now

SACRED_POSITIONS = (3, 6, 9)


class OnnxModel(Base):
    """The monitoring design `onnx_models`: a registered ONNX embedding model (fp32 or int8) and its load status.

    At most one row has `is_default` (partial unique index `uq_onnx_models_single_default`).
    `status`: ready (files present / loaded), loading, error (`error_message` says why), disabled.
    """

    __tablename__ = "onnx_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    model_path: Mapped[str] = mapped_column(Text)
    tokenizer_path: Mapped[str] = mapped_column(Text)
    embedding_dim: Mapped[int] = mapped_column(Integer, default=EMBEDDING_DIM, server_default=str(EMBEDDING_DIM))
    status: Mapped[str] = mapped_column(String(16), default=OnnxModelStatus.disabled.value, server_default=OnnxModelStatus.disabled.value)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    quantization: Mapped[str] = mapped_column(String(8), default="fp32", server_default="fp32")
    # SHA-256 of model_path when registered (null when the file was missing).
    sha256: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # e.g. {"load_time_ms": 412.3, "loads": 3, "onnxruntime": "1.22.0"}
    performance_metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("name", name="uq_onnx_models_name"),
        CheckConstraint("status IN ('ready','loading','error','disabled')", name="ck_onnx_models_status"),
        CheckConstraint("quantization IN ('fp32','int8')", name="ck_onnx_models_quantization"),
        CheckConstraint("embedding_dim > 0", name="ck_onnx_models_dim"),
        Index("uq_onnx_models_single_default", "is_default", unique=True, postgresql_where="is_default"),
    )


class BeamTensor(Base):
    """The monitoring design `beam_tensors`: the seed's 9-position tensor with ELP channels and flux position (convention)."""

    __tablename__ = "beam_tensors"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    digits: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    confidence: Mapped[float] = mapped_column(REAL)
    # {"ethos": x, "logos": y, "pathos": z}: similarity to the documented prototype of each appeal.
    elp_channels: Mapped[dict[str, Any]] = mapped_column(JSONB)
    flux_position: Mapped[int] = mapped_column(SmallInteger)
    is_sacred: Mapped[bool] = mapped_column(Boolean, Computed("flux_position IN (3, 6, 9)", persisted=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("cardinality(digits) = 9", name="ck_beam_tensors_digits"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_beam_tensors_confidence"),
        CheckConstraint("flux_position BETWEEN 0 AND 9", name="ck_beam_tensors_flux"),
        CheckConstraint(
            "elp_channels ?& array['ethos','logos','pathos']", name="ck_beam_tensors_elp_keys"
        ),
        Index("ix_beam_tensors_sacred", "is_sacred", postgresql_where="is_sacred"),
        Index("ix_beam_tensors_flux", "flux_position"),
    )


class AsiInference(Base):
    """The monitoring design `asi_inferences`: audit trail of every analysis inference (grounding, message, search).

    Measured: `confidence` (0-1 support/grounding score), `hallucination_detected` (ungrounded),
    `archetype` (nearest documented prototype), `processing_time_ms` (wall time, sub-ms resolution).
    Seed convention: `flux_position`, `is_sacred` (generated: position 3, 6 or 9), `vortex_intervention`.
    `lake_worthy`: the monitoring design's lake entry rule (confidence >= 0.6, no hallucination, sacred or > 0.8).
    """

    __tablename__ = "asi_inferences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    input_text: Mapped[str] = mapped_column(Text)
    beam_tensor_id: Mapped[int | None] = mapped_column(
        ForeignKey("beam_tensors.id", ondelete="SET NULL", name="fk_asi_inferences_beam_tensor")
    )
    onnx_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("onnx_models.id", ondelete="SET NULL", name="fk_asi_inferences_model")
    )
    # The fragment a `fragment_grounding` inference scored (null for messages and search queries).
    fragment_id: Mapped[int | None] = mapped_column(
        ForeignKey("fragments.id", ondelete="SET NULL", name="fk_asi_inferences_fragment")
    )
    semantic_embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    flux_position: Mapped[int] = mapped_column(SmallInteger)
    is_sacred: Mapped[bool] = mapped_column(Boolean, Computed("flux_position IN (3, 6, 9)", persisted=True))
    archetype: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(REAL)
    hallucination_detected: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    vortex_intervention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    lake_worthy: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    processing_time_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint(
            "kind IN ('fragment_grounding','message_analysis','search_query')", name="ck_asi_inferences_kind"
        ),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_asi_inferences_confidence"),
        CheckConstraint("flux_position BETWEEN 0 AND 9", name="ck_asi_inferences_flux"),
        CheckConstraint("processing_time_ms >= 0", name="ck_asi_inferences_time"),
        Index("ix_asi_inferences_created", "created_at"),
        Index("ix_asi_inferences_model_created", "onnx_model_id", "created_at"),
        Index("ix_asi_inferences_fragment", "fragment_id"),
    )


class SacredIntervention(Base):
    """The monitoring design `sacred_interventions` (convention): the seed's 3-6-9 'boost', recorded, never applied.

    `signal_before` is the measured confidence; `signal_after` = min(1, before + boost) as the seed
    states; neither changes `asi_inferences.confidence`.
    """

    __tablename__ = "sacred_interventions"

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[int] = mapped_column(
        ForeignKey("asi_inferences.id", ondelete="CASCADE", name="fk_sacred_interventions_inference"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    signal_before: Mapped[float] = mapped_column(REAL)
    signal_after: Mapped[float] = mapped_column(REAL)
    confidence_boost: Mapped[float] = mapped_column(REAL)
    intervention_type: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("position IN (3, 6, 9)", name="ck_sacred_interventions_position"),
        CheckConstraint(
            "intervention_type IN ('magnification','reset','stabilization')", name="ck_sacred_interventions_type"
        ),
    )


class ContextMetric(Base):
    """The monitoring design `context_metrics`: tokens seen vs the context window (measured), sacred checkpoints and
    vortex cycles (convention)."""

    __tablename__ = "context_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[int] = mapped_column(
        ForeignKey("asi_inferences.id", ondelete="CASCADE", name="fk_context_metrics_inference"), index=True
    )
    token_count: Mapped[int] = mapped_column(Integer)
    context_window_size: Mapped[int] = mapped_column(Integer, default=4096, server_default="4096")
    # Share of the input's tokens inside the window: min(token_count, window) / token_count (1 when empty).
    retention_rate: Mapped[float] = mapped_column(REAL)
    sacred_checkpoints: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), default=list, server_default="{}"
    )
    vortex_cycle_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("token_count >= 0", name="ck_context_metrics_tokens"),
        CheckConstraint("context_window_size > 0", name="ck_context_metrics_window"),
        CheckConstraint("retention_rate >= 0 AND retention_rate <= 1", name="ck_context_metrics_retention"),
        CheckConstraint("sacred_checkpoints <@ ARRAY[3, 6, 9]", name="ck_context_metrics_checkpoints"),
        CheckConstraint("vortex_cycle_count >= 0", name="ck_context_metrics_cycles"),
    )


class TrainingSample(Base):
    """The monitoring design `training_samples`: a labelled example, e.g. a reviewer's category correction.

    `expected_category` is the reviewer's label, `predicted_category` the zero-shot prediction at the
    time, so accuracy = share of rows where they agree. The seed's position/ELP columns stay
    (nullable: a category correction has no expected flux position).
    """

    __tablename__ = "training_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    input_text: Mapped[str] = mapped_column(Text)
    label_kind: Mapped[str] = mapped_column(String(16), default="category", server_default="category")
    expected_category: Mapped[str | None] = mapped_column(String(64))
    predicted_category: Mapped[str | None] = mapped_column(String(64))
    fragment_id: Mapped[int | None] = mapped_column(
        ForeignKey("fragments.id", ondelete="SET NULL", name="fk_training_samples_fragment"), index=True
    )
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("onnx_models.id", ondelete="SET NULL", name="fk_training_samples_model")
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_training_samples_user")
    )
    expected_position: Mapped[int | None] = mapped_column(SmallInteger)
    expected_elp: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    actual_position: Mapped[int | None] = mapped_column(SmallInteger)
    actual_elp: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    loss: Mapped[float | None] = mapped_column(REAL)
    epoch: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("label_kind IN ('category','archetype')", name="ck_training_samples_kind"),
        CheckConstraint("expected_position BETWEEN 0 AND 9", name="ck_training_samples_expected_pos"),
        CheckConstraint("actual_position BETWEEN 0 AND 9", name="ck_training_samples_actual_pos"),
    )


Index("ix_beam_tensors_confidence", BeamTensor.confidence.desc())


# The monitoring design "Query by signal: indexed DESC" (its idx_asi_inferences_signal_created).
Index("idx_asi_inferences_signal_created", AsiInference.confidence.desc(), AsiInference.created_at.desc())
