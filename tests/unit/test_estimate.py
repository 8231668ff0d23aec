"""Cost estimate before queueing (docs/quality.md): token counts from litellm × price map."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmos_core.llm.catalog import ModelSpec, litellm, price_snapshot
from mmos_core.llm.cost import PriceSnapshot
from mmos_core.llm.extraction import build_messages
from mmos_core.services.estimate import CostEstimate, estimate_batch_cost

GPT = ModelSpec(name="gpt-4o-mini", provider="openai", litellm_model="gpt-4o-mini", is_local=False)
LOCAL = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct",
    provider="local",
    litellm_model="openai/qwen2.5-coder-0.5b-instruct",
    is_local=True,
    api_base="http://127.0.0.1:1/v1",
)
#: Fixed prices so the expected numbers do not move with litellm's price map.
GPT_PRICES = PriceSnapshot("gpt-4o-mini", 1.5e-07, 6e-07, source="test")
META = {"title": "Autobiography", "person": "Charles Darwin", "source_type": "book"}
CHUNKS = [
    "I was born at Shrewsbury on February 12th, 1809.",
    "My mother died in July 1817, when I was a little over eight years old.",
    "Looking back, I think it was this habit of collecting that made me a naturalist." * 5,
]


def _tokens(spec: ModelSpec, text: str) -> int:
    return litellm().token_counter(model=spec.litellm_model, messages=build_messages(chunk_text=text, **META))


@pytest.mark.parametrize(
    ("spec", "prices", "chunks", "max_out"),
    [
        (GPT, GPT_PRICES, CHUNKS, 1200),
        (GPT, GPT_PRICES, CHUNKS[:1], 0),
        (GPT, GPT_PRICES, [], 1200),
        (LOCAL, price_snapshot(LOCAL), CHUNKS, 1200),
    ],
    ids=["gpt-4o-mini-3-chunks", "gpt-4o-mini-no-output", "no-chunks", "local-free"],
)
def test_estimate_matches_formula(spec, prices, chunks, max_out):
    est = estimate_batch_cost(chunk_texts=chunks, spec=spec, prices=prices, max_output_tokens=max_out, **META)
    per_chunk = [_tokens(spec, t) for t in chunks]
    assert est.input_tokens == sum(per_chunk)
    assert est.max_output_tokens_total == max_out * len(chunks)
    q = Decimal("0.000001")
    low = sum((Decimal(repr(prices.input_cost_per_token)) * n).quantize(q) for n in per_chunk) or Decimal(0)
    worst = sum(
        (Decimal(repr(prices.input_cost_per_token)) * n + Decimal(repr(prices.output_cost_per_token)) * max_out).quantize(q)
        for n in per_chunk
    ) or Decimal(0)
    assert est.expected_usd_low == low
    assert est.worst_case_usd == worst
    assert est.expected_usd_low <= est.worst_case_usd


def test_prompt_overhead_is_counted():
    """Each chunk carries the system prompt: the count is far above the passage's own tokens."""
    est = estimate_batch_cost(chunk_texts=["Hi."], spec=GPT, prices=GPT_PRICES, max_output_tokens=10, **META)
    assert est.input_tokens > 200


def test_known_numbers_for_gpt_4o_mini():
    """Three chunks at 1200 max output: worst case is dominated by output (3 × 1200 × $0.60/M = $0.00216)."""
    est = estimate_batch_cost(chunk_texts=CHUNKS, spec=GPT, prices=GPT_PRICES, max_output_tokens=1200, **META)
    assert est.worst_case_usd - est.expected_usd_low == Decimal("0.002160")
    assert Decimal("0") < est.expected_usd_low < Decimal("0.001")


def test_local_model_is_free_but_counted():
    est = estimate_batch_cost(
        chunk_texts=CHUNKS, spec=LOCAL, prices=price_snapshot(LOCAL), max_output_tokens=1200, **META
    )
    assert est == CostEstimate(est.input_tokens, 3600, Decimal("0"), Decimal("0"))
    assert est.input_tokens > 0


def test_negative_max_output_rejected():
    with pytest.raises(ValueError):
        estimate_batch_cost(chunk_texts=CHUNKS, spec=GPT, prices=GPT_PRICES, max_output_tokens=-1, **META)
