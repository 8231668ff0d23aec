"""How fast one model may be called: calls in flight per batch, and provider limits shared by all workers.

Three knobs (docs/throughput.md):

- **concurrency** — chunk calls one batch keeps in flight (`concurrency_for`: an entry of
  `llm_concurrency_overrides` for the model name or its provider, else `llm_slots` for local models (the
  server generates that many at once: more calls would only queue there) and `llm_concurrency` for others);
- **requests and tokens per minute** — `llm_rpm_limits` / `llm_tpm_limits` by provider or model name,
  enforced by the `limits` package's moving-window strategy on the workbench's Redis, so every worker
  process and every thread draws from the same window. `ProviderLimits.wait_for_room` waits (consuming
  nothing) until a request would fit; `ProviderLimits.take` consumes one request and its tokens right
  before each HTTP attempt, retries included, or raises `RateLimited` when another worker got there first;
- **the provider's own 429** — `retry_after_s` reads its `Retry-After` (or `retry-after-ms`) header, and
  `RateLimited(source="provider")` carries it to the worker, which waits that long without holding a
  budget reservation (docs/quality.md, "Budgets that hold").

Tokens are counted in units of `TOKEN_UNIT` (cost rounded up, limit rounded down: never over the
limit) so that a 2 M tokens-per-minute window is a Redis list of 20,000 entries, not 2 million.
Timestamps are the client's `time.time()`: workers on several machines need synchronised clocks.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.redis import get_redis
from mmos_core.llm.catalog import litellm

#: Tokens per unit of a tokens-per-minute window (see the module docstring).
TOKEN_UNIT = 100
#: Prefix of the moving-window keys in Redis.
KEY_PREFIX = "mmos:ratelimit"
#: Length of the moving window, seconds: limits are per minute (tests shorten it).
WINDOW_S = 60
#: Added to the window: a request is counted just before it is sent and reaches the provider a little
#: later, so a window of exactly WINDOW_S could let the provider see limit + 1 in its own minute.
WINDOW_MARGIN_S = 1


def concurrency_for(*, model_name: str, provider: str, settings: Settings | None = None) -> int:
    """Chunk calls a batch of `model_name` keeps in flight: its entry in `llm_concurrency_overrides`,
    else its provider's, else `llm_slots` for the local server (provider "local") and `llm_concurrency`
    for the others (each validated to 1-64 when the settings load)."""
    settings = settings or get_settings()
    overrides = settings.llm_concurrency_overrides
    for key in (model_name, provider):
        if key in overrides:
            return int(overrides[key])
    return int(settings.llm_slots if provider == "local" else settings.llm_concurrency)


class RateLimited(RuntimeError):
    """A call did not go out, or was refused, for rate reasons; nothing was billed.

    Attributes:
        source: "limiter" (our shared per-minute window is full) or "provider" (HTTP 429).
        retry_after_s: seconds to wait before trying again; None when a 429 gave no hint.
        attempts: HTTP attempts made for this call so far; duration_ms: their time, waits included.
    """

    def __init__(self, message: str, *, source: Literal["limiter", "provider"], retry_after_s: float | None,
                 attempts: int = 0, duration_ms: int = 0):
        super().__init__(message)
        self.source = source
        self.retry_after_s = retry_after_s
        self.attempts = attempts
        self.duration_ms = duration_ms


def _headers_of(exc: BaseException) -> Mapping[str, str]:
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers:
            return headers
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None) or {}


def retry_after_s(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds a 429 asks to wait: `retry-after-ms` (milliseconds), else `Retry-After` (seconds or an
    HTTP date), read from the response headers litellm attaches to its exception. None when absent or
    unreadable; never negative."""
    headers = {str(k).lower(): str(v) for k, v in dict(_headers_of(exc)).items()}
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_quota_exhausted(exc: BaseException) -> bool:
    """A 429 that waiting cannot fix: the account's credit is used up (OpenAI's `insufficient_quota` code in
    the error body litellm keeps as `exc.body`, or its "exceeded your current quota" message)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and "insufficient_quota" in (body.get("code"), body.get("type")):
        return True
    text = str(exc)
    return "insufficient_quota" in text or "exceeded your current quota" in text


@dataclass(frozen=True)
class _Rule:
    key: str  # provider or model name, as written in the settings
    kind: Literal["rpm", "tpm"]
    item: RateLimitItem

    def cost(self, tokens: int) -> int:
        if self.kind == "rpm":
            return 1
        return min(self.item.amount, max(1, math.ceil(tokens / TOKEN_UNIT)))  # one huge prompt still fits an empty window


class ProviderLimits:
    """The per-minute limits that apply to one model's calls (its provider's and its own), in Redis.

    Build with `ProviderLimits.for_model`; with no limit configured every method returns at once.
    Thread-safe (the Redis client's pool is).
    """

    def __init__(self, rules: tuple[_Rule, ...], limiter: MovingWindowRateLimiter | None):
        self.rules = rules
        self._limiter = limiter

    @classmethod
    def for_model(cls, *, model_name: str, provider: str, settings: Settings | None = None,
                  redis: Redis | None = None, window_s: int | None = None) -> ProviderLimits:
        """The limits of `llm_rpm_limits` / `llm_tpm_limits` keyed by `provider` or `model_name`.

        Args:
            redis: the connection whose pool the windows use (default: the workbench's `get_redis()`).
            window_s: the moving window's length in seconds (default `WINDOW_S`, one minute; plus
                `WINDOW_MARGIN_S`); the configured amounts are allowed per window.
        """
        settings = settings or get_settings()
        window = int(window_s or WINDOW_S) + WINDOW_MARGIN_S
        rules: list[_Rule] = []
        for key in dict.fromkeys((provider, model_name)):
            if key in settings.llm_rpm_limits:
                amount = int(settings.llm_rpm_limits[key])
                rules.append(_Rule(key, "rpm", RateLimitItemPerSecond(amount, multiples=window, namespace="rpm")))
            if key in settings.llm_tpm_limits:
                units = max(1, int(settings.llm_tpm_limits[key]) // TOKEN_UNIT)
                rules.append(_Rule(key, "tpm", RateLimitItemPerSecond(units, multiples=window, namespace="tpm")))
        if not rules:
            return cls((), None)
        connection = redis if redis is not None else get_redis()
        storage = RedisStorage("redis://", connection_pool=connection.connection_pool, key_prefix=KEY_PREFIX)
        return cls(tuple(rules), MovingWindowRateLimiter(storage))

    @property
    def unlimited(self) -> bool:
        """True when no per-minute limit applies."""
        return not self.rules

    @property
    def counts_tokens(self) -> bool:
        """True when a tokens-per-minute limit applies (only then are prompts counted)."""
        return any(r.kind == "tpm" for r in self.rules)

    def request_tokens(self, *, litellm_model: str, messages: list[dict[str, str]], max_tokens: int,
                       token_counter: Callable[..., int] | None = None) -> int:
        """Tokens one request counts against a tokens-per-minute limit: prompt tokens (litellm's count over
        the exact messages) + `max_tokens`, as providers reserve them. 0 when no such limit applies."""
        if not self.counts_tokens:
            return 0
        if token_counter is None:
            token_counter = litellm().token_counter
        return int(token_counter(model=litellm_model, messages=messages)) + int(max_tokens)

    def _blocking_rule(self, tokens: int) -> tuple[_Rule, float] | None:
        """The first rule without room for one request of `tokens`, with the seconds until its oldest entry
        leaves the window; None when every rule has room. Consumes nothing."""
        assert self._limiter is not None
        for rule in self.rules:
            if not self._limiter.test(rule.item, rule.key, cost=rule.cost(tokens)):
                stats = self._limiter.get_window_stats(rule.item, rule.key)
                return rule, max(0.0, stats.reset_time - time.time())
        return None

    def wait_for_room(self, tokens: int = 0, *, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until every limit has room for one request of `tokens` (nothing is consumed: another
        worker may still take the room first, and `take` then says so). Returns the seconds waited.

        Raises:
            redis.exceptions.RedisError: Redis is unreachable (the job fails, and RQ retries it).
        """
        if self._limiter is None:
            return 0.0
        waited = 0.0
        while (blocked := self._blocking_rule(tokens)) is not None:
            # until the oldest entry leaves the window, plus a little jitter so waiting threads do not all wake at once
            pause = max(0.05, blocked[1]) + random.uniform(0.0, 0.25)
            sleep(pause)
            waited += pause
        return waited

    def take(self, tokens: int = 0) -> None:
        """Count one request and its `tokens` in every window, right before it is sent.

        Raises:
            RateLimited: source "limiter", a window is full (another worker took the room since
                `wait_for_room`); `retry_after_s` is the time until its oldest entry leaves. Windows hit
                before the full one keep their entry: the count errs on the safe side, never over.
                Also when Redis does not answer (retry after 1 s): a request is never sent uncounted.
        """
        if self._limiter is None:
            return
        for rule in self.rules:
            try:
                taken = self._limiter.hit(rule.item, rule.key, cost=rule.cost(tokens))
            except RedisError as exc:  # never send uncounted: wait, and `wait_for_room` fails the job if Redis stays away
                raise RateLimited(f"{rule.key}: the rate-limit windows in Redis are unreachable ({exc})",
                                  source="limiter", retry_after_s=1.0) from exc
            if not taken:
                stats = self._limiter.get_window_stats(rule.item, rule.key)
                raise RateLimited(
                    f"{rule.key}: {rule.kind} limit {self._limit_text(rule)} reached",
                    source="limiter", retry_after_s=max(0.05, stats.reset_time - time.time()),
                )

    @staticmethod
    def _limit_text(rule: _Rule) -> str:
        per = f"/{rule.item.get_expiry()} s"
        return f"{rule.item.amount}{per}" if rule.kind == "rpm" else f"{rule.item.amount * TOKEN_UNIT} tokens{per}"

    def describe(self) -> dict[str, Any]:
        """{"rpm": {key: n}, "tpm": {key: n}} — the limits in force, for logs."""
        out: dict[str, Any] = {"rpm": {}, "tpm": {}}
        for rule in self.rules:
            out[rule.kind][rule.key] = rule.item.amount * (1 if rule.kind == "rpm" else TOKEN_UNIT)
        return out
