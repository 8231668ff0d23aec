"""Test data for quality views: two models' completed batches on one source, written directly (no LLM)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from sqlalchemy import select


def _unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=384)
    return (v / np.linalg.norm(v)).tolist()


def two_models_on_one_source() -> None:
    """'honest' quotes the text (all located); 'inventive' is cheaper but half its quotes are not found."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import ExtractionCall, Fragment, ModelPerformance, ProcessingBatch, SourceChunk, SourceProcessing
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    text = "I was born at Shrewsbury on February 12th, 1809.\n\nNo pursuit at Cambridge was followed with eagerness."
    with session_scope() as s:
        sid = create_source(session=s, parsed=parse_pasted(text, max_bytes=1_000_000), title="Autobiography",
                            source_type="book", quality="primary", extraction_priority="HIGH").id
        chunk_id = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == sid))
        for i, (model, cost, located) in enumerate((("honest", "0.40", [True] * 12), ("inventive", "0.10", [True, False] * 6))):
            b = ProcessingBatch(batch_code=f"BATCH_Q_{i}", model_provider="openai", model_name=model, prompt_version="v1",
                                batch_status="completed", estimated_cost_usd=Decimal(cost), completed_at=dt.datetime.now(dt.UTC))
            s.add(b)
            s.flush()
            s.add(SourceProcessing(source_id=sid, batch_id=b.id, processing_status="completed"))
            s.add(ExtractionCall(batch_id=b.id, chunk_id=chunk_id, status="ok", cost_usd=Decimal(cost), duration_ms=6000))
            for j, ok in enumerate(located):
                s.add(Fragment(source_id=sid, batch_id=b.id, chunk_id=chunk_id, category="Biographical",
                               fragment_type="direct_quote", content=f"quote {i}-{j}", relevance=7, confidence=0.9,
                               location_score=100 if ok else None, embedding=_unit(j)))
            s.add(ModelPerformance(model_provider="openai", model_name=model, source_id=sid, batch_id=b.id,
                                   source_type="book", fragments_extracted=12, cost_usd=Decimal(cost),
                                   cost_per_fragment=Decimal(cost) / 12))
