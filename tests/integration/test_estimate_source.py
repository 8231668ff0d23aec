"""`estimate_for_source` reads a stored source's chunks and prices each model (docs/quality.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmos_core.core.db import session_scope
from mmos_core.llm.catalog import get_model, local_models, price_snapshot
from mmos_core.services.estimate import estimate_batch_cost, estimate_for_source
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted


def test_estimate_for_source_per_model(clean_db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    text = "\n\n".join(f"Paragraph {i}: I collected beetles at Cambridge and loved it." * 20 for i in range(8))
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted(text, max_bytes=1_000_000), title="Autobiography",
            person="Charles Darwin", source_type="book", quality="primary", extraction_priority="HIGH",
        )
        chunks = [src.content[c.char_start : c.char_end] for c in src.chunks]
        source_id = src.id
    assert len(chunks) > 1
    local = local_models()[0].name
    with session_scope() as session:
        result = estimate_for_source(session=session, source_id=source_id, model_names=["gpt-4o-mini", local, "gpt-4o-mini"])
    assert [name for name, _ in result] == ["gpt-4o-mini", local]
    gpt, free = result[0][1], result[1][1]
    spec = get_model("gpt-4o-mini")
    assert gpt == estimate_batch_cost(
        chunk_texts=chunks, title="Autobiography", person="Charles Darwin", source_type="book",
        spec=spec, prices=price_snapshot(spec), max_output_tokens=1200,
    )
    assert gpt.max_output_tokens_total == 1200 * len(chunks)
    assert Decimal(0) < gpt.expected_usd_low < gpt.worst_case_usd
    assert free.worst_case_usd == Decimal(0) and free.input_tokens > 0

    with session_scope() as session, pytest.raises(LookupError):
        estimate_for_source(session=session, source_id=10**9, model_names=[local])
