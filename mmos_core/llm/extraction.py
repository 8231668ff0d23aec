"""One extraction call: prompt a model on one chunk, get schema-constrained JSON, validate it.

Every model, local or cloud, is called through `litellm.completion`. Provider errors that may pass
(timeouts, connection errors, 429, 5xx) are retried with exponential backoff (tenacity); with the
model's shared per-minute limits (docs/throughput.md) each attempt is counted first and a 429 goes back
to the caller with its Retry-After (`mmos_core.llm.rate_limits.RateLimited`); an answer
that is not valid JSON of the expected shape is returned as `malformed` with its raw text, never
guessed at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.domain import CATEGORIES, CallStatus
from mmos_core.llm.catalog import ModelSpec, litellm
from mmos_core.llm.rate_limits import ProviderLimits, RateLimited, is_quota_exhausted, retry_after_s

#: extract-v3 marks who speaks in the passage and which speaker is the person (docs/quality.md);
#: batches queued under extract-v2 keep that prompt when they resume.
PROMPT_VERSION = "extract-v3"
PROMPT_VERSION_V2 = "extract-v2"
MAX_FRAGMENTS_PER_CHUNK = 6

CategoryName = Literal[
    "Biographical",
    "Cognitive",
    "Communicative",
    "Behavioral",
    "Values and Beliefs",
    "Social",
    "Emotional",
    "Meta-cognitive",
]


class ExtractedFragment(BaseModel):
    """One fragment as the model returns it (validated; ranges enforced here, not by the grammar)."""

    category: CategoryName
    fragment_type: Literal["direct_quote", "paraphrase", "inference"]
    content: str = Field(min_length=3, max_length=4000)
    context: str = Field(default="", max_length=2000)
    insight: str = Field(default="", max_length=2000)
    relevance: int = Field(ge=1, le=10)
    confidence: float = Field(ge=0.0, le=1.0)


#: JSON schema sent to the model. Written out (no $refs) so llama.cpp's grammar converter and
#: cloud structured-output modes read it alike; numeric ranges are validated by pydantic afterwards.
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fragments": {
            "type": "array",
            # At least one: with an empty list allowed, the 0.5B model answered [] to every passage.
            "minItems": 1,
            "maxItems": MAX_FRAGMENTS_PER_CHUNK,
            "items": {
                "type": "object",
                "properties": {
                    "category": {"type": "string", "enum": list(CATEGORIES)},
                    "fragment_type": {"type": "string", "enum": ["direct_quote", "paraphrase", "inference"]},
                    # maxLength keeps a small model from looping inside one string until max_tokens.
                    "content": {"type": "string", "maxLength": 600},
                    "context": {"type": "string", "maxLength": 300},
                    "insight": {"type": "string", "maxLength": 300},
                    "relevance": {"type": "integer", "description": "1 (marginal) to 10 (defining)"},
                    "confidence": {"type": "number", "description": "0 to 1"},
                },
                "required": ["category", "fragment_type", "content", "context", "insight", "relevance", "confidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["fragments"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = """You extract fragments about a person from a passage of a source, to build a profile of how they think, feel and act.

A fragment is one piece of evidence about the person. Fields:
- category: one of Biographical (life events, family, education, career), Cognitive (how they think, reason, learn, decide), Communicative (how they speak or write), Behavioral (habits, routines, actions), Values and Beliefs (principles, convictions, morals), Social (relationships, attitudes to others), Emotional (feelings, temperament), Meta-cognitive (how they judge their own mind and abilities).
- fragment_type: "direct_quote" (words copied exactly from the passage), "paraphrase" (their point in your words) or "inference" (a conclusion the passage supports).
- content: for a direct_quote, one or two sentences copied word for word from the passage; otherwise your paraphrase or inference.
- context: what the passage is about, in one short sentence.
- insight: what this reveals about the person, in one short sentence of your own (never a copy of the content).
- relevance: integer from 1 (trivial) to 10 (defining trait).
- confidence: number from 0 to 1, how well the passage supports the fragment.

Extract 3 to 6 fragments, mostly direct quotes. If the passage says nothing about the person (a licence, a table of contents), return a single fragment with relevance 1.

Answer with JSON only: {"fragments": [...]}."""


SPEAKERS_RULE = """

The passage may have several speakers, each turn starting with its speaker label. Only the person's own words are evidence about them: a direct_quote must be copied from a turn of the person's speaker label, never from another speaker's turn (a question, a remark) and never from bracketed or editorial notes ([Laughter], notes written about the event). Other speakers' words are context only."""


def speakers_line(speakers: Sequence[str], person_labels: Sequence[str]) -> str:
    """The prompt's line naming who speaks in the passage and which speaker is the person ('' when unlabelled)."""
    if not speakers:
        return ""
    persons = set(person_labels)
    named = [f"{s} (the person)" if s in persons else f"{s} (another speaker: context only)" for s in speakers]
    return "Speakers in this passage: " + "; ".join(named) + "\n"


