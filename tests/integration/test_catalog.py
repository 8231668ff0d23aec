"""The catalog design catalog on the real embedded PostgreSQL: sync, recommendations from feedback, preferences,
fallback chain, aggregates and the vicuna80 votes import."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.models import ProcessingBatch, UserFeedback
from mmos_core.models.catalog import (
    AiModel,
    AiModelPerformanceAggregate,
    AiModelTaskMapping,
    AiTaskCategory,
    AiUserPreference,
)
from mmos_core.services.catalog.aggregates import refresh_aggregates
from mmos_core.services.catalog.recommend import (
    CatalogError,
    best_models_for_task,
    clear_user_preference,
    fallback_chain,
    set_user_preference,
    user_preferred_model,
)
from mmos_core.services.catalog.sync import ensure_catalog, sync_catalog
from mmos_core.services.catalog.votes import VoteImportError, import_votes, parse_votes, votes_path, win_rates

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"
CHAT = {"mode": "chat", "litellm_provider": "openai", "supports_response_schema": True}
TINY_MAP = {
    "cheap-json": {**CHAT, "input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7},
    "pricey-json": {**CHAT, "input_cost_per_token": 1e-5, "output_cost_per_token": 3e-5},
    "retired-json": {**CHAT, "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "deprecation_date": "2020-01-01"},
    "no-json": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7},
    "an-embedder": {"mode": "embedding", "litellm_provider": "openai", "input_cost_per_token": 1e-8},
}


def _sync(model_cost=TINY_MAP):
    with session_scope() as session:
        return sync_catalog(session=session, model_cost=model_cost, price_source="test map")


def _user(name="ana", role="reviewer") -> int:
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        return create_user(session=session, username=name, role=role, password="correct horse battery").id


def _feedback(model: str, kinds: list[str | int], *, user_id=None, category="fragment_extraction"):
    """Feedback rows on a (source-less) batch of `model`; an int is a star rating."""
    with session_scope() as session:
        batch = session.scalar(select(ProcessingBatch).where(ProcessingBatch.model_name == model))
        if batch is None:
            batch = ProcessingBatch(batch_code=f"b-{model}", model_provider="x", model_name=model, prompt_version="v1",
                                    batch_status="completed", price_snapshot={})
            session.add(batch)
            session.flush()
        for k in kinds:
            session.add(UserFeedback(
                user_id=user_id, batch_id=batch.id, model_name=model, category_key=category,
                feedback_type="rating" if isinstance(k, int) else k, quality_rating=k if isinstance(k, int) else None,
            ))


def test_sync_from_litellms_real_map_is_idempotent():
    with session_scope() as session:
        first = sync_catalog(session=session)
    with session_scope() as session:
        second = sync_catalog(session=session)
        n = session.scalar(select(func.count()).select_from(AiModel))
        mini = session.scalar(select(AiModel).where(AiModel.model_id == "gpt-4o-mini"))
        local = session.scalar(select(AiModel).where(AiModel.model_id == SMALL))
        cats = set(session.scalars(select(AiTaskCategory.category_key)))
        deprecated_active = session.scalar(
            select(func.count()).select_from(AiModel).where(AiModel.status == "deprecated", AiModel.is_active.is_(True))
        )
    assert first.inserted == n > 2000 and first.updated == 0
    assert second.inserted == 0 and second.updated == n and second.categories_added == second.mappings_added == 0
    assert mini.cost_bucket == "low" and mini.supports_json_mode and float(mini.input_cost_per_1m) == pytest.approx(0.15)
    assert local.provider == "local" and local.cost_bucket == "free" and local.is_local
    assert {"fragment_extraction", "conversation_turn", "content_caption", "content_ideas", "image_social"} <= cats
    assert deprecated_active == 0
    with session_scope() as session:
        assert ensure_catalog(session=session) is None  # not empty: nothing to do


def test_sync_keeps_what_a_manager_set_and_skips_non_chat_models():
    _sync()
    with session_scope() as session:
        m = session.scalar(select(AiModel).where(AiModel.model_id == "cheap-json"))
        m.is_active, m.description = False, "kept off on purpose"
    report = _sync()
    with session_scope() as session:
        m = session.scalar(select(AiModel).where(AiModel.model_id == "cheap-json"))
        assert (m.is_active, m.description) == (False, "kept off on purpose")
        assert session.scalar(select(AiModel).where(AiModel.model_id == "an-embedder")) is None
        retired = session.scalar(select(AiModel).where(AiModel.model_id == "retired-json"))
        assert (retired.status, retired.is_active) == ("deprecated", False)
    assert report.inserted == 0


def test_likes_move_a_model_up_and_dislikes_down():
    _sync()
    with session_scope() as session:
        before = [r.model_id for r in best_models_for_task(session=session, task_category="fragment_extraction", limit=10)]
    # no feedback: equal priors, the cheaper (free) local models first; no-json lacks the capability
    assert before[:2] == [SMALL, LARGE] and "no-json" not in before and "retired-json" not in before
    _feedback("cheap-json", ["like"] * 12 + ["dislike"])
    _feedback(SMALL, ["dislike"] * 6 + ["regenerate"] * 4 + [1, 2])
    _feedback("pricey-json", ["like"] * 2)  # feedback alone makes a model a candidate
    _feedback("retired-json", ["like"] * 50)
    with session_scope() as session:
        recs = best_models_for_task(session=session, task_category="fragment_extraction", limit=10)
        with_retired = best_models_for_task(session=session, task_category="fragment_extraction", include_inactive=True)
    ids = [r.model_id for r in recs]
    assert ids[0] == "cheap-json" and ids[-1] == SMALL
    top = recs[0]
    assert (top.likes, top.dislikes) == (12, 1) and top.low < top.mean < top.high
    small = recs[-1]
    assert (small.dislikes, small.regenerates, small.ratings) == (6, 4, 2) and small.mean_stars == 1.5
    assert with_retired[0].model_id == "retired-json"
    with session_scope() as session, pytest.raises(CatalogError):
        best_models_for_task(session=session, task_category="no_such_task")


def test_pinned_model_and_preferred_model_from_feedback():
    _sync()
    ana, bob = _user("ana"), _user("bob")
    _feedback("cheap-json", ["like"] * 5)
    _feedback("pricey-json", ["like"] * 3, user_id=ana)
    _feedback("cheap-json", ["dislike"] * 2, user_id=ana)
    with session_scope() as session:
        pref = user_preferred_model(session=session, user_id=ana, task_category="fragment_extraction")
        assert user_preferred_model(session=session, user_id=bob, task_category="fragment_extraction") is None
    assert pref.model_id == "pricey-json" and pref.source == "feedback" and pref.likes == 3
    with session_scope() as session:
        set_user_preference(session=session, user_id=bob, task_category="fragment_extraction", model_id=LARGE)
    with session_scope() as session:
        set_user_preference(session=session, user_id=bob, task_category="fragment_extraction", model_id=SMALL)  # replaces
    with session_scope() as session:
        pinned = user_preferred_model(session=session, user_id=bob, task_category="fragment_extraction")
        recs = best_models_for_task(session=session, task_category="fragment_extraction", user_id=bob)
        assert session.scalar(select(func.count()).select_from(AiUserPreference).where(AiUserPreference.is_pinned)) == 1
    assert (pinned.model_id, pinned.source) == (SMALL, "pinned")
    assert recs[0].model_id == SMALL and recs[0].pinned
    with session_scope() as session:
        assert clear_user_preference(session=session, user_id=bob, task_category="fragment_extraction") == 1
    with session_scope() as session:
        assert user_preferred_model(session=session, user_id=bob, task_category="fragment_extraction") is None
        with pytest.raises(CatalogError):
            set_user_preference(session=session, user_id=bob, task_category="fragment_extraction", model_id="nope")


def test_fallback_chain_skips_the_failed_retired_and_unavailable_models():
    _sync()
    _feedback("cheap-json", ["like"] * 10)
    _feedback("pricey-json", ["like"] * 5)
    with session_scope() as session:
        chain = fallback_chain(session=session, task_category="fragment_extraction", failed_model="cheap-json")
        only_local = fallback_chain(session=session, task_category="fragment_extraction", failed_model=SMALL,
                                    available=[SMALL, LARGE])
    assert [r.model_id for r in chain][0] == "pricey-json" and "cheap-json" not in [r.model_id for r in chain]
    assert [r.model_id for r in only_local] == [LARGE]


def test_refresh_aggregates_writes_every_period_and_the_mapping_totals():
    from mmos_core.services.catalog.ai_logs import log_call

    _sync()
    uid = _user()
    _feedback("cheap-json", ["like"] * 3 + ["regenerate", 4], user_id=uid)
    with session_scope() as session:
        for status, ms in (("ok", 100), ("ok", 300), ("provider_error", 50)):
            log_call(session=session, model_name="cheap-json", category_key="fragment_extraction", status=status,
                     input_tokens=10, output_tokens=5, cost_usd=0.001, latency_ms=ms)
        log_call(session=session, model_name="unknown-model", category_key="fragment_extraction", status="ok")
    with session_scope() as session:
        report = refresh_aggregates(session=session)
    with session_scope() as session:
        again = refresh_aggregates(session=session)  # recomputed, not added up twice
        rows = {r.period_type: r for r in session.scalars(select(AiModelPerformanceAggregate))}
        mapping = session.scalar(
            select(AiModelTaskMapping).join(AiModel, AiModel.id == AiModelTaskMapping.model_id)
            .where(AiModel.model_id == "cheap-json", AiModelTaskMapping.category_key == "fragment_extraction")
        )
        pref = session.scalar(select(AiUserPreference))
        model = session.scalar(select(AiModel).where(AiModel.model_id == "cheap-json"))
    assert report.rows == again.rows == 4 and "unknown-model" in report.unknown_models
    assert set(rows) == {"daily", "weekly", "monthly", "all_time"}
    a = rows["all_time"]
    assert (a.total_requests, a.total_tokens, a.like_count, a.regenerate_count, a.rating_count) == (3, 45, 3, 1, 1)
    assert float(a.error_rate) == pytest.approx(1 / 3, abs=1e-4) and a.average_speed_ms == 150
    assert float(a.like_ratio) == 1.0  # likes / (likes + dislikes): regenerates are not dislikes here
    assert float(a.recommendation_score) < float(a.satisfaction_score) < float(a.posterior_high)
    today = dt.datetime.now(dt.UTC).date()
    assert rows["weekly"].period_start.weekday() == 0 and rows["monthly"].period_start == today.replace(day=1)
    assert (mapping.total_likes, mapping.total_regenerates, mapping.total_uses) == (3, 1, 3)
    assert float(mapping.suitability_score) == pytest.approx(float(a.satisfaction_score), abs=1e-4)
    assert (pref.likes, pref.regenerates, pref.total_ratings, pref.total_interactions) == (3, 1, 1, 5)
    assert float(model.reliability_score) == pytest.approx(2 / 3, abs=1e-4)


def _votes_file(tmp_path: Path) -> Path:
    rows = []
    pattern = [("gpt4", "bard", 1)] * 9 + [("gpt4", "bard", 2)] * 3 + [("claude", "bard", 1)] * 7 + [("claude", "bard", 3)] * 3
    pattern += [("gpt4", "claude", 1)] * 5 + [("gpt4", "claude", 2)] * 4 + [("guanaco-7b", "gpt4", 1)] * 2
    for i, (a, b, s) in enumerate(pattern):
        rows.append(json.dumps({"model_1": a, "model_2": b, "question_id": i % 80 + 1, "question": f"Question {i}?",
                                "score": s, "row_in_source": i, "source_file": f"data/x/answer_{a}-vs-answer_{b}.jsonl"}))
    path = tmp_path / "vicuna80_human_pairwise.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_votes_import_is_idempotent_and_ranks_like_the_win_rates(tmp_path):
    _sync()
    path = _votes_file(tmp_path)
    with session_scope() as session:
        first = import_votes(session=session, path=tmp_path)
    with session_scope() as session:
        second = import_votes(session=session, path=path)
        n_feedback = session.scalar(select(func.count()).select_from(UserFeedback))
        statuses = dict(session.execute(select(AiModel.model_id, AiModel.status).where(
            AiModel.model_id.in_(["bard", "claude", "vicuna-13b"]))).all())
        recs = best_models_for_task(session=session, task_category="conversation_turn", limit=10, include_inactive=True)
    assert first.votes == 31 and first.added == 62 and first.skipped == {"involves a model without answers (guanaco-*)": 2}
    assert second.added == 0 and second.already_present == 62 and n_feedback == 62
    assert statuses == {"bard": "external", "claude": "external", "vicuna-13b": "external"}
    votes, _ = parse_votes(path.read_text())
    rates = win_rates(votes)
    ranked = [r.model_id for r in recs if r.model_id in rates]
    assert ranked == sorted(rates, key=lambda m: -rates[m].win_rate) == ["gpt-4", "claude", "bard"]
    gpt4 = next(r for r in recs if r.model_id == "gpt-4")
    assert (gpt4.likes, gpt4.dislikes) == (14, 7)


def test_bad_votes_file_stores_nothing(tmp_path):
    _sync()
    path = _votes_file(tmp_path)
    path.write_text(path.read_text() + "{not json\n", encoding="utf-8")
    with session_scope() as session, pytest.raises(VoteImportError, match="Line 34"):
        import_votes(session=session, path=path)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(UserFeedback)) == 0
        assert session.scalar(select(func.count()).select_from(AiModel).where(AiModel.status == "external")) == 0
    with pytest.raises(VoteImportError, match="No votes file"):
        votes_path(tmp_path / "missing")


def test_real_vicuna80_votes_rank_like_their_win_rates():
    from conftest import shared_dir

    folder = shared_dir() / "data" / "prd_human_preferences"
    if not (folder / "vicuna80_human_pairwise.jsonl").exists():
        pytest.skip(f"{folder} not found: the shared data folder is absent")
    _sync()
    with session_scope() as session:
        report = import_votes(session=session, path=folder)
    with session_scope() as session:
        recs = best_models_for_task(session=session, task_category="conversation_turn", limit=20, include_inactive=True)
    votes, _ = parse_votes(votes_path(folder).read_text())
    rates = win_rates(votes)
    assert report.votes == 1760 and report.added == 3520
    assert [r.model_id for r in recs if r.model_id in rates] == sorted(rates, key=lambda m: -rates[m].win_rate)
    for r in recs:
        if r.model_id in rates:
            assert r.mean == pytest.approx(rates[r.model_id].win_rate, abs=0.005)
