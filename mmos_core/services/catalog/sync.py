"""Fill the catalog: litellm's bundled price map (chat models) + the local llama.cpp models, the catalog design's
task categories and mappings. Idempotent upserts; `mmos catalog sync` and `ensure_catalog` call it.

Cost buckets (USD per 1M tokens, blended 3 input : 1 output, i.e. (3·in + out) / 4 — extraction
prompts are several times longer than the answers):

======  ==========================  =====================================================
bucket  blended price               examples (litellm map)
======  ==========================  =====================================================
free    0 (local models)            qwen2.5-coder-0.5b/1.5b on the llama.cpp server
low     < 2.00                      gpt-4o-mini 0.26, gpt-3.5-turbo 0.75, claude-haiku-4-5 2.00 → medium
medium  2.00 – < 4.00               gpt-4.1 3.50, gpt-5 3.44
high    ≥ 4.00                      gpt-4o 4.38, claude-sonnet-4-5 6.00, gpt-4 37.50
unknown no per-token price in map   image/search-priced entries
======  ==========================  =====================================================

The thresholds were chosen so that the six chat models of the catalog design's own seed data land in the
seed's buckets at their list prices (gpt-4o-mini, gemini-2.0-flash, claude-3.5-haiku low;
gemini-1.5-pro medium; gpt-4o, claude-3.5-sonnet high).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmos_core.core.config import get_settings
from mmos_core.core.domain import CatalogModelStatus
from mmos_core.llm.catalog import litellm
from mmos_core.llm.local_models import LOCAL_MODELS
from mmos_core.models.catalog import AiModel, AiModelTaskMapping, AiTaskCategory

LOW_MAX_PER_1M = 2.0
MEDIUM_MAX_PER_1M = 4.0

#: litellm capability flag → the catalog design capability tag.
CAPABILITY_FLAGS: dict[str, str] = {
    "supports_function_calling": "function_calling",
    "supports_vision": "vision",
    "supports_response_schema": "json_mode",
    "supports_reasoning": "text_reasoning",
    "supports_native_streaming": "streaming",
    "supports_prompt_caching": "prompt_caching",
    "supports_web_search": "web_search",
    "supports_pdf_input": "pdf_input",
    "supports_audio_input": "audio_input",
    "supports_audio_output": "audio_output",
}

#: The catalog design's categories plus the workbench's own two. The catalog design requires `text_reasoning` for
#: content_ideas, but litellm flags only "reasoning" models, which would exclude the seed's own pick
#: (gpt-4o); we make it preferred instead.
CATEGORIES: list[dict[str, Any]] = [
    {
        "category_key": "fragment_extraction",
        "category_name": "Fragment extraction",
        "description": "Quotes, paraphrases and inferences about a person from a chunk of a source, as schema-checked JSON.",
        "required_capabilities": ["text_generation", "json_mode"],
        "preferred_capabilities": ["function_calling"],
        "default_priority": "quality",
        "default_complexity": "moderate",
        "typical_max_tokens": 1200,
        "typical_temperature": Decimal("0"),
        "tags": ["mmos", "extraction"],
    },
    {
        "category_key": "conversation_turn",
        "category_name": "Conversation turn",
        "description": "One assistant reply in a conversation (the conversations design), judged by the people who read it.",
        "required_capabilities": ["text_generation"],
        "preferred_capabilities": ["text_chat"],
        "default_priority": "balanced",
        "default_complexity": "moderate",
        "typical_max_tokens": 1024,
        "typical_temperature": Decimal("0.7"),
        "tags": ["conversation"],
    },
    {"category_key": "content_caption", "category_name": "Social Media Captions",
     "description": "Generate captions for social media posts", "required_capabilities": ["text_generation"],
     "default_priority": "balanced", "typical_max_tokens": 500, "tags": ["content"]},
    {"category_key": "content_hooks", "category_name": "Attention Hooks",
     "description": "Generate attention-grabbing hooks", "required_capabilities": ["text_generation"],
     "default_priority": "speed", "typical_max_tokens": 300, "tags": ["content"]},
    {"category_key": "content_hashtags", "category_name": "Hashtags",
     "description": "Generate relevant hashtags", "required_capabilities": ["text_generation"],
     "default_priority": "speed", "typical_max_tokens": 200, "tags": ["content"]},
    {"category_key": "content_ideas", "category_name": "Content Ideas",
     "description": "Generate content ideas and storylines", "required_capabilities": ["text_generation"],
     "preferred_capabilities": ["text_reasoning"], "default_priority": "quality", "typical_max_tokens": 2000,
     "tags": ["content"]},
    {"category_key": "image_social", "category_name": "Social Media Images",
     "description": "Generate images for social media", "required_capabilities": ["image_generation"],
     "default_priority": "balanced", "tags": ["image"]},
    {"category_key": "video_short", "category_name": "Short Videos",
     "description": "Generate short video clips", "required_capabilities": ["video_generation"],
     "default_priority": "quality", "tags": ["video"]},
]

#: The catalog design's hand-made mappings: (model, category, base suitability, recommended, rank; higher rank =
#: preferred, as the seed's column comment says — its data numbers the top pick 1, so ranks are flipped).
#: Applied only where the model is in the catalog (this litellm map lacks the seed's claude-3-5-*
#: names, and image models are not chat models).
SEED_MAPPINGS: list[tuple[str, str, float, bool, int]] = [
    ("gpt-4o-mini", "content_caption", 0.95, True, 2),
    ("claude-3-5-haiku-20241022", "content_caption", 0.90, False, 1),
    ("gpt-4o", "content_ideas", 0.98, True, 2),
    ("claude-3-5-sonnet-20241022", "content_ideas", 0.97, True, 1),
    ("dall-e-3", "image_social", 0.95, True, 2),
    ("stability:stable-diffusion-3", "image_social", 0.90, False, 1),
]

#: Categories every local model and every configured cloud model is mapped to (prior 0.5: unknown).
WORKBENCH_CATEGORIES = ("fragment_extraction", "conversation_turn")

_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def cost_bucket(input_per_1m: float | None, output_per_1m: float | None, *, is_local: bool = False) -> str:
    """free / low / medium / high / unknown from prices in USD per 1M tokens (thresholds in the module doc)."""
    if is_local:
        return "free"
    if input_per_1m is None or output_per_1m is None:
        return "unknown"
    blended = (3 * input_per_1m + output_per_1m) / 4
    if blended == 0:
        return "free"
    if blended < LOW_MAX_PER_1M:
        return "low"
    if blended < MEDIUM_MAX_PER_1M:
        return "medium"
    return "high"


def _per_1m(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return (Decimal(repr(float(value))) * 1_000_000).quantize(Decimal("0.000001"))
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def model_row(key: str, entry: Mapping[str, Any], *, today: dt.date, price_source: str) -> dict[str, Any] | None:
    """One `ai_models` row from a litellm price-map entry; None unless it is a chat model.

    status: `deprecated` when litellm's `deprecation_date` is today or earlier (is_active false),
    else `active`; `deprecated_at` keeps the date either way (a future date is an announcement).
    """
    if entry.get("mode") != "chat" or key == "sample_spec":
        return None
    caps = ["text_generation", "text_chat"] + [tag for flag, tag in CAPABILITY_FLAGS.items() if entry.get(flag) is True]
    inp, out = _per_1m(entry.get("input_cost_per_token")), _per_1m(entry.get("output_cost_per_token"))
    dep = _date(entry.get("deprecation_date"))
    deprecated = dep is not None and dep <= today
    version = _VERSION.search(key)
    return {
        "model_id": key,
        "model_name": key.rsplit("/", 1)[-1],
        "provider": str(entry.get("litellm_provider") or "unknown")[:64],
        "version": version.group(1) if version else None,
        "capabilities": caps,
        "supports_streaming": entry.get("supports_native_streaming") is True,
        "supports_json_mode": entry.get("supports_response_schema") is True,
        "supports_function_calling": entry.get("supports_function_calling") is True,
        "supports_vision": entry.get("supports_vision") is True,
        "max_tokens": _int(entry.get("max_output_tokens")) or _int(entry.get("max_tokens")),
        "context_window": _int(entry.get("max_input_tokens")),
        "cost_bucket": cost_bucket(
            float(inp) if inp is not None else None, float(out) if out is not None else None
        ),
        "input_cost_per_1m": inp,
        "output_cost_per_1m": out,
        "price_source": price_source,
        "status": CatalogModelStatus.deprecated.value if deprecated else CatalogModelStatus.active.value,
        "is_active": not deprecated,
        "is_local": False,
        "deprecated_at": dep,
        "metadata_": {k: entry[k] for k in ("source", "supported_regions") if k in entry},
    }


def local_rows(*, context_tokens: int, max_output_tokens: int) -> list[dict[str, Any]]:
    """`ai_models` rows of the llama.cpp-served models (free; JSON schema via llama.cpp's grammar)."""

    return [
        {
            "model_id": alias,
            "model_name": alias,
            "provider": "local",
            "version": "q4_k_m",
            "capabilities": ["text_generation", "text_chat", "json_mode", "local"],
            "supports_streaming": True,
            "supports_json_mode": True,
            "supports_function_calling": False,
            "supports_vision": False,
            "max_tokens": max_output_tokens,
            "context_window": context_tokens,
            "cost_bucket": "free",
            "input_cost_per_1m": Decimal(0),
            "output_cost_per_1m": Decimal(0),
            "price_source": "local llama.cpp server (no per-token price)",
            "status": CatalogModelStatus.active.value,
            "is_active": True,
            "is_local": True,
            "deprecated_at": None,
            "metadata_": {"gguf": m.filename, "sha256": m.sha256},
        }
        for alias, m in LOCAL_MODELS.items()
    ]


@dataclass
class SyncReport:
    """What a sync did: model rows inserted / updated, of which deprecated, categories and mappings added."""

    inserted: int = 0
    updated: int = 0
    deprecated: int = 0
    local: int = 0
    categories_added: int = 0
    mappings_added: int = 0
    skipped_mappings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI and the page."""
        line = (
            f"{self.inserted} models added, {self.updated} updated ({self.deprecated} deprecated, {self.local} local); "
            f"{self.categories_added} task categories and {self.mappings_added} mappings added"
        )
        if self.skipped_mappings:
            line += f"; seed mappings skipped (model not in catalog): {', '.join(self.skipped_mappings)}"
        return line


# Columns a sync refreshes on an existing row; manager-owned ones (is_recommended, priority_rank,
# description, use_cases, limitations) and the refresh job's measured ones are left alone.
_SYNCED = (
    "model_name", "provider", "version", "capabilities", "supports_streaming", "supports_json_mode",
    "supports_function_calling", "supports_vision", "max_tokens", "context_window", "cost_bucket",
    "input_cost_per_1m", "output_cost_per_1m", "price_source", "status", "is_local", "deprecated_at", "metadata",
)


def upsert_models(*, session: Session, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert or refresh `ai_models` rows by `model_id`. Returns (inserted, updated). Does not commit.

    A deprecated model becomes inactive; otherwise `is_active` keeps what a manager set.
    """
    inserted = updated = 0
    table = AiModel.__table__
    for start in range(0, len(rows), 500):
        part = [{("metadata" if k == "metadata_" else k): v for k, v in r.items()} for r in rows[start : start + 500]]
        stmt = insert(table).values(part)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.model_id],
            set_={
                **{c: stmt.excluded[c] for c in _SYNCED},
                "is_active": case((stmt.excluded.status == CatalogModelStatus.deprecated.value, False), else_=table.c.is_active),
                "updated_at": func.now(),
            },
        ).returning(table.c.id, literal_column("xmax = 0"))
        for _, was_inserted in session.execute(stmt):
            if was_inserted:
                inserted += 1
            else:
                updated += 1
    return inserted, updated


