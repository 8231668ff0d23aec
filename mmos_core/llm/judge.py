"""An LLM judge of one fragment: does its quote support its insight, and which category fits?

One call per fragment, through the same litellm path as extraction (`completion_kwargs`,
`complete_with_retries`, the model's structured-output style). The judge sees the source passage, the
quote, its context and the insight, and answers JSON validated by pydantic::

    {"reason": "one short sentence", "supported": "yes" | "partly" | "no", "category": "<one of the 8>"}

The fragment's own category is *not* shown: the judge picks one blind and `category_agrees` compares the
two, because a label shown in the prompt anchors the answer (the rubric and the stored fields are in
docs/quality.md, "LLM support judge"). `reason` comes first in the schema so that a grammar-constrained
model writes its reason before its verdict.

Errors follow the extraction path (`mmos_core.llm.extraction.extract_chunk`): an answer that is not JSON
of the expected shape is returned with status `malformed` and its raw text, never guessed at or raised;
a provider that still fails after the retries raises `ProviderError`, and the caller that stores verdicts
records it with `JudgeResult.from_provider_error`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.domain import CATEGORIES, CallStatus
from mmos_core.llm.catalog import ModelSpec, UnknownModelError, price_snapshot
from mmos_core.llm.cost import PriceSnapshot, UnknownPriceError, cost_usd
from mmos_core.llm.extraction import CategoryName, ProviderError, complete_with_retries, completion_kwargs
from mmos_core.llm.local_models import LOCAL_MODELS
from mmos_core.llm.rate_limits import ProviderLimits

#: Version of the rubric below; stored with every verdict so that a changed rubric never mixes with old verdicts.
RUBRIC_VERSION = "support-v1"
#: max_tokens of one judge call: the answer is 3 short fields (reason ≤ 200 chars ≈ 50 tokens); the local
#: models generate ~30-46 tokens/s on 2 cores at best (docs/local-models.md, "Measured"), so each output
#: token counts.
JUDGE_MAX_TOKENS = 160
#: Longest passage shown to the judge, in characters, cut around the quote: with the rubric a full prompt is
#: ≈ 600 tokens (litellm's token_counter), below an extraction prompt with its ~2,400-char chunk.
MAX_PASSAGE_CHARS = 1500

SupportLabel = Literal["yes", "partly", "no"]
#: Numeric support score per label (1, 0.5, 0): "partly" is half-way so that AUROC can rank it.
SUPPORT_SCORES: dict[str, float] = {"yes": 1.0, "partly": 0.5, "no": 0.0}

#: JSON schema sent to the judge (written out, no $refs, like the extraction schema).
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # maxLength keeps a small model from looping inside the string until max_tokens
        "reason": {"type": "string", "maxLength": 200},
        "supported": {"type": "string", "enum": ["yes", "partly", "no"]},
        "category": {"type": "string", "enum": list(CATEGORIES)},
    },
    "required": ["reason", "supported", "category"],
    "additionalProperties": False,
}

#: The rubric (system message). Its wording is part of RUBRIC_VERSION: change one, change the other.
SYSTEM_PROMPT = "\n".join(
    [
        "You check one fragment extracted about a person from a source passage.",
        "",
        "Decide, from the passage only (not from what you know about the person):",
        "- supported: does the quote, read with its context and the passage, support the insight about the person?"
        ' "yes": the insight follows from the quote. "partly": it supports only part of the insight, or needs an'
        ' extra assumption. "no": it does not support it, contradicts it, or is not about the person.',
        "- category: the one category the insight fits best: Biographical (life events, family, education, career),"
        " Cognitive (how they think, reason, learn, decide), Communicative (how they speak or write), Behavioral"
        " (habits, routines, actions), Values and Beliefs (principles, convictions, morals), Social (relationships,"
        " attitudes to others), Emotional (feelings, temperament), Meta-cognitive (how they judge their own mind and"
        " abilities).",
        "- reason: one short sentence.",
        "",
        'Answer with JSON only: {"reason": "...", "supported": "yes" | "partly" | "no", "category": "..."}',
    ]
)


class JudgeAnswer(BaseModel):
    """The judge's answer as validated (extra keys are ignored; the three fields are required)."""

    reason: str = Field(max_length=1000)
    supported: SupportLabel
    category: CategoryName


