"""Vocabulary of the workbench: source types, quality tiers, priorities, fragment categories.

Values follow the core and optimizer designs (`sources.quality`, `extraction_priority`, the 8 categories, the
`v_queue_status` effective-priority rule).
"""

from __future__ import annotations

import enum


class SourceType(str, enum.Enum):
    """Kind of source material (the core design `sources.source_type`)."""

    interview = "interview"
    podcast = "podcast"
    speech = "speech"
    letter = "letter"
    book = "book"
    article = "article"
    social_media = "social_media"


class QualityTier(str, enum.Enum):
    """How close a source is to the person: primary (own words) … tertiary (about them)."""

    primary = "primary"
    secondary = "secondary"
    tertiary = "tertiary"


class ExtractionPriority(str, enum.Enum):
    """Analyst-set urgency of a source (the core design `sources.extraction_priority`)."""

    CRITICAL = "CRITICAL"
    VERY_HIGH = "VERY_HIGH"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


#: Queue priority (0-10) of each extraction priority; the core design queues use 10 for important work.
PRIORITY_POINTS: dict[ExtractionPriority, int] = {
    ExtractionPriority.CRITICAL: 10,
    ExtractionPriority.VERY_HIGH: 8,
    ExtractionPriority.HIGH: 6,
    ExtractionPriority.MEDIUM: 4,
    ExtractionPriority.LOW: 2,
}

#: The core design `v_queue_status`: primary ×2, secondary ×1.5, tertiary ×1.
QUALITY_MULTIPLIER: dict[QualityTier, float] = {
    QualityTier.primary: 2.0,
    QualityTier.secondary: 1.5,
    QualityTier.tertiary: 1.0,
}


def effective_priority(priority: int, quality: QualityTier | str) -> float:
    """The core design's effective priority: `priority × {primary: 2, secondary: 1.5, tertiary: 1}`.

    Args:
        priority: queue priority, 0-10.
        quality: the source's quality tier.
    Returns:
        The effective priority (0-20); higher runs first.
    """
    return priority * QUALITY_MULTIPLIER[QualityTier(quality)]


def rq_queue_for(effective: float) -> str:
    """RQ queue that carries a job of this effective priority ('high' ≥ 15, 'default' ≥ 8, else 'low').

    RQ has no priority inside one queue; workers listen on high, default, low in that order.
    """
    if effective >= 15:
        return "high"
    if effective >= 8:
        return "default"
    return "low"


RQ_QUEUES: tuple[str, ...] = ("high", "default", "low")


class Category(str, enum.Enum):
    """The 8 fragment categories of the MMOS taxonomy (the core design coverage analysis)."""

    Biographical = "Biographical"
    Cognitive = "Cognitive"
    Communicative = "Communicative"
    Behavioral = "Behavioral"
    ValuesAndBeliefs = "Values and Beliefs"
    Social = "Social"
    Emotional = "Emotional"
    MetaCognitive = "Meta-cognitive"


#: Prefix of fragment codes (`COG-000123`) per category.
CATEGORY_CODES: dict[Category, str] = {
    Category.Biographical: "BIO",
    Category.Cognitive: "COG",
    Category.Communicative: "COM",
    Category.Behavioral: "BEH",
    Category.ValuesAndBeliefs: "VAL",
    Category.Social: "SOC",
    Category.Emotional: "EMO",
    Category.MetaCognitive: "MET",
}

CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)


class FragmentType(str, enum.Enum):
    """How a fragment relates to the source text."""

    direct_quote = "direct_quote"
    paraphrase = "paraphrase"
    inference = "inference"


class BatchStatus(str, enum.Enum):
    """Life of a processing batch: pending → processing → completed | failed."""

    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class QueueStatus(str, enum.Enum):
    """Status of a `processing_queue` row (the core design)."""

    waiting = "waiting"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class CallStatus(str, enum.Enum):
    """Outcome of one LLM call on one chunk."""

    ok = "ok"
    malformed = "malformed"
    provider_error = "provider_error"


class RelationshipType(str, enum.Enum):
    """`fragment_relationships.relationship_type`."""

    supports = "supports"
    contradicts = "contradicts"
    elaborates = "elaborates"
    duplicates = "duplicates"


class SourceProcessingStatus(str, enum.Enum):
    """`source_processing.processing_status`: the source's side of one batch."""

    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class ReservationStatus(str, enum.Enum):
    """`budget_reservations.status`: held against the day's cap until settled or released (docs/quality.md)."""

    held = "held"
    settled = "settled"
    released = "released"


class OptimizationStatus(str, enum.Enum):
    """`optimization_runs.status`: sampling a few chunks → running every chunk → completed | failed."""

    sampling = "sampling"
    full = "full"
    completed = "completed"
    failed = "failed"


class CatalogModelStatus(str, enum.Enum):
    """`ai_models.status`: priced by litellm (active / deprecated) or only known from imported votes."""

    active = "active"
    deprecated = "deprecated"
    external = "external"


class AiLogStatus(str, enum.Enum):
    """`ai_logs.status`: outcome of one logged LLM call."""

    ok = "ok"
    malformed = "malformed"
    provider_error = "provider_error"
    error = "error"


class OnnxModelStatus(str, enum.Enum):
    """`onnx_models.status` of a registered embedding model."""

    ready = "ready"
    loading = "loading"
    error = "error"
    disabled = "disabled"


class ConversationStatus(str, enum.Enum):
    """`conversations.status`: idle (imported) → queued / analyzing, or running (a debate) → completed | failed."""

    idle = "idle"
    queued = "queued"
    analyzing = "analyzing"
    running = "running"
    completed = "completed"
    failed = "failed"


class InterventionStatus(str, enum.Enum):
    """`conversation_loops.intervention_status`: pending → acknowledged → resolved, or dismissed."""

    pending = "pending"
    acknowledged = "acknowledged"
    resolved = "resolved"
    dismissed = "dismissed"


class RejectReason(str, enum.Enum):
    """Why a reviewer rejected a fragment; each maps to the automatic check it tests (docs/quality.md)."""

    misquote = "misquote"
    wrong_speaker = "wrong_speaker"
    unsupported_insight = "unsupported_insight"
    wrong_category = "wrong_category"
    trivial = "trivial"
