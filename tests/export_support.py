"""Test data for exports (docs/export.md): two sources, two models' fragments of one chunk, two reviewers'
verdicts and feedback, written directly (no LLM)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

TEXT = "I was born at Shrewsbury on February 12th, 1809.\n\nNo pursuit at Cambridge was followed with eagerness."


def make_world() -> dict:
    """Two sources; source A has one chunk with fragments of two models, source B one fragment; two reviewers."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, ProcessingBatch, ReviewVerdict, SourceChunk, SourceProcessing, User, UserFeedback
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    ids: dict = {}
    with session_scope() as s:
        for key, text in (("A", TEXT), ("B", "A second source about beetles and barnacles.")):
            src = create_source(session=s, parsed=parse_pasted(text, max_bytes=1_000_000), title=f"Source {key}",
                                source_type="book", quality="primary", extraction_priority="HIGH")
            ids[key] = src.id
        for name in ("ann", "bob"):
            u = User(username=name, role="reviewer")
            s.add(u)
            s.flush()
            ids[name] = u.id
        for i, model in enumerate(("honest", "inventive")):
            b = ProcessingBatch(batch_code=f"BATCH_X_{i}", model_provider="openai", model_name=model, prompt_version="v1",
                                batch_status="completed", estimated_cost_usd=Decimal("0.1"), completed_at=dt.datetime.now(dt.UTC))
            s.add(b)
            s.flush()
            ids[model] = b.id
            for key in ("A", "B"):
                s.add(SourceProcessing(source_id=ids[key], batch_id=b.id, processing_status="completed"))
        chunk_a = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == ids["A"]))
        chunk_b = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == ids["B"]))
        ids["chunk_a"] = chunk_a

        def frag(name, source, batch, chunk, content, category="Biographical", relevance=7, **kw):
            f = Fragment(source_id=ids[source], batch_id=ids[batch], chunk_id=chunk, category=category,
                         fragment_type="direct_quote", content=content, relevance=relevance, confidence=0.9, **kw)
            s.add(f)
            s.flush()
            ids[name] = f.id

        frag("good", "A", "honest", chunk_a, "I was born at Shrewsbury on February 12th, 1809.", verified=True, verified_by="ann")
        frag("bad", "A", "inventive", chunk_a, "I was born in London in 1810.", rejected=True, rejected_by="ann", reject_reason="misquote")
        frag("meh", "A", "inventive", chunk_a, "He liked Cambridge.", category="Cognitive", relevance=3)
        frag("other", "B", "honest", chunk_b, "beetles and barnacles", category="Social")
        s.add(ReviewVerdict(fragment_id=ids["good"], user_id=ids["ann"], verdict="verified"))
        s.add(ReviewVerdict(fragment_id=ids["bad"], user_id=ids["ann"], verdict="rejected", reason="misquote"))
        # bob verified "good" only: no rejected fragment of his in that chunk, so no verdict pair of his
        s.add(ReviewVerdict(fragment_id=ids["good"], user_id=ids["bob"], verdict="verified"))
        # bob's feedback: liked "meh", first liked then disliked "bad" (the latest counts); a 3-star rating is neither
        for fid, kind, rating, reason in (("meh", "like", None, None), ("bad", "like", None, None),
                                          ("bad", "dislike", None, "wrong year"), ("good", "rating", 3, None)):
            s.add(UserFeedback(user_id=ids["bob"], fragment_id=ids[fid], model_name="m", feedback_type=kind,
                               quality_rating=rating, reason=reason))
            s.flush()
        # ann's feedback repeats her verdicts: the verdict pair is kept, the feedback one dropped
        s.add(UserFeedback(user_id=ids["ann"], fragment_id=ids["good"], model_name="m", feedback_type="like"))
        s.add(UserFeedback(user_id=ids["ann"], fragment_id=ids["bad"], model_name="m", feedback_type="dislike"))
    return ids
