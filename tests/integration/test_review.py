"""Fragment review against the real embedded Postgres + pgvector: filters, paging, full text with
highlights, nearest neighbours, verdict ownership, edits, tags, relationships, source context and
regeneration (the provider faked at its HTTP edge)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import chat_completion, quote_answer
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.models import Fragment, FragmentEdit, ProcessingBatch, Tag
from mmos_core.services import review
from mmos_core.services.auth import create_user
from mmos_core.services.feedback import regenerate_fragment, regenerations
from mmos_core.services.review import FragmentFilter, ReviewError
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

TEXT = (
    "I was born at Shrewsbury on February 12th, 1809. "
    "No pursuit at Cambridge gave me so much pleasure as collecting beetles. "
    "The voyage of the Beagle has been by far the most important event in my life. "
    "My father said to me that I cared for nothing but shooting, dogs, and rat-catching."
)
QUOTES = [
    ("I was born at Shrewsbury on February 12th, 1809.", "Biographical", 9),
    ("No pursuit at Cambridge gave me so much pleasure as collecting beetles.", "Emotional", 6),
    ("The voyage of the Beagle has been by far the most important event in my life.", "Biographical", 10),
    ("My father said to me that I cared for nothing but shooting, dogs, and rat-catching.", "Social", 4),
]
SMALL = "qwen2.5-coder-0.5b-instruct"


def _vec(*weights: float) -> list[float]:
    v = np.zeros(384, dtype=np.float32)
    v[: len(weights)] = weights
    return (v / np.linalg.norm(v)).tolist()


#: fragment 0 is nearest to 2, then 1, then 3 (cosine 0.99, 0.8, 0)
VECTORS = [_vec(1, 0, 0), _vec(0.8, 0.6, 0), _vec(0.99, 0.141, 0), _vec(0, 0, 1)]


def _batch(session, model: str, code: str) -> ProcessingBatch:
    batch = ProcessingBatch(
        batch_code=code, model_provider="local", model_name=model, prompt_version="t",
        batch_status="completed", price_snapshot={},
    )
    session.add(batch)
    session.flush()
    return batch


@pytest.fixture()
def world():
    """A source, two batches (models A and B) and four located fragments; four users."""
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=100_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        chunk = src.chunks[0]
        a, b = _batch(session, "model-a", "BATCH_A"), _batch(session, "model-b", "BATCH_B")
        ids = []
        for i, (quote, category, relevance) in enumerate(QUOTES):
            start = TEXT.index(quote)
            f = Fragment(
                source_id=src.id, batch_id=(a if i < 3 else b).id, chunk_id=chunk.id, category=category,
                fragment_type="direct_quote" if i != 1 else "paraphrase", content=quote,
                insight=f"insight {i}", relevance=relevance, confidence=0.8,
                char_start=start, char_end=start + len(quote), location_in_source="¶1",
                embedding=VECTORS[i],
            )
            session.add(f)
            session.flush()
            ids.append(f.id)
        users = {
            name: create_user(session=session, username=name, role=role, password="correct horse battery")
            for name, role in [("rita", "reviewer"), ("bob", "reviewer"), ("ada", "admin"), ("ann", "analyst")]
        }
        return {"source_id": src.id, "batches": (a.id, b.id), "ids": ids, "users": users, "chunk_id": chunk.id}


def _search(**kw) -> review.FragmentPage:
    with session_scope() as session:
        return review.search_fragments(session=session, flt=FragmentFilter(**kw))


def test_filters_select_the_matching_fragments(world):
    ids = world["ids"]
    assert [r.id for r in _search().rows] == ids[::-1]  # newest first
    assert [r.id for r in _search(category="Biographical").rows] == [ids[2], ids[0]]
    assert [r.id for r in _search(model_name="model-b").rows] == [ids[3]]
    assert [r.id for r in _search(batch_id=world["batches"][0]).rows] == ids[2::-1]
    assert [r.id for r in _search(fragment_type="paraphrase").rows] == [ids[1]]
    assert [r.id for r in _search(relevance_min=6, relevance_max=9).rows] == [ids[1], ids[0]]
    page = _search(model_name="model-a", relevance_min=9)
    assert page.total == 2 and {r.model_name for r in page.rows} == {"model-a"}
    with session_scope() as session:
        review.verify(session=session, user=world["users"]["rita"], fragment_id=ids[0])
        review.reject(session=session, user=world["users"]["rita"], fragment_id=ids[3])
    assert [r.id for r in _search(status="verified").rows] == [ids[0]]
    assert [r.id for r in _search(status="rejected").rows] == [ids[3]]
    assert [r.id for r in _search(status="pending").rows] == [ids[2], ids[1]]


def test_pagination_is_server_side_and_stable(world):
    ids = world["ids"]
    first, second, third = (_search(page=p, page_size=3) for p in (1, 2, 3))
    assert (first.total, first.pages) == (4, 2)
    assert [r.id for r in first.rows] == ids[:0:-1]
    assert [r.id for r in second.rows] == [ids[0]]
    assert third.rows == [] and third.total == 4
    with pytest.raises(ReviewError, match="Pages start at 1"):
        _search(page=0)


def test_full_text_search_finds_stems_and_highlights_them(world):
    page = _search(query="beetle")  # stemmed: matches "beetles"
    assert page.total == 1
    [row] = page.rows
    assert row.id == world["ids"][1]
    assert "**beetles**" in row.highlighted
    assert row.highlighted.endswith("collecting **beetles**\\.")  # markdown special characters escaped
    # websearch syntax: a phrase, and an exclusion
    assert [r.id for r in _search(query='"voyage of the Beagle"').rows] == [world["ids"][2]]
    assert _search(query="born -Shrewsbury").total == 0
    # insight is searched too, and the search combines with the filters
    assert _search(query="insight", category="Social").total == 1
    assert _search(query="zebra").rows == []


def test_text_without_search_is_escaped_not_interpreted():
    assert review.markdown_escape("*not bold* :red[x] $1") == "\\*not bold\\* \\:red\\[x\\] \\$1"


def test_more_like_this_orders_by_cosine_and_excludes_itself(world):
    ids = world["ids"]
    with session_scope() as session:
        similar = review.more_like_this(session=session, fragment_id=ids[0], limit=10)
    assert [s.row.id for s in similar] == [ids[2], ids[1], ids[3]]
    assert similar[0].similarity == pytest.approx(0.99, abs=0.01)
    assert similar[1].similarity == pytest.approx(0.8, abs=0.01)
    assert similar[2].similarity == pytest.approx(0.0, abs=0.01)
    with session_scope() as session:
        assert len(review.more_like_this(session=session, fragment_id=ids[0], limit=1)) == 1


def test_semantic_search_embeds_the_query(world):
    seen = []

    def embed(texts):
        seen.extend(texts)
        return np.asarray([VECTORS[3]], dtype=np.float32)

    with session_scope() as session:
        found = review.semantic_search(session=session, query=" hunting ", limit=2, embed=embed)
    # the query, stripped, is embedded first; the search audit (asi_inferences) may then embed the
    # archetype prototypes with the same model once per process
    assert seen[0] == "hunting"
    assert [s.row.id for s in found][0] == world["ids"][3]
    assert found[0].similarity == pytest.approx(1.0, abs=1e-4)


def test_semantic_search_with_the_real_embedder(world, embedder_or_skip):
    with session_scope() as session:
        for fid in world["ids"]:
            f = session.get(Fragment, fid)
            f.embedding = embedder_or_skip.embed([f.content])[0].tolist()
    with session_scope() as session:
        found = review.semantic_search(session=session, query="insects he collected at university", limit=1)
    assert found[0].row.id == world["ids"][1]
    from mmos_core.models import AsiInference

    with session_scope() as session:
        audit = session.scalars(select(AsiInference).where(AsiInference.kind == "search_query")).all()
    assert [a.input_text for a in audit] == ["insects he collected at university"]
    assert 0.0 <= audit[0].confidence <= 1.0 and audit[0].archetype


def test_verdicts_belong_to_their_author(world):
    fid = world["ids"][0]
    rita, bob, ada, ann = (world["users"][n] for n in ("rita", "bob", "ada", "ann"))
    with session_scope() as session:
        review.verify(session=session, user=rita, fragment_id=fid)
    row = _search(status="verified").rows[0]
    assert (row.status, row.verdict_by) == ("verified", "rita") and row.verified_at is not None

    with session_scope() as session, pytest.raises(ReviewError, match="judged by rita"):
        review.reject(session=session, user=bob, fragment_id=fid)
    with session_scope() as session, pytest.raises(ReviewError, match="judged by rita"):
        review.reset_verdict(session=session, user=bob, fragment_id=fid)
    with session_scope() as session, pytest.raises(ReviewError, match="analyst"):
        review.verify(session=session, user=ann, fragment_id=world["ids"][1])
    assert _search(status="verified").rows[0].verdict_by == "rita"

    with session_scope() as session:  # the author changes her mind
        review.reject(session=session, user=rita, fragment_id=fid)
    row = _search(status="rejected").rows[0]
    assert (row.verified, row.verified_by, row.rejected_by) == (False, None, "rita")

    with session_scope() as session:  # an admin overrides
        review.verify(session=session, user=ada, fragment_id=fid)
    row = _search(status="verified").rows[0]
    assert (row.verdict_by, row.rejected) == ("ada", False)
    with session_scope() as session:
        review.reset_verdict(session=session, user=ada, fragment_id=fid)
    assert _search(status="pending").total == 4


def test_edits_write_history_and_refresh_the_embedding(world):
    fid = world["ids"][3]
    bob = world["users"]["bob"]
    new = "My father said I cared for nothing but shooting and dogs."
    with session_scope() as session:
        edits = review.edit_fragment(
            session=session, user=bob, fragment_id=fid, content=new, category="Social", insight="disappointed father",
            embed=lambda texts: np.asarray([VECTORS[0]] * len(texts), dtype=np.float32),
        )
        assert [e.field for e in edits] == ["content", "insight"]  # category unchanged: no row
    with session_scope() as session:
        history = review.edit_history(session=session, fragment_id=fid)
        f = session.get(Fragment, fid)
        assert f.content == new and f.insight == "disappointed father"
        assert np.allclose(f.embedding, VECTORS[0], atol=1e-6)
    assert {(h.field, h.old_value, h.new_value, h.username) for h in history} == {
        ("content", QUOTES[3][0], new, "bob"),
        ("insight", "insight 3", "disappointed father", "bob"),
    }
    assert _search(query="disappointed").total == 1  # the generated FTS column follows the edit
    assert _search(query="rat-catching").total == 0
    with session_scope() as session, pytest.raises(ReviewError, match="Unknown category"):
        review.edit_fragment(session=session, user=bob, fragment_id=fid, category="Spiritual")
    with session_scope() as session, pytest.raises(ReviewError, match="cannot be empty"):
        review.edit_fragment(session=session, user=bob, fragment_id=fid, content="  ")
    with session_scope() as session:
        review.edit_fragment(session=session, user=bob, fragment_id=fid, category="Emotional")
        assert session.scalar(select(func.count()).select_from(FragmentEdit)) == 3


def test_tags_are_normalised_and_shared(world):
    rita = world["users"]["rita"]
    a, b = world["ids"][:2]
    with session_scope() as session:
        review.add_tag(session=session, user=rita, fragment_id=a, name="  Childhood ")
        review.add_tag(session=session, user=rita, fragment_id=a, name="childhood")  # no duplicate
        review.add_tag(session=session, user=rita, fragment_id=b, name="CHILDHOOD")
        review.add_tag(session=session, user=rita, fragment_id=a, name="Family  ties")
    with session_scope() as session:
        assert review.tags_of(session=session, fragment_id=a) == ["childhood", "family ties"]
        assert review.all_tags(session=session) == ["childhood", "family ties"]
        assert session.scalar(select(func.count()).select_from(Tag)) == 2
        assert review.remove_tag(session=session, user=rita, fragment_id=a, name="Childhood") is True
        assert review.remove_tag(session=session, user=rita, fragment_id=a, name="nope") is False
    with session_scope() as session:
        assert review.tags_of(session=session, fragment_id=a) == ["family ties"]
        assert review.tags_of(session=session, fragment_id=b) == ["childhood"]
        with pytest.raises(ReviewError, match="needs a name"):
            review.add_tag(session=session, user=rita, fragment_id=a, name="   ")


def test_relationships_both_directions_and_refusals(world):
    rita = world["users"]["rita"]
    a, b, c = world["ids"][:3]
    with session_scope() as session:
        code_c = session.get(Fragment, c).fragment_code
        assert review.fragment_id_by_code(session=session, code=code_c.lower()) == c
        review.relate(session=session, user=rita, fragment_id=a, related_fragment_id=c, relationship_type="supports", note="both biographical")
        review.relate(session=session, user=rita, fragment_id=b, related_fragment_id=a, relationship_type="contradicts")
    with session_scope() as session:
        rels = review.relationships_of(session=session, fragment_id=a)
        assert [(r.direction, r.relationship_type, r.other_id) for r in rels] == [
            ("outgoing", "supports", c),
            ("incoming", "contradicts", b),
        ]
        assert rels[0].note == "both biographical" and rels[0].created_by == "rita"
        assert [(r.direction, r.other_id) for r in review.relationships_of(session=session, fragment_id=c)] == [("incoming", a)]
    with session_scope() as session, pytest.raises(ReviewError, match="itself"):
        review.relate(session=session, user=rita, fragment_id=a, related_fragment_id=a, relationship_type="supports")
    with session_scope() as session, pytest.raises(ReviewError, match="already supports"):
        review.relate(session=session, user=rita, fragment_id=a, related_fragment_id=c, relationship_type="supports")
    with session_scope() as session, pytest.raises(ReviewError, match="Unknown relationship"):
        review.relate(session=session, user=rita, fragment_id=a, related_fragment_id=c, relationship_type="likes")
    with session_scope() as session, pytest.raises(ReviewError, match="No fragment with code"):
        review.fragment_id_by_code(session=session, code="COG-999999")


def test_source_context_slices_the_source(world):
    fid = world["ids"][1]
    with session_scope() as session:
        ctx = review.source_context(session=session, fragment_id=fid, chars=20)
    before, match, after, label = ctx
    assert match == QUOTES[1][0]
    assert before == TEXT[TEXT.index(match) - 20 : TEXT.index(match)]
    assert after == TEXT[TEXT.index(match) + len(match) :][:20]
    assert label == "¶1"
    with session_scope() as session:
        first = review.source_context(session=session, fragment_id=world["ids"][0], chars=400)
        assert first.before == "" and first.match == QUOTES[0][0]
        f = session.get(Fragment, fid)
        f.char_start = f.char_end = None  # not located: falls back to the chunk
    with session_scope() as session:
        ctx = review.source_context(session=session, fragment_id=fid, chars=20)
    assert ctx.match == TEXT and ctx.before == "" and ctx.after == ""


def test_regenerate_queues_a_one_chunk_child_batch_shown_by_regenerations(fake_llm, embedder_or_skip):
    from workers.extraction import run_extraction

    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=100_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        rita = create_user(session=session, username="rita", role="reviewer", password="correct horse battery")
        from mmos_core.services.batches import queue_extraction

        [first] = queue_extraction(session=session, source_id=src.id, model_names=[SMALL])
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer([QUOTES[0][0]])))
    assert run_extraction(first.batch_id)["fragments"] == 1
    with session_scope() as session:
        original = session.scalar(select(Fragment).where(Fragment.batch_id == first.batch_id))
        job = regenerate_fragment(session=session, user=rita, fragment_id=original.id, reason="too short")
        child = session.get(ProcessingBatch, job.batch_id)
        assert child.parent_batch_id == first.batch_id
        assert child.chunk_scope == [original.chunk_id] and child.chunks_total == 1
        assert regenerations(session=session, fragment_id=original.id)[0][1] == []  # not run yet
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer([QUOTES[2][0]])))
    assert run_extraction(job.batch_id)["fragments"] == 1
    with session_scope() as session:
        [(batch, fragments)] = regenerations(session=session, fragment_id=original.id)
        assert batch.id == job.batch_id and batch.batch_status == "completed"
        assert [f.content for f in fragments] == [QUOTES[2][0]]