@dataclass(frozen=True)
class JudgeResult:
    """One verdict of the judge on one fragment, as stored.

    Attributes:
        status: `ok`, `malformed` (raw text kept in `raw`, reason in `error`) or `provider_error`
            (only from `from_provider_error`; `judge_fragment` raises instead).
        judge_model: the judge's `ModelSpec.name`; rubric_version: `RUBRIC_VERSION` at call time.
        support: "yes" / "partly" / "no"; support_score: 1.0 / 0.5 / 0.0 (`SUPPORT_SCORES`); None unless ok.
        judge_category: the category the judge chose; category_agrees: it equals the fragment's category
            (None unless ok).
        reason: the judge's one-sentence reason.
        prompt_tokens, completion_tokens: the provider's usage (0 when it reports none).
        cost_usd: `cost_usd(prices, …)` of this call in USD (Decimal, 1e-6), malformed answers included.
        latency_ms: wall time of the call in ms, retries and their waits included; attempts: calls made.
        raw: the answer text exactly as received; error: why it is not `ok`.
    """

    status: CallStatus
    judge_model: str
    rubric_version: str = RUBRIC_VERSION
    support: SupportLabel | None = None
    support_score: float | None = None
    judge_category: str | None = None
    category_agrees: bool | None = None
    reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    attempts: int = 0
    raw: str | None = None
    error: str | None = None

    def as_record(self) -> dict[str, Any]:
        """JSON-ready dict of every field (status as its string, cost as a decimal string)."""
        return {
            "status": self.status.value,
            "judge_model": self.judge_model,
            "rubric_version": self.rubric_version,
            "support": self.support,
            "support_score": self.support_score,
            "judge_category": self.judge_category,
            "category_agrees": self.category_agrees,
            "reason": self.reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": str(self.cost_usd),
            "latency_ms": self.latency_ms,
            "attempts": self.attempts,
            "raw": self.raw,
            "error": self.error,
        }

    @classmethod
    def from_provider_error(cls, exc: ProviderError, *, judge_model: str) -> JudgeResult:
        """The `provider_error` verdict to store when `judge_fragment` raised `exc` (no tokens, no cost)."""
        return cls(
            status=CallStatus.provider_error,
            judge_model=judge_model,
            latency_ms=exc.duration_ms,
            attempts=exc.attempts,
            error=str(exc),
        )