def sync_catalog(
    *,
    session: Session,
    model_cost: Mapping[str, Mapping[str, Any]] | None = None,
    today: dt.date | None = None,
    price_source: str | None = None,
) -> SyncReport:
    """Upsert every chat model of litellm's price map and the local models; add missing seed categories
    and mappings. Idempotent: a second run inserts nothing. Does not commit.

    Args:
        model_cost: a price map in litellm's `model_cost` shape (default: the installed litellm's,
            read offline).
        today: the date deprecation is judged against (default: today, UTC).
    """

    settings = get_settings()
    today = today or dt.datetime.now(dt.UTC).date()
    if model_cost is None:
        ll = litellm()
        model_cost = ll.model_cost
        if price_source is None:
            from importlib.metadata import version

            price_source = f"litellm {version('litellm')} price map"
    price_source = price_source or "price map"
    # llm.server registers the local models in litellm's map as `openai/<alias>`; they are listed once, as local.

    registered = {f"openai/{alias}" for alias in LOCAL_MODELS}
    rows = [
        r
        for k, e in model_cost.items()
        if k not in registered and (r := model_row(k, e, today=today, price_source=price_source))
    ]
    locals_ = local_rows(context_tokens=settings.llm_context_tokens, max_output_tokens=settings.llm_max_output_tokens)
    report = SyncReport(deprecated=sum(1 for r in rows if r["status"] == CatalogModelStatus.deprecated.value), local=len(locals_))
    report.inserted, report.updated = upsert_models(session=session, rows=rows + locals_)

    report.categories_added = ensure_categories(session=session)
    ids = dict(session.execute(select(AiModel.model_id, AiModel.id)).all())
    mappings: list[dict[str, Any]] = []
    for model, category, base, recommended, rank in SEED_MAPPINGS:
        if model not in ids:
            report.skipped_mappings.append(model)
            continue
        mappings.append(dict(model_id=ids[model], category_key=category, base_suitability=Decimal(str(base)),
                             suitability_score=Decimal(str(base)), is_recommended=recommended, priority_rank=rank))
    workbench_models = [r["model_id"] for r in locals_] + [
        n.strip() for n in settings.cloud_models.split(",") if n.strip() in ids
    ]
    for name in workbench_models:
        for category in WORKBENCH_CATEGORIES:
            mappings.append(dict(model_id=ids[name], category_key=category, base_suitability=Decimal("0.5"),
                                 suitability_score=Decimal("0.5")))
    if mappings:
        stmt = insert(AiModelTaskMapping).values(mappings).on_conflict_do_nothing(
            index_elements=["model_id", "category_key"]
        ).returning(AiModelTaskMapping.id)
        report.mappings_added = len(session.execute(stmt).all())
    return report


def ensure_categories(*, session: Session) -> int:
    """Add the task categories that are missing (existing ones keep their edits). Returns how many were added."""
    defaults: dict[str, Any] = {
        "description": None, "required_capabilities": [], "preferred_capabilities": [], "default_priority": "balanced",
        "default_complexity": "moderate", "typical_max_tokens": None, "typical_temperature": None, "tags": [],
    }
    rows = [{**defaults, **c} for c in CATEGORIES]  # a multi-row VALUES needs the same keys in every row
    stmt = insert(AiTaskCategory).values(rows).on_conflict_do_nothing(index_elements=["category_key"])
    return len(session.execute(stmt.returning(AiTaskCategory.id)).all())


def ensure_catalog(*, session: Session) -> SyncReport | None:
    """Sync the catalog when `ai_models` is empty (worker start); None when it already has rows. Does not commit."""
    # workers starting together would all find the table empty: one syncs, the others wait and see rows
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('mmos.ai_models.ensure_catalog'))"))
    if session.scalar(select(func.count()).select_from(AiModel)):
        return None
    return sync_catalog(session=session)
