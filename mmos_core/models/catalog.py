"""The catalog design tables (migration 0005): ai_models, ai_task_categories, ai_model_task_mappings, ai_user_preferences,
ai_model_performance_aggregates, ai_logs. (`ai_user_feedback` lives in mmos_core.models, migration 0002.)

Deviations from the catalog design, and why:

- Integer keys like every other table of the workbench (the seed uses UUIDs; nothing here is created
  outside PostgreSQL, so a UUID buys nothing).
- `ai_models.model_id` is the name the workbench runs a model under: litellm's price-map key for cloud
  models (`gpt-4o-mini`, `bedrock/us-east-1/anthropic.claude-instant-v1`), the llama.cpp alias for local
  ones. It is what `processing_batches.model_name` and `ai_user_feedback.model_name` store, so feedback
  joins the catalog by that name. `model_name` is a display name.
- Prices are USD per 1M tokens (the seed says per 1k; provider price pages and litellm's docs quote 1M).
- `status` (active / deprecated / external) sits next to the seed's `is_active`; `deprecated_at` is a
  date because litellm's map only has a date.
- `ai_model_task_mappings.base_suitability` is the prior a manager (or the seed) sets;
  `suitability_score` is the feedback posterior mean written by the aggregates refresh.
- `ai_user_preferences.is_pinned` marks the model a user chose for a task category (one per user and
  category); the counters beside it are refreshed from that user's feedback.
- `ai_logs` is a new table here (the seed only adds columns to an existing one); `confidence_score` is
  the model-selection confidence of the seed. `category_key` has no foreign key so that logging an LLM
  call never fails because the catalog has not been synced.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.core.domain import CatalogModelStatus
from mmos_core.models.base import Base

COST_BUCKETS = ("free", "low", "medium", "high", "unknown")
MODEL_STATUSES = ("active", "deprecated", "external")
TASK_PRIORITIES = ("speed", "balanced", "quality")
TASK_COMPLEXITIES = ("simple", "moderate", "complex")
SELECTED_BY = ("auto", "user_override", "fallback")
LOG_STATUSES = ("ok", "malformed", "provider_error", "error")
PERIOD_TYPES = ("daily", "weekly", "monthly", "all_time")


def _now() -> Any:
    return func.now()


class AiModel(Base):
    """The catalog design `ai_models`: one model the workbench knows of, with capabilities, limits and prices.

    Filled by `mmos catalog sync` from litellm's bundled price map (chat models) plus the local
    llama.cpp models (price 0), and by vote imports (`status='external'`).
    """

    __tablename__ = "ai_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(255), unique=True)
    model_name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(50))
    # Tags: text_generation, function_calling, vision, json_mode (= litellm supports_response_schema),
    # reasoning, prompt_caching, system_messages, web_search, audio_input, audio_output, pdf_input, local.
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    supports_streaming: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    supports_json_mode: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    supports_function_calling: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    supports_vision: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    max_tokens: Mapped[int | None] = mapped_column(Integer)  # max output tokens
    context_window: Mapped[int | None] = mapped_column(Integer)  # max input tokens
    average_speed_ms: Mapped[int | None] = mapped_column(Integer)  # mean latency from ai_logs (refresh)
    cost_bucket: Mapped[str] = mapped_column(String(16))
    input_cost_per_1m: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    output_cost_per_1m: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    price_source: Mapped[str | None] = mapped_column(String(200))
    overall_quality_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))  # 1-5 mean stars (refresh)
    reliability_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))  # 0-1 share of ok calls (refresh)
    status: Mapped[str] = mapped_column(String(16), default=CatalogModelStatus.active.value, server_default=CatalogModelStatus.active.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    is_local: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    is_recommended: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    priority_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    description: Mapped[str | None] = mapped_column(Text)
    use_cases: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    limitations: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())
    deprecated_at: Mapped[dt.date | None] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint("cost_bucket IN ('free','low','medium','high','unknown')", name="ck_ai_models_cost_bucket"),
        CheckConstraint("status IN ('active','deprecated','external')", name="ck_ai_models_status"),
        Index("idx_ai_models_provider", "provider"),
        Index("idx_ai_models_active", "is_active"),
        Index("idx_ai_models_cost_bucket", "cost_bucket"),
        Index("idx_ai_models_status", "status"),
        Index("idx_ai_models_capabilities", "capabilities", postgresql_using="gin"),
    )


class AiTaskCategory(Base):
    """The catalog design `ai_task_categories`: a kind of LLM task with required capabilities and defaults."""

    __tablename__ = "ai_task_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_key: Mapped[str] = mapped_column(String(100), unique=True)
    category_name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    required_capabilities: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    preferred_capabilities: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    default_priority: Mapped[str] = mapped_column(String(20), default="balanced", server_default="balanced")
    default_complexity: Mapped[str] = mapped_column(String(20), default="moderate", server_default="moderate")
    typical_max_tokens: Mapped[int | None] = mapped_column(Integer)
    typical_temperature: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    parent_category: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("default_priority IN ('speed','balanced','quality')", name="ck_task_categories_priority"),
        CheckConstraint("default_complexity IN ('simple','moderate','complex')", name="ck_task_categories_complexity"),
        Index("idx_task_categories_active", "is_active"),
    )


class AiModelTaskMapping(Base):
    """The catalog design `ai_model_task_mappings`: how suitable a model is for a task category.

    `base_suitability` (0-1) is the prior; `suitability_score` is the posterior mean after feedback
    (see `mmos_core.analysis.posterior`), refreshed with the like/dislike/regenerate totals.
    """

    __tablename__ = "ai_model_task_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("ai_models.id", ondelete="CASCADE"))
    category_key: Mapped[str] = mapped_column(
        ForeignKey("ai_task_categories.category_key", ondelete="CASCADE", onupdate="CASCADE")
    )
    base_suitability: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=Decimal("0.5"), server_default="0.5")
    suitability_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    is_recommended: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    priority_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    average_quality: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    average_speed_ms: Mapped[int | None] = mapped_column(Integer)
    success_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    min_complexity: Mapped[str | None] = mapped_column(String(20))
    max_complexity: Mapped[str | None] = mapped_column(String(20))
    recommended_for_priority: Mapped[str | None] = mapped_column(String(20))
    total_uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_likes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_dislikes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_regenerates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("model_id", "category_key", name="uq_model_task_mapping"),
        CheckConstraint("base_suitability BETWEEN 0 AND 1", name="ck_model_task_base_suitability"),
        CheckConstraint("suitability_score BETWEEN 0 AND 1", name="ck_model_task_suitability"),
        Index("idx_model_task_model", "model_id"),
        Index("idx_model_task_category", "category_key"),
        Index("idx_model_task_recommended", "is_recommended"),
    )


class AiUserPreference(Base):
    """The catalog design `ai_user_preferences`: one user's record with one model on one task category.

    `is_pinned`: the model this user chose for the category (at most one per user and category).
    `preference_score` (0-1): the posterior mean of this user's own feedback, with the model's
    overall posterior mean as prior (see `posterior.user_preference_score`).
    """

    __tablename__ = "ai_user_preferences"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    model_id: Mapped[int] = mapped_column(ForeignKey("ai_models.id", ondelete="CASCADE"))
    category_key: Mapped[str] = mapped_column(
        ForeignKey("ai_task_categories.category_key", ondelete="CASCADE", onupdate="CASCADE")
    )
    preference_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    is_pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    total_interactions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    likes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dislikes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    regenerates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skips: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    average_quality_rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    total_ratings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    first_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), server_default=_now())
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("user_id", "model_id", "category_key", name="uq_user_preference"),
        CheckConstraint("preference_score BETWEEN 0 AND 1", name="ck_user_prefs_score"),
        Index("idx_user_prefs_user", "user_id"),
        Index("idx_user_prefs_model", "model_id"),
        Index("idx_user_prefs_category", "category_key"),
        Index(
            "uq_user_prefs_one_pinned",
            "user_id",
            "category_key",
            unique=True,
            postgresql_where="is_pinned",
        ),
    )


class AiModelPerformanceAggregate(Base):
    """The catalog design `ai_model_performance_aggregates`: per model, task category and period, from ai_logs and feedback.

    period_type daily (period = one UTC day), weekly (ISO week, Monday start), monthly (calendar month),
    all_time (period_start 1970-01-01, period_end = the refresh day). `satisfaction_score` is the
    feedback posterior mean, `recommendation_score` its 5 % lower credible bound (0-1 both, not the
    seed's unspecified composite). `total_cost_usd` keeps 6 decimals (local calls cost fractions of a cent).
    """

    __tablename__ = "ai_model_performance_aggregates"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("ai_models.id", ondelete="CASCADE"))
    category_key: Mapped[str] = mapped_column(
        ForeignKey("ai_task_categories.category_key", ondelete="CASCADE", onupdate="CASCADE")
    )
    period_type: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    total_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal(0), server_default="0")
    average_speed_ms: Mapped[int | None] = mapped_column(Integer)
    success_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    error_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    total_feedback: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    like_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dislike_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    regenerate_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    average_quality_rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    like_ratio: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    satisfaction_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    recommendation_score: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    posterior_high: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("model_id", "category_key", "period_type", "period_start", name="uq_perf_agg_period"),
        CheckConstraint("period_type IN ('daily','weekly','monthly','all_time')", name="ck_perf_agg_period_type"),
        CheckConstraint("period_end >= period_start", name="ck_perf_agg_period_order"),
        Index("idx_perf_agg_model", "model_id"),
        Index("idx_perf_agg_category", "category_key"),
        Index("idx_perf_agg_period", "period_type", "period_start"),
    )


class AiLog(Base):
    """One LLM call (the catalog design `ai_logs` with its task columns): which model, why it was chosen, what it cost.

    selected_by: `auto` (the recommender or optimizer chose), `user_override` (a person picked the
    model), `fallback` (tried after another model failed). `confidence_score`: the selection's
    confidence (0-1), e.g. the recommended model's posterior mean; null when nothing scored it.
    status: ok, malformed (answered but failed validation), provider_error (no usable answer), error.
    """

    __tablename__ = "ai_logs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("ai_models.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str | None] = mapped_column(String(64))
    category_key: Mapped[str | None] = mapped_column(String(100))
    task_priority: Mapped[str | None] = mapped_column(String(20))
    task_complexity: Mapped[str | None] = mapped_column(String(20))
    selected_by: Mapped[str] = mapped_column(String(20), default="auto", server_default="auto")
    confidence_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal(0), server_default="0")
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="SET NULL"))
    chunk_id: Mapped[int | None] = mapped_column(ForeignKey("source_chunks.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        CheckConstraint("selected_by IN ('auto','user_override','fallback')", name="ck_ai_logs_selected_by"),
        CheckConstraint("status IN ('ok','malformed','provider_error','error')", name="ck_ai_logs_status"),
        CheckConstraint("confidence_score BETWEEN 0 AND 1", name="ck_ai_logs_confidence"),
        CheckConstraint("task_priority IN ('speed','balanced','quality')", name="ck_ai_logs_priority"),
        CheckConstraint("task_complexity IN ('simple','moderate','complex')", name="ck_ai_logs_complexity"),
        Index("idx_ai_logs_category", "category_key"),
        Index("idx_ai_logs_priority", "task_priority"),
        Index("idx_ai_logs_created", "created_at"),
        Index("idx_ai_logs_model_created", "model_name", "created_at"),
        Index("idx_ai_logs_batch", "batch_id"),
    )


# The catalog design orders these DESC (its idx_model_task_score, idx_user_prefs_score, idx_perf_agg_score).
Index("idx_model_task_score", AiModelTaskMapping.suitability_score.desc())
Index("idx_user_prefs_score", AiUserPreference.preference_score.desc())
Index("idx_perf_agg_score", AiModelPerformanceAggregate.recommendation_score.desc())