def build_messages(
    *,
    chunk_text: str,
    title: str,
    person: str | None,
    source_type: str,
    speakers: Sequence[str] = (),
    person_labels: Sequence[str] = (),
    prompt_version: str = PROMPT_VERSION,
) -> list[dict[str, str]]:
    """Chat messages for one chunk (system instructions + the passage with its source metadata).

    Args:
        speakers: speaker labels whose words are in the chunk, in order; person_labels: the person's.
            With `prompt_version` extract-v3 and labelled speakers, the prompt says who speaks and which
            speaker is the person; extract-v2 (older batches) ignores them.
    """
    who = f"Person: {person}\n" if person else ""
    system = SYSTEM_PROMPT
    if prompt_version != PROMPT_VERSION_V2 and speakers:
        who += speakers_line(speakers, person_labels)
        system = SYSTEM_PROMPT.replace("\n\nAnswer with JSON only", SPEAKERS_RULE + "\n\nAnswer with JSON only")
    user = f"Source: {title} ({source_type})\n{who}\nPassage:\n\"\"\"\n{chunk_text}\n\"\"\""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def response_format(spec: ModelSpec) -> dict[str, Any]:
    """The `response_format` argument: OpenAI-style structured output (`json_schema`), which litellm maps for
    each cloud provider and llama-server compiles to a grammar. The same for every model (`spec` kept so a
    provider needing another form has one place to say so)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "fragments", "schema": RESPONSE_SCHEMA, "strict": True},
    }


@dataclass
class CallResult:
    """Outcome of one chunk's call. Tokens from the provider's usage; duration in ms, retries included."""

    status: CallStatus
    fragments: list[ExtractedFragment] = field(default_factory=list)
    invalid_fragments: list[dict[str, Any]] = field(default_factory=list)
    raw_response: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    attempts: int = 1
    error: str | None = None

    def parsed_json(self) -> dict[str, Any]:
        """What `extraction_calls.parsed` stores: the valid fragments and the rejected ones with reasons."""
        return {
            "fragments": [f.model_dump() for f in self.fragments],
            "invalid_fragments": self.invalid_fragments,
        }


class ProviderError(RuntimeError):
    """The provider failed after all retries (or with an error that retrying cannot fix)."""

    def __init__(self, message: str, *, retryable: bool, attempts: int, duration_ms: int):
        super().__init__(message)
        self.retryable = retryable
        self.attempts = attempts
        self.duration_ms = duration_ms


def _is_transient(exc: BaseException) -> bool:
    ll = litellm()
    transient = (
        ll.exceptions.Timeout,
        ll.exceptions.APIConnectionError,
        ll.exceptions.RateLimitError,
        ll.exceptions.ServiceUnavailableError,
        ll.exceptions.InternalServerError,
    )
    if isinstance(exc, transient):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


def parse_answer(raw: str | None) -> tuple[CallStatus, list[ExtractedFragment], list[dict[str, Any]], str | None]:
    """Validate a model's raw answer.

    Returns:
        (status, valid fragments, invalid fragments with their errors, error message). The status
        is `malformed` when the text is not JSON or has no `fragments` list; individual fragments
        that fail validation, or repeat an earlier one verbatim, are moved to the invalid list and
        do not make the answer malformed.
    """
    if raw is None or not raw.strip():
        return CallStatus.malformed, [], [], "empty answer"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return CallStatus.malformed, [], [], f"not JSON: {exc.msg} at char {exc.pos}"
    items = data.get("fragments") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return CallStatus.malformed, [], [], "JSON has no 'fragments' list"
    valid: list[ExtractedFragment] = []
    invalid: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        try:
            fragment = ExtractedFragment.model_validate(item)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            invalid.append({"item": item, "error": errors})
            continue
        key = " ".join(fragment.content.lower().split())
        if key in seen:
            # small models repeat one fragment until the array is full; keep the first
            invalid.append({"item": item, "error": "duplicate of an earlier fragment in this answer"})
            continue
        seen.add(key)
        valid.append(fragment)
    return CallStatus.ok, valid, invalid, None


def completion_kwargs(
    spec: ModelSpec, messages: list[dict[str, str]], *, temperature: float, max_tokens: int,
    settings: Settings | None = None, **extra: Any,
) -> dict[str, Any]:
    """Arguments of `litellm.completion` for `spec`: its litellm name, `api_base` / placeholder key for the
    local server, `settings.llm_timeout_s`, and no litellm-side retries (`complete_with_retries` retries)."""
    settings = settings or get_settings()
    kwargs: dict[str, Any] = {
        "model": spec.litellm_model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "timeout": settings.llm_timeout_s,
        "num_retries": 0,
        **extra,
    }
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    return kwargs


def complete_with_retries(
    kwargs: dict[str, Any], *, label: str, settings: Settings | None = None,
    limits: ProviderLimits | None = None, request_tokens: int = 0,
) -> tuple[Any, int, int]:
    """One `litellm.completion(**kwargs)` with tenacity backoff on transient errors (timeouts, connection
    errors, 429, 5xx) for up to `settings.llm_max_retries` attempts.

    With `limits` (the extraction worker passes its model's, docs/throughput.md) every HTTP attempt,
    retries included, is first counted in the shared per-minute windows (`ProviderLimits.take`, with
    `request_tokens` for a tokens-per-minute window), and a 429 is not retried here: it is raised as
    `RateLimited` with the provider's Retry-After, so the caller waits without holding a budget
    reservation and without using up an attempt. Without `limits` (judge, debate) a 429 is retried like
    the other transient errors, after at least its Retry-After (at most `llm_rate_limit_max_wait_s`).

    Returns:
        (response, attempts made, duration in ms including the waits).
    Raises:
        RateLimited: only with `limits`: the window is full (`source="limiter"`) or the provider answered
            429 (`source="provider"`, `retry_after_s` from its header or None).
        ProviderError: still failing after the retries, or a non-transient error (bad key, unknown model,
            bad request, a 429 for exhausted credit); `retryable` says which, `label` (the model name)
            starts its message.
    """
    settings = settings or get_settings()
    started = time.monotonic()
    attempts = 0
    ll = litellm()
    backoff = wait_exponential(multiplier=1, min=1, max=30)

    def wait(retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        hint = retry_after_s(exc) if exc is not None else None
        return max(backoff(retry_state), min(hint or 0.0, settings.llm_rate_limit_max_wait_s))

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, ll.exceptions.RateLimitError) and (limits is not None or is_quota_exhausted(exc)):
            return False  # the caller waits (with limits), or waiting cannot help (no credit left)
        return _is_transient(exc)

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(max(1, settings.llm_max_retries)),
            wait=wait,
            retry=retry_if_exception(retryable),
            reraise=True,
        ):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                if limits is not None:
                    limits.take(request_tokens)
                response = ll.completion(**kwargs)
    except RateLimited as exc:  # our shared window is full: nothing was sent
        exc.attempts, exc.duration_ms = attempts - 1, int((time.monotonic() - started) * 1000)
        raise
    except Exception as exc:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if limits is not None and isinstance(exc, ll.exceptions.RateLimitError) and not is_quota_exhausted(exc):
            raise RateLimited(
                f"{label}: the provider answered 429 (rate limited): {exc}", source="provider",
                retry_after_s=retry_after_s(exc), attempts=attempts, duration_ms=elapsed_ms,
            ) from exc
        raise ProviderError(
            f"{label}: {type(exc).__name__}: {exc}", retryable=_is_transient(exc) and not is_quota_exhausted(exc),
            attempts=attempts, duration_ms=elapsed_ms,
        ) from exc
    return response, attempts, int((time.monotonic() - started) * 1000)


def extract_chunk(
    spec: ModelSpec,
    *,
    chunk_text: str,
    title: str,
    person: str | None,
    source_type: str,
    settings: Settings | None = None,
    messages: list[dict[str, str]] | None = None,
    limits: ProviderLimits | None = None,
    request_tokens: int = 0,
) -> CallResult:
    """Run one extraction call with retries on transient provider errors.

    Args:
        limits, request_tokens: the model's shared per-minute limits and the tokens one request counts
            against them (`complete_with_retries`); None: unpaced, 429s retried in place.
    Returns:
        A `CallResult` with status `ok` or `malformed`.
    Raises:
        RateLimited: only with `limits`: not sent because a window is full, or answered 429 (nothing billed).
        ProviderError: the provider still failed after `settings.llm_max_retries` attempts, or failed
            with a non-transient error (bad key, unknown model, bad request).
    """
    settings = settings or get_settings()
    # the worker passes the messages it reserved the budget for (speakers marked, the batch's prompt version)
    messages = messages or build_messages(chunk_text=chunk_text, title=title, person=person, source_type=source_type)
    kwargs = completion_kwargs(
        spec, messages, temperature=settings.extraction_temperature, max_tokens=settings.llm_max_output_tokens,
        settings=settings, response_format=response_format(spec),
    )
    response, attempts, duration_ms = complete_with_retries(
        kwargs, label=spec.name, settings=settings, limits=limits, request_tokens=request_tokens
    )

    choice = response.choices[0]
    raw = choice.message.content
    usage = getattr(response, "usage", None)
    input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    status, valid, invalid, error = parse_answer(raw)
    if status is CallStatus.ok and choice.finish_reason == "length" and not valid:
        status, error = CallStatus.malformed, "answer cut at max_tokens"
    return CallResult(
        status=status,
        fragments=valid,
        invalid_fragments=invalid,
        raw_response=raw,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        duration_ms=duration_ms,
        attempts=attempts,
        error=error,
    )
