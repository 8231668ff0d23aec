"""The LLM catalog page (docs/model-catalog.md) through Streamlit's AppTest on the real embedded PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "llm_catalog.py")
SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"


def _page(role: str, user=None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["current_user"] = user or signed_in(role)
    return at


# AppTest does not expose a dataframe's key: each table is found by a column only it has.
TABLE_COLUMN = {"rec_table": "posterior mean", "catalog_table": "provider", "logs_table": "selected by"}


def _frame(at: AppTest, key: str):
    return next((d.value for d in at.dataframe if TABLE_COLUMN[key] in d.value.columns), None)


def _sync_small():
    from mmos_core.core.db import session_scope
    from mmos_core.services.catalog.sync import sync_catalog

    chat = {"mode": "chat", "litellm_provider": "openai", "supports_response_schema": True}
    with session_scope() as session:
        sync_catalog(session=session, price_source="test", model_cost={
            "cheap-json": {**chat, "input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7},
            "pricey-json": {**chat, "input_cost_per_token": 1e-5, "output_cost_per_token": 3e-5},
        })


def test_manager_syncs_an_empty_catalog_and_filters_it(clean_db):
    at = _page("manager").run()
    assert not at.exception
    manager = at.session_state["current_user"]
    assert any("The model catalog is empty" in t for t in texts(at.info))
    at.button(key="sync_button").click().run()
    assert not at.exception
    assert any("models added" in t for t in texts(at.success))
    at = _page("manager", manager).run()  # a fresh visit reads the synced catalog
    table = _frame(at, "catalog_table")
    assert table is not None and len(table) == 500  # active models, first 500 of ~2,700
    at.multiselect(key="f_bucket").set_value(["free"]).run()
    free = _frame(at, "catalog_table")
    assert {SMALL, LARGE} <= set(free["model"]) and set(free["input $/1M"]) == {0}  # ollama etc. are free too
    at.multiselect(key="f_provider").set_value(["local"]).run()
    assert set(_frame(at, "catalog_table")["model"]) == {SMALL, LARGE}
    at.multiselect(key="f_provider").set_value([]).run()
    at.multiselect(key="f_bucket").set_value([]).run()
    at.text_input(key="f_search").input("gpt-4o-mini").run()
    at.multiselect(key="f_caps").set_value(["json_mode", "vision"]).run()
    mini = _frame(at, "catalog_table")
    assert "gpt-4o-mini" in set(mini["model"]) and all("vision" in c for c in mini["capabilities"])


def test_recommendations_show_intervals_and_counts_and_a_user_pins_a_model(clean_db):
    from mmos_core.core.db import session_scope
    from mmos_core.models import ProcessingBatch, UserFeedback

    _sync_small()
    with session_scope() as session:
        batch = ProcessingBatch(batch_code="b1", model_provider="openai", model_name="cheap-json", prompt_version="v1",
                                batch_status="completed", price_snapshot={})
        session.add(batch)
        session.flush()
        for kind in ["like"] * 8 + ["dislike", "regenerate"]:
            session.add(UserFeedback(batch_id=batch.id, model_name="cheap-json", category_key="fragment_extraction",
                                     feedback_type=kind))
    at = _page("reviewer").run()
    assert not at.exception
    rec = _frame(at, "rec_table")
    top = rec.iloc[0]
    assert top["model"] == "cheap-json" and (top["likes"], top["dislikes"], top["regenerates"]) == (8, 1, 1)
    low, high = (float(x) for x in top["90 % interval"].split(" – "))
    assert low < top["posterior mean"] < high
    assert not any(b.key == "sync_button" for b in at.button)  # reviewers cannot change the catalog
    assert any("No preference yet" in t for t in texts(at.caption))

    at.selectbox(key="pin_model").set_value(LARGE).run()
    at.button(key="pin_button").click().run()
    assert not at.exception
    assert any(f"Pinned: **{LARGE}**" in t for t in texts(at.markdown))
    rec = _frame(at, "rec_table")
    assert rec.iloc[0]["model"] == LARGE and rec.iloc[0]["yours"] == "pinned"
    at.button(key="unpin_button").click().run()
    assert any("No preference yet" in t for t in texts(at.caption))


def test_recent_calls_show_how_each_model_was_selected(clean_db):
    from mmos_core.core.db import session_scope
    from mmos_core.services.catalog.ai_logs import log_call

    _sync_small()
    with session_scope() as session:
        log_call(session=session, model_name=SMALL, category_key="fragment_extraction", status="ok", selected_by="auto",
                 selection_confidence=0.81, input_tokens=100, output_tokens=20, latency_ms=900)
        log_call(session=session, model_name=LARGE, category_key="fragment_extraction", status="ok", selected_by="fallback",
                 input_tokens=100, output_tokens=30, latency_ms=1900)
    at = _page("analyst").run()
    assert not at.exception
    logs = _frame(at, "logs_table")
    assert list(logs["selected by"]) == ["fallback", "auto"] and list(logs["model"]) == [LARGE, SMALL]
    at.selectbox(key="log_selected_by").set_value("auto").run()
    assert list(_frame(at, "logs_table")["selection confidence"]) == [0.81]
