"""Coverage and contradictions over fragments inserted through the ORM into the real embedded Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from mmos_core.core.db import session_scope
from mmos_core.core.domain import CATEGORIES
from mmos_core.models import Fragment, FragmentRelationship, ProcessingBatch
from mmos_core.services.coverage import (
    ADEQUATE,
    CRITICAL_GAP,
    NEEDS_ATTENTION,
    category_coverage,
    contradictions,
    gap_status,
    people,
    source_choices,
)
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")


def _source(session, text_: str, person: str) -> int:
    src = create_source(
        session=session, parsed=parse_pasted(text_, max_bytes=100_000), title=f"About {person}", person=person,
        source_type="interview", quality="primary", extraction_priority="HIGH",
    )
    return src.id


def _fragments(session, batch_id: int, source_id: int, category: str, n: int, *, verified: int = 0,
               rejected: int = 0, relevance: int = 5) -> list[Fragment]:
    out = []
    for i in range(n):
        f = Fragment(
            source_id=source_id, batch_id=batch_id, category=category, fragment_type="paraphrase",
            content=f"{category} fragment {i} of source {source_id}", relevance=relevance, confidence=0.8,
            verified=i < verified, rejected=i >= n - rejected,
        )
        session.add(f)
        out.append(f)
    session.flush()
    return out


@pytest.fixture()
def world() -> dict[str, int]:
    """Darwin: 2 sources; Wallace: 1 source. Crafted counts per category."""
    with session_scope() as session:
        darwin_a = _source(session, "Darwin talks about beetles and the Beagle.", "Charles Darwin")
        darwin_b = _source(session, "Darwin writes letters about barnacles.", "Charles Darwin")
        wallace = _source(session, "Wallace writes from the Malay archipelago.", "Alfred Wallace")
        batch = ProcessingBatch(batch_code="BATCH_TEST_001", model_provider="test", model_name="fake", prompt_version="v1")
        session.add(batch)
        session.flush()
        # Cognitive: 12 kept (3 verified) + 2 rejected → 12, Needs attention, 25 % verified
        _fragments(session, batch.id, darwin_a, "Cognitive", 14, verified=3, rejected=2, relevance=8)
        # Emotional: 20 + 5 over two sources → 25, Adequate
        _fragments(session, batch.id, darwin_a, "Emotional", 20, relevance=6)
        _fragments(session, batch.id, darwin_b, "Emotional", 5, verified=5, relevance=9)
        # Social: 9 → CRITICAL GAP
        _fragments(session, batch.id, darwin_b, "Social", 9, relevance=4)
        # Wallace's fragments must not count for Darwin
        _fragments(session, batch.id, wallace, "Biographical", 30)
        return {"darwin_a": darwin_a, "darwin_b": darwin_b, "wallace": wallace, "batch": batch.id}


def test_gap_status_follows_the_seed_rule():
    assert [gap_status(n) for n in (0, 9, 10, 24, 25, 1000)] == [
        CRITICAL_GAP, CRITICAL_GAP, NEEDS_ATTENTION, NEEDS_ATTENTION, ADEQUATE, ADEQUATE,
    ]


def test_coverage_of_a_person(world):
    with session_scope() as session:
        rows = {r.category: r for r in category_coverage(session=session, person="Charles Darwin")}
    assert list(rows) == list(CATEGORIES)
    cog, emo, soc, bio = rows["Cognitive"], rows["Emotional"], rows["Social"], rows["Biographical"]
    assert (cog.fragment_count, cog.status, cog.verified_count, cog.verification_rate) == (12, NEEDS_ATTENTION, 3, 25.0)
    assert cog.avg_relevance == 8.0 and cog.source_diversity == 1
    assert (emo.fragment_count, emo.status, emo.source_diversity, emo.verification_rate) == (25, ADEQUATE, 2, 20.0)
    assert emo.avg_relevance == pytest.approx((20 * 6 + 5 * 9) / 25, abs=0.01)
    assert (soc.fragment_count, soc.status) == (9, CRITICAL_GAP)
    assert (bio.fragment_count, bio.status, bio.verification_rate, bio.avg_relevance) == (0, CRITICAL_GAP, None, None)


def test_coverage_of_chosen_sources_matches_the_seed_view(world):
    with session_scope() as session:
        rows = {r.category: r for r in category_coverage(session=session, source_ids=[world["darwin_b"]])}
        assert rows["Emotional"].fragment_count == 5 and rows["Emotional"].verification_rate == 100.0
        assert rows["Cognitive"].fragment_count == 0
        # no filter: the same numbers as the core design's v_fragment_coverage over every fragment
        mine = {r.category: (r.fragment_count, r.status, r.verification_rate) for r in category_coverage(session=session)}
        view = {
            c: (n, s, float(v) if v is not None else None)
            for c, n, s, v in session.execute(
                text("SELECT category, fragment_count, status, verification_rate FROM v_fragment_coverage")
            )
        }
    assert mine == view
    assert mine["Biographical"] == (30, ADEQUATE, 0.0)


def test_contradictions_are_listed_side_by_side(world):
    with session_scope() as session:
        [a] = session.scalars(select(Fragment).where(Fragment.category == "Cognitive", Fragment.verified).limit(1))
        [b] = session.scalars(select(Fragment).where(Fragment.category == "Emotional", Fragment.source_id == world["darwin_b"]).limit(1))
        [rejected] = session.scalars(select(Fragment).where(Fragment.rejected).limit(1))
        [w] = session.scalars(select(Fragment).where(Fragment.source_id == world["wallace"]).limit(1))
        session.add_all([
            FragmentRelationship(fragment_id=a.id, related_fragment_id=b.id, relationship_type="contradicts", note="calm vs anxious"),
            FragmentRelationship(fragment_id=a.id, related_fragment_id=b.id, relationship_type="supports"),
            FragmentRelationship(fragment_id=rejected.id, related_fragment_id=b.id, relationship_type="contradicts"),
            FragmentRelationship(fragment_id=w.id, related_fragment_id=w.id + 1, relationship_type="contradicts"),
        ])
        a_content, b_content = a.content, b.content
    with session_scope() as session:
        [pair] = contradictions(session=session, person="Charles Darwin")
        assert (pair.content, pair.relevance, pair.related_content, pair.related_relevance) == (a_content, 8, b_content, 9)
        assert pair.note == "calm vs anxious" and pair.fragment_code.startswith("COG-")
        assert len(contradictions(session=session)) == 2  # plus Wallace's pair; never the rejected one
        assert contradictions(session=session, source_ids=[world["darwin_a"]]) == [pair]
        assert people(session=session) == ["Alfred Wallace", "Charles Darwin"]
        assert len(source_choices(session=session)) == 3
