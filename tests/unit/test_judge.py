"""The LLM support judge: answers from a fake provider at the HTTP edge (pytest-httpserver, `fake_llm`),
validation of what comes back, retries, cost from the reported usage, and the judge-model choice rule.

Expected costs are worked out by hand from litellm's bundled price map (tokens × USD per token).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fakes import chat_completion

from mmos_core.core.domain import CATEGORIES, CallStatus
from mmos_core.llm.catalog import ModelSpec, UnknownModelError, local_models, price_snapshot
from mmos_core.llm.cost import PriceSnapshot
from mmos_core.llm.extraction import ProviderError
from mmos_core.llm.judge import (
    JUDGE_SCHEMA,
    RUBRIC_VERSION,
    SUPPORT_SCORES,
    JudgeResult,
    choose_judge_model,
    judge_fragment,
    judge_messages,
    parse_verdict,
    passage_excerpt,
)

PASSAGE = (
    "I have tried lately to read Shakespeare, and found it so intolerably dull that it nauseated me. "
    "I have also almost lost my taste for pictures or music."
)
FRAGMENT = dict(
    quote="I have tried lately to read Shakespeare, and found it so intolerably dull that it nauseated me.",
    context="Darwin on how his tastes changed with age.",
    insight="Late in life he lost his taste for poetry and literature.",
    category="Emotional",
    person="Charles Darwin",
    source_passage=PASSAGE,
)


def _answer(supported: str = "yes", category: str = "Emotional", reason: str = "He says so.") -> str:
    return json.dumps({"reason": reason, "supported": supported, "category": category})


@pytest.fixture()
def local_judge(fake_llm) -> ModelSpec:
    """The largest local model, pointed at the fake server by `fake_llm`."""
    return local_models()[-1]


def _judge(spec: ModelSpec, **overrides) -> JudgeResult:
    args = {**FRAGMENT, **overrides}
    return judge_fragment(spec=spec, prices=price_snapshot(spec), **args)


@pytest.mark.parametrize(
    ("supported", "judge_category", "score", "agrees"),
    [
        ("yes", "Emotional", 1.0, True),
        ("partly", "Emotional", 0.5, True),
        ("no", "Cognitive", 0.0, False),
        ("yes", "Values and Beliefs", 1.0, False),
    ],
)
def test_a_good_answer_is_stored_with_its_scores(fake_llm, local_judge, supported, judge_category, score, agrees):
    raw = _answer(supported, judge_category, "The quote states it directly.")
    fake_llm["respond"] = lambda req: (200, chat_completion(raw, prompt_tokens=310, completion_tokens=24))

    result = _judge(local_judge)

    assert result.status is CallStatus.ok
    assert (result.support, result.support_score) == (supported, score)
    assert (result.judge_category, result.category_agrees) == (judge_category, agrees)
    assert result.reason == "The quote states it directly."
    assert (result.prompt_tokens, result.completion_tokens) == (310, 24)
    assert result.cost_usd == Decimal("0")  # local model: zero-price snapshot
    assert result.judge_model == "qwen2.5-coder-1.5b-instruct"
    assert result.rubric_version == RUBRIC_VERSION
    assert result.raw == raw and result.error is None
    assert result.attempts == 1 and result.latency_ms >= 0
    assert result.as_record()["status"] == "ok" and result.as_record()["cost_usd"] == "0.000000"


def test_the_request_is_deterministic_schema_constrained_and_blind_to_the_category(fake_llm, local_judge):
    fake_llm["respond"] = lambda req: (200, chat_completion(_answer()))
    _judge(local_judge, category="Biographical")

    (req,) = fake_llm["requests"]
    assert req["temperature"] == 0.0
    # OpenAI-style structured output, which llama-server compiles to a grammar as cloud providers honour it
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"] == JUDGE_SCHEMA
    system, user = req["messages"][0]["content"], req["messages"][1]["content"]
    assert "supported" in system and all(c in system for c in CATEGORIES)
    assert FRAGMENT["quote"] in user and FRAGMENT["insight"] in user and "Charles Darwin" in user
    assert "pictures or music" in user  # the passage
    assert "Biographical" not in user  # the fragment's own category is not shown (anchoring)


@pytest.mark.parametrize(
    ("raw", "error_part"),
    [
        ('{"reason": "x", "supported": "yes", "category": "Emot', "not JSON"),
        ("Sure! The quote supports the insight.", "not JSON"),
        ("", "empty answer"),
        ('["yes", "Emotional"]', "not an object"),
    ],
)
def test_malformed_json_is_kept_raw_never_raised(fake_llm, local_judge, raw, error_part):
    fake_llm["respond"] = lambda req: (200, chat_completion(raw, prompt_tokens=300, completion_tokens=12))

    result = _judge(local_judge)

    assert result.status is CallStatus.malformed
    assert error_part in result.error
    assert result.raw == raw
    assert result.support is None and result.support_score is None
    assert result.judge_category is None and result.category_agrees is None
    assert (result.prompt_tokens, result.completion_tokens) == (300, 12)  # a malformed answer is still paid for


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"reason": "x", "supported": "maybe", "category": "Emotional"}, "supported"),
        ({"reason": "x", "supported": "Yes", "category": "Emotional"}, "supported"),  # no case guessing
        ({"reason": "x", "supported": "yes", "category": "Philosophical"}, "category"),
        ({"supported": "yes", "category": "Emotional"}, "reason"),
        ({"reason": "x", "category": "Emotional"}, "supported"),
        ({"reason": "x", "supported": 1, "category": "Emotional"}, "supported"),
    ],
)
def test_schema_invalid_json_is_malformed_with_the_field_named(fake_llm, local_judge, answer, field):
    raw = json.dumps(answer)
    fake_llm["respond"] = lambda req: (200, chat_completion(raw))

    result = _judge(local_judge)

    assert result.status is CallStatus.malformed
    assert field in result.error
    assert result.raw == raw and result.support is None


def test_an_answer_cut_at_max_tokens_says_so(fake_llm, local_judge):
    body = chat_completion('{"reason": "The quote shows that he', completion_tokens=160)
    body["choices"][0]["finish_reason"] = "length"
    fake_llm["respond"] = lambda req: (200, body)

    result = _judge(local_judge)

    assert result.status is CallStatus.malformed
    assert "cut at max_tokens" in result.error


def test_a_500_then_success_is_retried(fake_llm, local_judge):
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        if calls["n"] == 1:
            return 500, {"error": {"message": "model is loading", "type": "server_error"}}
        return 200, chat_completion(_answer("partly"))

    fake_llm["respond"] = respond
    result = _judge(local_judge)

    assert result.status is CallStatus.ok and result.support == "partly"
    assert result.attempts == 2
    assert len(fake_llm["requests"]) == 2
    assert result.latency_ms >= 900  # the backoff wait (≥ 1 s) is part of the latency


def test_provider_failing_after_retries_raises_like_extraction(fake_llm, local_judge, monkeypatch):
    from mmos_core.core.config import get_settings

    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "2")
    get_settings.cache_clear()
    fake_llm["respond"] = lambda req: (503, {"error": {"message": "overloaded", "type": "server_error"}})

    with pytest.raises(ProviderError) as info:
        _judge(local_judge)

    assert info.value.attempts == 2 and info.value.retryable
    assert len(fake_llm["requests"]) == 2
    stored = JudgeResult.from_provider_error(info.value, judge_model=local_judge.name)
    assert stored.status is CallStatus.provider_error
    assert stored.support is None and stored.cost_usd == Decimal("0") and stored.attempts == 2
    assert local_judge.name in stored.error


def test_a_bad_request_is_not_retried(fake_llm, local_judge):
    fake_llm["respond"] = lambda req: (400, {"error": {"message": "bad request", "type": "invalid_request_error"}})

    with pytest.raises(ProviderError) as info:
        _judge(local_judge)

    assert not info.value.retryable
    assert len(fake_llm["requests"]) == 1


def test_cost_is_computed_from_the_reported_usage_and_litellm_prices(fake_llm, httpserver):
    # gpt-4o-mini in litellm's price map: $1.5e-7 per input token, $6e-7 per output token.
    # 1,000 × 1.5e-7 + 200 × 6e-7 = 0.00015 + 0.00012 = $0.000270
    spec = ModelSpec(
        name="gpt-4o-mini",
        provider="openai",
        litellm_model="openai/gpt-4o-mini",
        is_local=False,
        api_base=f"http://127.0.0.1:{httpserver.port}/v1",
    )
    fake_llm["respond"] = lambda req: (200, chat_completion(_answer(), prompt_tokens=1000, completion_tokens=200))

    result = _judge(spec)

    assert result.status is CallStatus.ok
    assert result.cost_usd == Decimal("0.000270")
    assert result.as_record()["cost_usd"] == "0.000270"
    # cloud style: OpenAI structured output with the same schema
    (req,) = fake_llm["requests"]
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"] == JUDGE_SCHEMA


def test_cost_uses_the_given_snapshot_not_a_fresh_lookup(fake_llm, local_judge):
    # 500 × 2e-6 + 50 × 1e-5 = 0.001 + 0.0005 = $0.001500
    prices = PriceSnapshot(local_judge.name, 2e-6, 1e-5, source="hypothetical")
    fake_llm["respond"] = lambda req: (200, chat_completion(_answer(), prompt_tokens=500, completion_tokens=50))

    result = judge_fragment(spec=local_judge, prices=prices, **FRAGMENT)

    assert result.cost_usd == Decimal("0.001500")


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (_answer("no", "Social", ""), True),  # an empty reason is still an answer
        (json.dumps({"reason": "r", "supported": "yes", "category": "Social", "extra": 1}), True),
        ('{"reason": "r", "supported": "yes"}', False),
        (None, False),
    ],
)
def test_parse_verdict(raw, ok):
    answer, error = parse_verdict(raw)
    assert (answer is not None, error is None) == (ok, ok)


def test_support_scores_are_one_half_zero():
    assert SUPPORT_SCORES == {"yes": 1.0, "partly": 0.5, "no": 0.0}


def test_long_passages_are_cut_around_the_quote():
    quote = "The needle sentence is here."
    passage = "Filler words go on. " * 200 + quote + " More filler follows. " * 200
    excerpt = passage_excerpt(passage, quote, max_chars=300)
    assert quote in excerpt
    assert len(excerpt) <= 300 + 4 and excerpt.startswith("… ") and excerpt.endswith(" …")
    # not found: the head is kept
    head = passage_excerpt(passage, "Words that are nowhere.", max_chars=300)
    assert head.startswith("Filler words go on.") and head.endswith(" …") and len(head) <= 302
    # short passages are kept whole
    assert passage_excerpt(PASSAGE, "anything") == PASSAGE


def test_messages_without_a_person_or_context():
    messages = judge_messages(quote="q", context="", insight="i", person=None, source_passage="p")
    assert "Person: the person" in messages[1]["content"]
    assert "Context: (none)" in messages[1]["content"]


# ------------------------------------------------------------------------------------------ model choice

LOCAL_SMALL = ModelSpec("qwen2.5-coder-0.5b-instruct", "local", "openai/qwen2.5-coder-0.5b-instruct", True)
LOCAL_LARGE = ModelSpec("qwen2.5-coder-1.5b-instruct", "local", "openai/qwen2.5-coder-1.5b-instruct", True)
MINI = ModelSpec("gpt-4o-mini", "openai", "gpt-4o-mini", False)
HAIKU = ModelSpec("claude-haiku-4-5", "anthropic", "claude-haiku-4-5", False)
FLASH = ModelSpec("gemini/gemini-2.5-flash", "gemini", "gemini/gemini-2.5-flash", False)
UNPRICED = ModelSpec("acme/unpriced-model", "acme", "acme/unpriced-model", False)


def _p(name: str, inp: float, out: float) -> PriceSnapshot:
    return PriceSnapshot(name, inp, out, source="test")


PRICES = {
    MINI.name: _p(MINI.name, 1.5e-7, 6e-7),
    HAIKU.name: _p(HAIKU.name, 1e-6, 5e-6),
    FLASH.name: _p(FLASH.name, 3e-7, 2.5e-6),
}


@pytest.mark.parametrize(
    ("available", "kwargs", "expected"),
    [
        pytest.param([LOCAL_SMALL, LOCAL_LARGE, MINI, HAIKU], {"enabled": False}, None, id="switched-off"),
        pytest.param([], {}, None, id="nothing-available"),
        pytest.param([LOCAL_SMALL, LOCAL_LARGE], {}, LOCAL_LARGE, id="largest-local"),
        pytest.param([LOCAL_LARGE, LOCAL_SMALL], {}, LOCAL_LARGE, id="largest-local-any-order"),
        pytest.param([LOCAL_SMALL, LOCAL_LARGE, MINI], {}, MINI, id="any-cloud-beats-local"),
        pytest.param([LOCAL_SMALL, MINI, FLASH, HAIKU], {}, HAIKU, id="priciest-output-token"),
        pytest.param([MINI, UNPRICED], {}, MINI, id="unpriced-ranks-last"),
        pytest.param([LOCAL_LARGE, UNPRICED], {}, UNPRICED, id="unpriced-cloud-still-beats-local"),
        pytest.param(
            [LOCAL_SMALL, LOCAL_LARGE, HAIKU], {"override": "qwen2.5-coder-0.5b-instruct"}, LOCAL_SMALL, id="override"
        ),
        pytest.param([LOCAL_SMALL, HAIKU], {"override": "  "}, HAIKU, id="blank-override-uses-the-rule"),
    ],
)
def test_choose_judge_model(available, kwargs, expected):
    assert choose_judge_model(available, prices=PRICES, **kwargs) == expected


def test_price_ties_break_on_input_price_then_name():
    a = ModelSpec("b-model", "x", "x/b-model", False)
    b = ModelSpec("a-model", "x", "x/a-model", False)
    c = ModelSpec("c-model", "x", "x/c-model", False)
    prices = {
        "a-model": _p("a-model", 1e-6, 4e-6),
        "b-model": _p("b-model", 1e-6, 4e-6),
        "c-model": _p("c-model", 2e-6, 4e-6),
    }
    assert choose_judge_model([a, b, c], prices=prices) == c  # same output price, higher input price
    assert choose_judge_model([a, b], prices=prices) == b  # full tie: first name alphabetically


def test_output_price_ranks_before_input_price():
    # dearer input but cheaper output: the output price decides
    heavy_reader = ModelSpec("reader", "x", "x/reader", False)
    heavy_writer = ModelSpec("writer", "x", "x/writer", False)
    prices = {"reader": _p("reader", 5e-6, 1e-5), "writer": _p("writer", 1e-6, 2e-5)}
    assert choose_judge_model([heavy_reader, heavy_writer], prices=prices) == heavy_writer


def test_default_prices_come_from_litellms_map():
    # litellm's bundled map: claude-haiku-4-5 $5e-6 / output token > gemini-2.5-flash $2.5e-6 > gpt-4o-mini $6e-7
    assert choose_judge_model([MINI, FLASH, HAIKU, LOCAL_LARGE]) == HAIKU


def test_an_unavailable_override_raises():
    with pytest.raises(UnknownModelError, match="gpt-5"):
        choose_judge_model([LOCAL_SMALL, MINI], override="gpt-5", prices=PRICES)
