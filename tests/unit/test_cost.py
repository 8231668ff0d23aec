"""Cost in USD over litellm's real bundled price map: lookups, arithmetic, rounding, errors.

Every expected value below is worked out by hand in the table (tokens × USD per token), never
by calling the function under test.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmos_core.llm import catalog
from mmos_core.llm.catalog import litellm
from mmos_core.llm.cost import PriceSnapshot, UnknownPriceError, cost_usd, lookup_prices


@pytest.fixture(scope="module")
def price_map():
    """litellm's bundled price map (read offline: LITELLM_LOCAL_MODEL_COST_MAP=True)."""
    return litellm().model_cost


# model as queued, the key it resolves to, USD per input token, USD per output token
PRICES = [
    ("gpt-4o-mini", 1.5e-07, 6e-07),
    ("claude-haiku-4-5", 1e-06, 5e-06),
    ("gemini/gemini-2.5-flash", 3e-07, 2.5e-06),
    # provider-prefixed names absent from the map fall back to the bare name
    ("openai/gpt-4o-mini", 1.5e-07, 6e-07),
    ("anthropic/claude-haiku-4-5", 1e-06, 5e-06),
]


@pytest.mark.parametrize(("model", "input_price", "output_price"), PRICES, ids=[p[0] for p in PRICES])
def test_lookup_prices_from_litellm_map(price_map, model, input_price, output_price):
    snap = lookup_prices(model, price_map, source="test map")
    assert snap == PriceSnapshot(model, input_price, output_price, "test map")


def test_prefixed_name_is_preferred_over_bare_name():
    prices = {
        "acme/m1": {"input_cost_per_token": 2e-06, "output_cost_per_token": 4e-06},
        "m1": {"input_cost_per_token": 1.0, "output_cost_per_token": 1.0},
    }
    snap = lookup_prices("acme/m1", prices, source="s")
    assert (snap.input_cost_per_token, snap.output_cost_per_token) == (2e-06, 4e-06)


@pytest.mark.parametrize(
    ("model", "price_map_override"),
    [
        ("no-such-model-xyz", None),
        ("someprovider/no-such-model-xyz", None),
        # an entry without per-token prices is as good as no entry
        ("m-without-prices", {"m-without-prices": {"mode": "chat", "input_cost_per_token": 1e-6}}),
        ("acme/m-empty", {"acme/m-empty": {}, "m-empty": {}}),
    ],
)
def test_unknown_model_raises(price_map, model, price_map_override):
    with pytest.raises(UnknownPriceError, match="No per-token prices") as info:
        lookup_prices(model, price_map_override if price_map_override is not None else price_map, source="s")
    assert isinstance(info.value, LookupError)


COSTS = [
    # id, model, input tokens, output tokens, expected USD (by hand)
    # 1000 × 1.5e-7 = 0.00015; 500 × 6e-7 = 0.0003 → 0.00045
    ("4o-mini", "gpt-4o-mini", 1000, 500, "0.000450"),
    # 1000 × 1e-6 = 0.001; 1000 × 5e-6 = 0.005 → 0.006
    ("haiku", "claude-haiku-4-5", 1000, 1000, "0.006000"),
    # 2000 × 3e-7 = 0.0006; 400 × 2.5e-6 = 0.001 → 0.0016
    ("flash", "gemini/gemini-2.5-flash", 2000, 400, "0.001600"),
    # 1M × 1e-6 = 1; 1M × 5e-6 = 5 → 6
    ("haiku-1M", "claude-haiku-4-5", 1_000_000, 1_000_000, "6.000000"),
    # the bare-name fallback prices the same: 1000 × 1.5e-7 + 500 × 6e-7
    ("prefixed-fallback", "openai/gpt-4o-mini", 1000, 500, "0.000450"),
    ("zero-usage", "gpt-4o-mini", 0, 0, "0.000000"),
    ("zero-usage-flash", "gemini/gemini-2.5-flash", 0, 0, "0.000000"),
    # rounding to 1e-6 USD, half-up:
    # 3 × 1.5e-7 = 0.00000045 → 0.000000 (below half)
    ("round-down", "gpt-4o-mini", 3, 0, "0.000000"),
    # 4 × 1.5e-7 = 0.0000006 → 0.000001 (above half)
    ("round-up", "gpt-4o-mini", 4, 0, "0.000001"),
    # 1 × 2.5e-6 = 0.0000025 → 0.000003 (exact half goes up; half-even would give 0.000002)
    ("half-up-1", "gemini/gemini-2.5-flash", 0, 1, "0.000003"),
    # 5 × 2.5e-6 = 0.0000125 → 0.000013 (half-even would give 0.000012)
    ("half-up-2", "gemini/gemini-2.5-flash", 0, 5, "0.000013"),
    # 10 × 1.5e-7 = 0.0000015 → 0.000002
    ("half-up-3", "gpt-4o-mini", 10, 0, "0.000002"),
    # 1 × 1.5e-7 + 1 × 6e-7 = 0.00000075 → 0.000001
    ("one-each", "gpt-4o-mini", 1, 1, "0.000001"),
]


@pytest.mark.parametrize(
    ("model", "input_tokens", "output_tokens", "expected"), [c[1:] for c in COSTS], ids=[c[0] for c in COSTS]
)
def test_cost_usd(price_map, model, input_tokens, output_tokens, expected):
    prices = lookup_prices(model, price_map, source="test map")
    got = cost_usd(prices, input_tokens=input_tokens, output_tokens=output_tokens)
    assert isinstance(got, Decimal)
    assert got == Decimal(expected)
    assert got.as_tuple().exponent == -6  # quantized to 1e-6 USD


@pytest.mark.parametrize(("input_tokens", "output_tokens"), [(-1, 0), (0, -1), (-5, -5)])
def test_negative_tokens_raise(price_map, input_tokens, output_tokens):
    prices = lookup_prices("gpt-4o-mini", price_map, source="test map")
    with pytest.raises(ValueError, match="negative"):
        cost_usd(prices, input_tokens=input_tokens, output_tokens=output_tokens)


def test_snapshot_round_trips_through_its_json_form():
    snap = PriceSnapshot("gpt-4o-mini", 1.5e-07, 6e-07, "litellm x price map")
    assert PriceSnapshot.from_dict(snap.as_dict()) == snap


@pytest.mark.parametrize("spec", catalog.local_models(), ids=lambda s: s.name)
def test_local_model_snapshot_is_free_and_labelled_local(spec):
    snap = catalog.price_snapshot(spec)
    assert snap.model == spec.name
    assert (snap.input_cost_per_token, snap.output_cost_per_token) == (0.0, 0.0)
    assert "local" in snap.source
    assert cost_usd(snap, input_tokens=10_000, output_tokens=10_000) == Decimal("0.000000")


def test_cloud_model_snapshot_names_the_litellm_price_map():
    spec = catalog.ModelSpec(name="gpt-4o-mini", provider="openai", litellm_model="gpt-4o-mini", is_local=False)
    snap = catalog.price_snapshot(spec)
    assert (snap.input_cost_per_token, snap.output_cost_per_token) == (1.5e-07, 6e-07)
    assert snap.source.startswith("litellm ") and snap.source.endswith(" price map")
