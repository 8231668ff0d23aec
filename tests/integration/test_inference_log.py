"""Inference audit trail (the monitoring design) on the real embedded Postgres + pgvector with the provisioned ONNX
embedder: grounding confidence and hallucination flags, archetypes, the seed's conventions (recorded,
deterministic, never changing a measured value), the confidence lake, category corrections."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.models import (
    AsiInference,
    BeamTensor,
    Fragment,
    ProcessingBatch,
    SacredIntervention,
    TrainingSample,
)
from mmos_core.services import inference_log as il
from mmos_core.services.auth import create_user
from mmos_core.services.sources import create_source
from mmos_core.storage.lake import get_lake, is_lake_worthy
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

TEXT = (
    "I was born at Shrewsbury on February 12th, 1809.\n\n"
    "No pursuit at Cambridge gave me so much pleasure as collecting beetles. "
    "It was the mere passion for collecting, for I did not dissect them.\n\n"
    "The voyage of the Beagle has been by far the most important event in my life. "
    "My father said to me that I cared for nothing but shooting, dogs, and rat-catching."
)
QUOTE = "No pursuit at Cambridge gave me so much pleasure as collecting beetles."
PARAPHRASE = "His father thought he only cared about hunting and dogs."
UNRELATED = "The stock market crashed because of rising interest rates."


@pytest.fixture()
def embed(embedder_or_skip):
    return embedder_or_skip.embed


@pytest.fixture()
def world(embed):
    """A source, a completed batch and three fragments: a located quote, a paraphrase, an unrelated claim."""
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=100_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        chunks = sorted(src.chunks, key=lambda c: c.chunk_index)
        batch = ProcessingBatch(
            batch_code="BATCH_IL", model_provider="local", model_name="model-a", prompt_version="t",
            batch_status="completed", price_snapshot={},
        )
        session.add(batch)
        session.flush()
        q_start = TEXT.index(QUOTE)
        specs = [
            (QUOTE, "Emotional", "direct_quote", q_start, q_start + len(QUOTE)),
            (PARAPHRASE, "Social", "paraphrase", chunks[-1].char_start, chunks[-1].char_end),
            (UNRELATED, "Cognitive", "inference", chunks[0].char_start, chunks[0].char_end),
        ]
        vectors = embed([s[0] for s in specs])
        ids = []
        for (content, category, ftype, start, end), vec in zip(specs, vectors, strict=True):
            chunk = next(c for c in chunks if c.char_start <= start < c.char_end)
            f = Fragment(
                source_id=src.id, batch_id=batch.id, chunk_id=chunk.id, category=category, fragment_type=ftype,
                content=content, relevance=7, confidence=0.8, char_start=start, char_end=end,
                location_in_source="¶", embedding=vec.tolist(),
            )
            session.add(f)
            session.flush()
            ids.append(f.id)
        user = create_user(session=session, username="rita", role="reviewer", password="correct horse battery")
        return {"batch_id": batch.id, "ids": ids, "user_id": user.id}


def test_batch_grounding_scores_quotes_high_and_flags_unrelated_claims(world, embed):
    with session_scope() as session:
        rows = il.log_grounding_for_batch(session=session, batch_id=world["batch_id"], embed=embed)
    assert len(rows) == 3
    with session_scope() as session:
        by_fragment = {r.fragment_id: r for r in session.scalars(select(AsiInference))}
        quote, para, unrelated = (by_fragment[i] for i in world["ids"])
        assert quote.kind == "fragment_grounding"
        assert quote.confidence > 0.95 and not quote.hallucination_detected
        assert para.confidence >= il.GROUNDING_THRESHOLD and not para.hallucination_detected
        assert unrelated.confidence < 0.3 and unrelated.hallucination_detected
        for row in (quote, para, unrelated):
            assert row.archetype in il.ARCHETYPES
            assert row.processing_time_ms >= 0
            assert row.lake_worthy == is_lake_worthy(row.confidence, row.hallucination_detected, row.flux_position)
            beam = session.get(BeamTensor, row.beam_tensor_id)
            assert len(beam.digits) == 9 and beam.digits[8] == pytest.approx(row.confidence, abs=1e-4)
            assert set(beam.elp_channels) == {"ethos", "logos", "pathos"}
            assert all(0 <= v <= 1 for v in beam.elp_channels.values())
            assert beam.flux_position == row.flux_position and beam.is_sacred == row.is_sacred
            interventions = session.scalars(
                select(SacredIntervention).where(SacredIntervention.inference_id == row.id)
            ).all()
            assert row.vortex_intervention == row.is_sacred == (len(interventions) == 1)
            for iv in interventions:
                # the seed's boost is recorded, never applied to the measured confidence
                assert iv.signal_before == pytest.approx(row.confidence, abs=1e-6)
                assert iv.signal_after == pytest.approx(min(1.0, row.confidence + 0.15), abs=1e-6)


def test_conventions_are_deterministic_and_never_change_measured_values(world, embed, monkeypatch):
    vec = embed([PARAPHRASE])[0]
    windows = il.sentence_windows(TEXT)
    stripped = il.grounding_confidence(vec, embed(windows))  # no conventions involved
    assert il.flux_position(PARAPHRASE) == il.flux_position(PARAPHRASE) and 0 <= il.flux_position(PARAPHRASE) <= 9
    assert il.flux_position("") == 0

    results = []
    for forced in (None, None, 9, 1):  # twice as the rule says, then a sacred and a plain position
        if forced is not None:
            monkeypatch.setattr(il, "flux_position", lambda text, p=forced: p)
        with session_scope() as session:
            row = il.log_inference(
                session=session, kind="message_analysis", text=PARAPHRASE, embedding=vec, evidence=windows,
                processing_time_ms=1.0, embed=embed,
            )
            beam = session.get(BeamTensor, row.beam_tensor_id)
            results.append((row.flux_position, row.is_sacred, row.confidence, row.hallucination_detected,
                            row.archetype, list(beam.digits), dict(beam.elp_channels)))
    first, second, sacred, plain = results
    assert first == second  # deterministic
    assert sacred[1] is True and plain[1] is False
    for r in results:  # the measured values are the same whatever the seed's position says
        assert r[2] == pytest.approx(stripped, abs=1e-6)
        assert r[3] == (stripped < il.GROUNDING_THRESHOLD)
        assert r[4] == first[4] and r[6] == first[6] and r[5][:8] == first[5][:8]


def test_lake_worthy_follows_the_seed_rule_and_reaches_the_lake_after_commit(world, embed, monkeypatch):
    lake = get_lake()
    before = lake.stats().entries
    cases = [  # (confidence, forced flux position, expected lake_worthy)
        (0.7, 3, True),    # >= 0.6, sacred
        (0.7, 4, False),   # >= 0.6 but neither sacred nor > 0.8
        (0.9, 4, True),    # > 0.8
        (0.4, 6, False),   # hallucination
    ]
    texts = [f"lake probe {i} {np.random.default_rng().integers(1 << 30)}" for i in range(len(cases))]
    vec = embed(["lake probe"])[0]
    with session_scope() as session:
        for text, (conf, pos, worthy) in zip(texts, cases, strict=True):
            monkeypatch.setattr(il, "flux_position", lambda t, p=pos: p)
            row = il.log_inference(session=session, kind="message_analysis", text=text, embedding=vec,
                                   confidence=conf, processing_time_ms=0.5, embed=embed)
            assert row.lake_worthy is worthy and row.confidence == pytest.approx(conf)
        assert lake.stats().entries == before  # nothing before the commit
    table = lake.table()
    assert table.num_rows == before + 2
    assert set(table["text"].to_pylist()[before:]) == {texts[0], texts[2]}

    # a rolled-back inference never reaches the lake
    with pytest.raises(RuntimeError), session_scope() as session:
        monkeypatch.setattr(il, "flux_position", lambda t: 9)
        il.log_inference(session=session, kind="message_analysis", text="rolled back", embedding=vec,
                         confidence=0.95, processing_time_ms=0.5, embed=embed)
        raise RuntimeError("abort")
    assert lake.stats().entries == before + 2


def test_search_query_is_logged_with_its_corpus_support(world, embed):
    with session_scope() as session:
        row = il.log_search_query(session=session, query=QUOTE, embedding=embed([QUOTE])[0],
                                  processing_time_ms=3.0, embed=embed)
        assert row.kind == "search_query" and row.confidence > 0.95 and not row.hallucination_detected
        off_topic = "Quantum computers use qubits for parallel computation."  # no fragment is near it
        off = il.log_search_query(session=session, query=off_topic, embedding=embed([off_topic])[0],
                                  processing_time_ms=3.0, embed=embed)
        assert off.hallucination_detected


def test_category_correction_becomes_a_training_sample_and_counts_in_accuracy(world, embed):
    quote_id, para_id, _ = world["ids"]
    with session_scope() as session:
        assert il.zero_shot_accuracy(session=session) == {"n": 0, "accuracy": None}
        s1 = il.record_category_correction(session=session, fragment_id=quote_id, expected_category="Emotional",
                                           user_id=world["user_id"], embed=embed)
        p1 = s1.predicted_category
        assert p1 in il.ARCHETYPES
        s2 = il.record_category_correction(session=session, fragment_id=para_id, expected_category="Social",
                                           predicted_category="Biographical", user_id=world["user_id"])
        assert s2.predicted_category == "Biographical"
    with session_scope() as session:
        samples = session.scalars(select(TrainingSample).order_by(TrainingSample.id)).all()
        assert [(s.label_kind, s.expected_category, s.fragment_id, s.created_by) for s in samples] == [
            ("category", "Emotional", quote_id, world["user_id"]),
            ("category", "Social", para_id, world["user_id"]),
        ]
        hits = int(p1 == "Emotional")
        assert il.zero_shot_accuracy(session=session) == {"n": 2, "accuracy": hits / 2}
