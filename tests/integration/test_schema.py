"""The Alembic schema on the real embedded PostgreSQL + pgvector."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import inspect, text

from mmos_core.core.db import get_engine, session_scope
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")


def test_tables_views_and_indexes_exist():
    insp = inspect(get_engine())
    tables = set(insp.get_table_names())
    assert {
        "sources", "processing_batches", "source_processing", "fragments", "tags", "fragment_tags",
        "fragment_relationships", "model_performance", "processing_queue",
    } <= tables
    assert {"v_source_processing_summary", "v_model_comparison", "v_fragment_coverage", "v_queue_status"} <= set(
        insp.get_view_names()
    )
    with get_engine().connect() as conn:
        indexes = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'fragments'")).all())
    assert "USING gin (search_vector)" in indexes["idx_fragment_search"]
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["idx_fragment_embedding"]


def test_models_match_migrations():
    """`alembic check`: the ORM models and the migrations describe the same schema."""
    from alembic import command

    from mmos_core.core.migrate import alembic_config

    command.check(alembic_config())


def _insert_fragment(session, source_id, batch_id, category, content="x" * 10):
    return session.execute(
        text(
            "INSERT INTO fragments (source_id, batch_id, category, fragment_type, content, relevance, confidence) "
            "VALUES (:s, :b, :c, 'paraphrase', :content, 5, 0.5) RETURNING fragment_code"
        ),
        {"s": source_id, "b": batch_id, "c": category, "content": content},
    ).scalar_one()


def test_fragment_codes_per_category_and_full_text_search():
    with session_scope() as session:
        source = create_source(
            session=session, parsed=parse_pasted("Some text about a person.", max_bytes=10_000), title="t",
            source_type="interview", quality="primary", extraction_priority="HIGH",
        )
        batch_id = session.execute(
            text("INSERT INTO processing_batches (batch_code, model_provider, model_name, prompt_version, temperature, "
                 "batch_status, total_sources, chunks_total, chunks_done, total_input_tokens, total_output_tokens, "
                 "estimated_cost_usd, price_snapshot, malformed_responses) VALUES ('B1','local','m','v',0,'pending',1,1,0,0,0,0,'{}',0) RETURNING id")
        ).scalar_one()
        codes = [
            _insert_fragment(session, source.id, batch_id, "Cognitive", "He reasons from first principles about barnacles"),
            _insert_fragment(session, source.id, batch_id, "Cognitive"),
            _insert_fragment(session, source.id, batch_id, "Values and Beliefs"),
            _insert_fragment(session, source.id, batch_id, "Meta-cognitive"),
        ]
        hits = session.execute(
            text("SELECT count(*) FROM fragments WHERE search_vector @@ plainto_tsquery('english', 'barnacle reasoning')")
        ).scalar_one()
    assert codes[0] == "COG-000001" and codes[1] == "COG-000002"
    assert codes[2] == "VAL-000001" and codes[3] == "MET-000001"
    assert all(re.fullmatch(r"[A-Z]{3}-\d{6}", c) for c in codes)
    assert hits == 1


@pytest.mark.parametrize("category", ["Astrology", "cognitive"])
def test_unknown_category_is_refused(category):
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="unknown fragment category"):
        with session_scope() as session:
            source = create_source(
                session=session, parsed=parse_pasted("Other text.", max_bytes=10_000), title="t",
                source_type="interview", quality="primary", extraction_priority="HIGH",
            )
            batch_id = session.execute(
                text("INSERT INTO processing_batches (batch_code, model_provider, model_name, prompt_version, temperature, "
                     "batch_status, total_sources, chunks_total, chunks_done, total_input_tokens, total_output_tokens, "
                     "estimated_cost_usd, price_snapshot, malformed_responses) VALUES ('B2','local','m','v',0,'pending',1,1,0,0,0,0,'{}',0) RETURNING id")
            ).scalar_one()
            _insert_fragment(session, source.id, batch_id, category)


def test_coverage_view_reports_gaps_for_all_eight_categories():
    with session_scope() as session:
        rows = session.execute(text("SELECT category, fragment_count, status FROM v_fragment_coverage")).all()
    assert len(rows) == 8
    assert {r.status for r in rows} == {"CRITICAL GAP"}
