"""Catalog rows from litellm's bundled price map: chat models only, capabilities, prices, buckets, deprecation."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from mmos_core.services.catalog.sync import cost_bucket, local_rows, model_row

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def model_cost() -> dict:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from mmos_core.llm.catalog import litellm

    return litellm().model_cost


def test_a_chat_model_from_the_real_map(model_cost):
    row = model_row("gpt-4o-mini", model_cost["gpt-4o-mini"], today=TODAY, price_source="test")
    assert row is not None
    assert row["provider"] == "openai"
    # the map's per-token prices, shown per 1M tokens
    assert float(row["input_cost_per_1m"]) == pytest.approx(model_cost["gpt-4o-mini"]["input_cost_per_token"] * 1e6)
    assert float(row["output_cost_per_1m"]) == pytest.approx(model_cost["gpt-4o-mini"]["output_cost_per_token"] * 1e6)
    assert row["context_window"] == model_cost["gpt-4o-mini"]["max_input_tokens"]
    assert row["supports_json_mode"] is True and "json_mode" in row["capabilities"]
    assert row["supports_function_calling"] is True and "function_calling" in row["capabilities"]
    assert row["cost_bucket"] == "low"
    assert row["status"] == "active" and row["is_active"] is True


def test_only_chat_models_are_catalogued(model_cost):
    non_chat = [k for k, v in model_cost.items() if v.get("mode") not in ("chat",)]
    assert non_chat, "the map has embedding / image models"
    assert all(model_row(k, model_cost[k], today=TODAY, price_source="t") is None for k in non_chat[:200])
    assert model_row("sample_spec", {"mode": "chat"}, today=TODAY, price_source="t") is None


def test_deprecation_date_decides_status():
    entry = {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
             "deprecation_date": "2026-10-23"}
    past = model_row("old-model", entry, today=TODAY, price_source="t")
    future = model_row("old-model", entry, today=dt.date(2026, 1, 1), price_source="t")
    assert past["status"] == "deprecated" and past["is_active"] is False
    assert future["status"] == "active" and future["deprecated_at"] == dt.date(2026, 10, 23)
    bad_date = model_row("m", {**entry, "deprecation_date": "soon"}, today=TODAY, price_source="t")
    assert bad_date["status"] == "active" and bad_date["deprecated_at"] is None


@pytest.mark.parametrize(
    ("inp", "out", "bucket"),
    [
        # the catalog design's six chat models at their list prices land in the seed's buckets
        (0.15, 0.60, "low"),  # gpt-4o-mini
        (0.10, 0.40, "low"),  # gemini-2.0-flash
        (0.80, 4.00, "low"),  # claude-3.5-haiku
        (1.25, 5.00, "medium"),  # gemini-1.5-pro
        (2.50, 10.0, "high"),  # gpt-4o
        (3.00, 15.0, "high"),  # claude-3.5-sonnet
        (0.0, 0.0, "free"),
        (None, 1.0, "unknown"),
    ],
)
def test_cost_buckets(inp, out, bucket):
    assert cost_bucket(inp, out) == bucket


def test_local_models_are_free_and_json_capable():
    rows = local_rows(context_tokens=4096, max_output_tokens=1200)
    assert {r["model_id"] for r in rows} == {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"}
    assert all(r["cost_bucket"] == "free" and r["input_cost_per_1m"] == 0 and r["is_local"] for r in rows)
    assert all("json_mode" in r["capabilities"] for r in rows)
