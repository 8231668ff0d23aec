"""Calls in flight per batch and the reading of a provider's Retry-After (docs/throughput.md); no services."""

from __future__ import annotations

import email.utils
import time
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from mmos_core.core.config import Settings
from mmos_core.llm.rate_limits import TOKEN_UNIT, ProviderLimits, _Rule, concurrency_for, is_quota_exhausted, retry_after_s


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("MMOS_LLM_CONCURRENCY", "0", "llm_concurrency"),
        ("MMOS_LLM_CONCURRENCY", "-3", "llm_concurrency"),
        ("MMOS_LLM_CONCURRENCY_OVERRIDES", '{"openai": 0}', "llm_concurrency_overrides.openai"),
        ("MMOS_LLM_RPM_LIMITS", '{"openai": -1}', "llm_rpm_limits.openai"),
        ("MMOS_LLM_TPM_LIMITS", '{"anthropic": 0}', "llm_tpm_limits.anthropic"),
    ],
)
def test_zero_or_negative_is_refused_at_start_with_the_reason(monkeypatch, env, value, field):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    message = str(err.value)
    assert field in message and "greater than" in message


def test_concurrency_model_name_wins_over_provider_then_the_default(monkeypatch):
    monkeypatch.setenv("MMOS_LLM_CONCURRENCY", "6")
    monkeypatch.setenv("MMOS_LLM_CONCURRENCY_OVERRIDES", '{"local": 1, "openai": 8, "gpt-4o": 2}')
    s = Settings()
    assert concurrency_for(model_name="gpt-4o", provider="openai", settings=s) == 2
    assert concurrency_for(model_name="gpt-4o-mini", provider="openai", settings=s) == 8
    assert concurrency_for(model_name="qwen2.5-coder-0.5b-instruct", provider="local", settings=s) == 1
    assert concurrency_for(model_name="claude-haiku-4-5", provider="anthropic", settings=s) == 6


def test_local_models_default_to_the_servers_slots():
    s = Settings(llm_slots=3)
    assert concurrency_for(model_name="qwen2.5-coder-1.5b-instruct", provider="local", settings=s) == 3
    assert concurrency_for(model_name="gpt-4o-mini", provider="openai", settings=s) == s.llm_concurrency


def _exc(headers: dict[str, str], message: str = "rate limited") -> Exception:
    exc = RuntimeError(message)
    exc.litellm_response_headers = headers  # type: ignore[attr-defined]
    return exc


def test_retry_after_in_seconds_milliseconds_or_a_date():
    assert retry_after_s(_exc({"Retry-After": "7"})) == 7.0
    assert retry_after_s(_exc({"retry-after": "1.5"})) == 1.5
    assert retry_after_s(_exc({"retry-after-ms": "2500", "retry-after": "3"})) == 2.5  # the finer one wins
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s(_exc({"Retry-After": date}), now=now) == pytest.approx(30, abs=1.5)
    assert retry_after_s(_exc({"Retry-After": "-4"})) == 0.0
    assert retry_after_s(_exc({"Retry-After": "soon"})) is None
    assert retry_after_s(_exc({})) is None
    # headers only on the httpx response (other litellm paths)
    plain = RuntimeError("x")
    plain.response = SimpleNamespace(headers={"Retry-After": "4"})  # type: ignore[attr-defined]
    assert retry_after_s(plain) == 4.0


def test_exhausted_credit_is_told_apart_from_a_rate_limit():
    assert is_quota_exhausted(_exc({}, "You exceeded your current quota ... 'code': 'insufficient_quota'"))
    assert not is_quota_exhausted(_exc({}, "Rate limit reached for requests"))


def test_token_costs_round_up_and_never_exceed_the_window():
    from limits import RateLimitItemPerMinute

    rule = _Rule("openai", "tpm", RateLimitItemPerMinute(50))  # 5,000 tokens a minute
    assert rule.cost(1) == 1 and rule.cost(TOKEN_UNIT) == 1 and rule.cost(TOKEN_UNIT + 1) == 2
    assert rule.cost(10**6) == 50  # a prompt larger than the window still goes out, alone
    assert _Rule("openai", "rpm", RateLimitItemPerMinute(3)).cost(10_000) == 1


def test_no_limit_configured_needs_no_redis():
    limits = ProviderLimits.for_model(model_name="gpt-4o-mini", provider="openai", settings=Settings(), redis=None)
    assert limits.unlimited and not limits.counts_tokens
    assert limits.wait_for_room(10_000) == 0.0
    limits.take(10_000)  # nothing to count
    assert limits.request_tokens(litellm_model="gpt-4o-mini", messages=[], max_tokens=100) == 0


def test_a_request_is_never_sent_uncounted_when_redis_is_away():
    from limits import RateLimitItemPerMinute
    from redis.exceptions import ConnectionError as RedisConnectionError

    from mmos_core.llm.rate_limits import RateLimited

    class Unreachable:
        def hit(self, *args, **kwargs):
            raise RedisConnectionError("connection refused")

    limits = ProviderLimits((_Rule("openai", "rpm", RateLimitItemPerMinute(5)),), Unreachable())  # type: ignore[arg-type]
    with pytest.raises(RateLimited) as err:
        limits.take()
    assert err.value.source == "limiter" and err.value.retry_after_s == 1.0 and "unreachable" in str(err.value)