def passage_excerpt(source_passage: str, quote: str, *, max_chars: int = MAX_PASSAGE_CHARS) -> str:
    """At most `max_chars` characters of `source_passage`, centred on where `quote` starts in it.

    The quote's first 60 characters are searched case- and whitespace-insensitively; the fuzzy
    `mmos_core.text.locate` is a sibling layer that `mmos_core.llm` may not import (the import-linter
    layers contract in pyproject.toml). When they are not found the head of the passage is kept. A caller
    that knows the fragment's location can pass an already-cut passage. Cuts are marked with "…".
    Never raises.
    """
    text = " ".join(source_passage.split())
    if len(text) <= max_chars:
        return text
    needle = " ".join(quote.split())[:60].lower()
    at = text.lower().find(needle) if needle else -1
    if at < 0:
        return text[:max_chars].rstrip() + " …"
    centre = at + min(len(" ".join(quote.split())), max_chars) // 2
    start = max(0, min(centre - max_chars // 2, len(text) - max_chars))
    end = start + max_chars
    return ("… " if start > 0 else "") + text[start:end].strip() + (" …" if end < len(text) else "")


def judge_messages(
    *,
    quote: str,
    context: str,
    insight: str,
    person: str | None,
    source_passage: str,
    max_passage_chars: int = MAX_PASSAGE_CHARS,
) -> list[dict[str, str]]:
    """Chat messages of one judge call: the fixed rubric (system) and the fragment with its passage (user).

    The fragment's category is deliberately absent (the judge chooses one blind; see the module docstring).
    The passage is cut to `max_passage_chars` around the quote, whitespace collapsed (`passage_excerpt`).
    """
    who = person.strip() if person and person.strip() else "the person"
    user = (
        f"Person: {who}\n\n"
        f'Passage:\n"""\n{passage_excerpt(source_passage, quote, max_chars=max_passage_chars)}\n"""\n\n'
        f"Quote: {quote.strip()}\n"
        f"Context: {context.strip() or '(none)'}\n"
        f"Insight: {insight.strip() or '(none)'}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def judge_response_format(spec: ModelSpec) -> dict[str, Any]:
    """`response_format` for the judge schema: OpenAI-style `json_schema`, as extraction."""
    return {"type": "json_schema", "json_schema": {"name": "support_verdict", "schema": JUDGE_SCHEMA, "strict": True}}


def parse_verdict(raw: str | None) -> tuple[JudgeAnswer | None, str | None]:
    """Validate a judge's raw answer.

    Returns:
        (answer, None) when `raw` is a JSON object with valid `reason`, `supported` and `category`;
        (None, error message) otherwise (empty, not JSON, not an object, or schema-invalid). Never raises.
    """
    if raw is None or not raw.strip():
        return None, "empty answer"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at char {exc.pos}"
    if not isinstance(data, dict):
        return None, "JSON is not an object"
    try:
        return JudgeAnswer.model_validate(data), None
    except ValidationError as exc:
        return None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def judge_fragment(
    *,
    spec: ModelSpec,
    prices: PriceSnapshot,
    quote: str,
    context: str,
    insight: str,
    category: str,
    person: str | None,
    source_passage: str,
    settings: Settings | None = None,
    limits: ProviderLimits | None = None,
) -> JudgeResult:
    """Ask `spec` whether `quote` (with `context` and `source_passage`) supports `insight`, and which
    category fits; compare that category with the fragment's `category`.

    Args:
        spec: the judge model (see `choose_judge_model`).
        prices: per-token prices the cost is computed with (`catalog.price_snapshot(spec)`; zero for local).
        quote, context, insight, category: the fragment's `content`, `context`, `insight`, `category`.
        person: who the fragment is about (None: "the person").
        source_passage: the chunk the fragment came from (cut to `MAX_PASSAGE_CHARS` around the quote).
        settings: timeouts and retries (`llm_timeout_s`, `llm_max_retries`); default `get_settings()`.
        limits: the judge model's shared per-minute windows (docs/throughput.md); each HTTP attempt is counted
            in them, and a 429 or a full window raises `RateLimited` for the caller to wait out.
    Returns:
        A `JudgeResult` with status `ok` or `malformed` (raw text kept), temperature 0.
    Raises:
        ProviderError: the provider still failed after `settings.llm_max_retries` attempts, or failed with
            a non-transient error, exactly as `extract_chunk` does; store it with `JudgeResult.from_provider_error`.
    """
    settings = settings or get_settings()
    messages = judge_messages(
        quote=quote, context=context, insight=insight, person=person, source_passage=source_passage
    )
    kwargs = completion_kwargs(
        spec,
        messages,
        temperature=0.0,
        max_tokens=JUDGE_MAX_TOKENS,
        settings=settings,
        response_format=judge_response_format(spec),
    )
    tokens = limits.request_tokens(litellm_model=spec.litellm_model, messages=messages, max_tokens=JUDGE_MAX_TOKENS) if limits else 0
    response, attempts, latency_ms = complete_with_retries(
        kwargs, label=spec.name, settings=settings, limits=limits, request_tokens=tokens
    )

    choice = response.choices[0]
    raw = choice.message.content
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    common: dict[str, Any] = dict(
        judge_model=spec.name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_usd(prices, input_tokens=prompt_tokens, output_tokens=completion_tokens),
        latency_ms=latency_ms,
        attempts=attempts,
        raw=raw,
    )
    answer, error = parse_verdict(raw)
    if answer is None:
        if choice.finish_reason == "length":
            error = f"answer cut at max_tokens ({error})"
        return JudgeResult(status=CallStatus.malformed, error=error, **common)
    return JudgeResult(
        status=CallStatus.ok,
        support=answer.supported,
        support_score=SUPPORT_SCORES[answer.supported],
        judge_category=answer.category,
        category_agrees=answer.category == category,
        reason=answer.reason,
        **common,
    )


def choose_judge_model(
    available: Sequence[ModelSpec],
    *,
    enabled: bool = True,
    override: str | None = None,
    prices: Mapping[str, PriceSnapshot] | None = None,
) -> ModelSpec | None:
    """The judge: the strongest model among `available` (pure: everything comes in as arguments).

    Rule (docs/quality.md, "LLM support judge"):
      1. `enabled` False → None (judging switched off).
      2. `override` set → the model of that name in `available`.
      3. otherwise the cloud model with the highest output price per token (then input price, then name,
         for a stable choice): with no public benchmark to rank models on, price is the proxy for
         "strongest" that the price map already gives us. Cloud models without a known price rank last.
      4. no cloud model → the largest local model (GGUF size in `LOCAL_MODELS`; unknown local models rank
         as size 0, ties go to the later one in `available`, which lists local models smallest first).
      5. nothing available → None.

    Args:
        available: models that can be called now (`catalog.available_models(settings)`: cloud models only
            when their provider key is set).
        enabled: the judging switch.
        override: a model name that replaces the rule (empty/None: use the rule).
        prices: `ModelSpec.name` → snapshot; default `catalog.price_snapshot` (litellm's bundled price map).
    Raises:
        UnknownModelError: `override` names a model that is not in `available` (a silent fallback would
            change which judge the stored verdicts come from).
    """
    if not enabled:
        return None
    if override and override.strip():
        for spec in available:
            if spec.name == override.strip():
                return spec
        names = ", ".join(s.name for s in available) or "none"
        raise UnknownModelError(f"Judge model {override.strip()!r} is not available (available: {names}).")
    cloud = [s for s in available if not s.is_local]
    if cloud:
        ranked = sorted(cloud, key=lambda s: (*(-p for p in _price_rank(s, prices)), s.name))
        return ranked[0]
    local = [(LOCAL_MODELS[s.name].size if s.name in LOCAL_MODELS else 0, i, s) for i, s in enumerate(available)]
    return max(local, key=lambda t: (t[0], t[1]))[2] if local else None


def _price_rank(spec: ModelSpec, prices: Mapping[str, PriceSnapshot] | None) -> tuple[float, float]:
    """(output, input) USD per token of `spec`; (-1, -1) when its price is unknown, so it ranks last."""
    try:
        snap = prices[spec.name] if prices is not None else price_snapshot(spec)
    except (KeyError, UnknownPriceError):
        return -1.0, -1.0
    return snap.output_cost_per_token, snap.input_cost_per_token
