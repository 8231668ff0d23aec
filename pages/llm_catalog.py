"""LLM catalog: models, prices and per-task recommendations learned from feedback (docs/model-catalog.md)."""

import pandas as pd
import streamlit as st

from mmos_core.services.auth import Permission
from mmos_core.services.catalog import ai_logs, browse, recommend
from mmos_core.services.catalog.aggregates import refresh_aggregates
from mmos_core.services.catalog.sync import sync_catalog
from mmos_core.ui import require, sidebar_status, transaction

user = require(Permission.view_comparison)
sidebar_status()
st.title("LLM catalog")
can_manage = user.can(Permission.manage_models)

with transaction() as session:
    facets = browse.facets(session=session)
    categories = [(c.category_key, c.category_name) for c in browse.task_categories(session=session)]

if facets.total == 0:
    st.info("The model catalog is empty." + (" Sync it below." if can_manage else " A manager can sync it (`mmos catalog sync`)."))

tab_rec, tab_catalog, tab_logs = st.tabs(["Recommendations", "Catalog", "Recent calls"])

with tab_rec:
    if not categories:
        st.caption("No task categories yet.")
    else:
        labels = {key: f"{name} ({key})" for key, name in categories}
        cat = st.selectbox("Task category", list(labels), format_func=labels.get, key="rec_category")
        include_inactive = st.toggle("Include deprecated models", key="rec_inactive")
        with transaction() as session:
            recs = recommend.best_models_for_task(
                session=session, task_category=cat, limit=10, user_id=user.id, include_inactive=include_inactive
            )
            preferred = recommend.user_preferred_model(session=session, user_id=user.id, task_category=cat)
            candidates = [r.model_id for r in recommend.rank_models(session=session, task_category=cat)]
        if not recs:
            st.caption("No candidate models: none is mapped to this category and none has feedback on it.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "model": r.model_id,
                            "yours": "pinned" if r.pinned else "",
                            "posterior mean": round(r.mean, 3),
                            "90 % interval": f"{r.low:.3f} – {r.high:.3f}",
                            "likes": r.likes,
                            "dislikes": r.dislikes,
                            "regenerates": r.regenerates,
                            "ratings": r.ratings,
                            "mean stars": round(r.mean_stars, 2) if r.mean_stars is not None else None,
                            "prior": r.base_suitability,
                            "cost": r.cost_bucket,
                            "status": r.status,
                        }
                        for r in recs
                    ]
                ),
                hide_index=True,
                width="stretch",
                key="rec_table",
            )
            st.caption(
                "Ranked by the lower end of the 90 % interval of a Beta posterior: likes count as successes, "
                "dislikes and regenerates as failures, a rating of r stars as (r−1)/4 of a success; the prior is "
                "the mapping's suitability worth 4 votes. More feedback narrows the interval (docs/model-catalog.md)."
            )

        st.subheader("Your model for this task")
        if preferred is None:
            st.caption("No preference yet: pin a model, or give feedback on its outputs.")
        elif preferred.source == "pinned":
            st.markdown(f"Pinned: **{preferred.model_id}**")
        else:
            st.markdown(
                f"From your feedback: **{preferred.model_id}** (preference {preferred.score:.2f}; "
                f"{preferred.likes} likes, {preferred.dislikes} dislikes, {preferred.regenerates} regenerates)"
            )
        if candidates:
            left, right = st.columns([3, 1])
            choice = left.selectbox("Pin a model", candidates, key="pin_model")
            if right.button("Pin", key="pin_button"):
                with transaction() as session:
                    recommend.set_user_preference(session=session, user_id=user.id, task_category=cat, model_id=choice)
                st.rerun()
        if preferred is not None and preferred.source == "pinned" and st.button("Clear my pin", key="unpin_button"):
            with transaction() as session:
                recommend.clear_user_preference(session=session, user_id=user.id, task_category=cat)
            st.rerun()

with tab_catalog:
    c1, c2, c3, c4 = st.columns(4)
    providers = c1.multiselect("Provider", facets.providers, key="f_provider")
    buckets = c2.multiselect("Cost bucket", facets.cost_buckets, key="f_bucket")
    statuses = c3.multiselect("Status", facets.statuses, default=[s for s in ("active",) if s in facets.statuses], key="f_status")
    caps = c4.multiselect("Capabilities (all of)", facets.capabilities, key="f_caps")
    search = st.text_input("Name contains", key="f_search")
    with transaction() as session:
        rows, total = browse.list_models(
            session=session, providers=providers, cost_buckets=buckets, statuses=statuses, capabilities=caps,
            search=search, limit=500,
        )
    st.caption(f"{total} of {facets.total} models match" + (" (first 500 shown, cheapest first)" if total > 500 else ""))
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "model": r.model_id,
                        "provider": r.provider,
                        "cost": r.cost_bucket,
                        "input $/1M": r.input_per_1m,
                        "output $/1M": r.output_per_1m,
                        "context": r.context_window,
                        "max output": r.max_tokens,
                        "status": r.status,
                        "deprecation": r.deprecated_at,
                        "capabilities": ", ".join(r.capabilities),
                        "mean latency ms": r.average_speed_ms,
                        "ok share": r.reliability,
                    }
                    for r in rows
                ]
            ),
            hide_index=True,
            width="stretch",
            key="catalog_table",
        )
    st.caption(
        "Prices from litellm's bundled price map (USD per 1M tokens); cost buckets on the blended price "
        "(3 input : 1 output): low < $2, medium < $4, high ≥ $4; local models are free."
    )
    if can_manage:
        a, b = st.columns(2)
        if a.button("Sync catalog from litellm's price map", key="sync_button"):
            with transaction() as session:
                report = sync_catalog(session=session)
            st.success(report.summary())
        if b.button("Refresh aggregates now", key="refresh_button"):
            with transaction() as session:
                agg = refresh_aggregates(session=session)
            st.success(agg.summary())

with tab_logs:
    only = st.selectbox("Selected by", ["all", "auto", "user_override", "fallback"], key="log_selected_by")
    with transaction() as session:
        logs = ai_logs.recent_logs(session=session, limit=200, selected_by=None if only == "all" else only)
    if not logs:
        st.caption("No LLM calls logged yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": r.created_at,
                        "model": r.model_name,
                        "task": r.category_key,
                        "priority": r.task_priority,
                        "complexity": r.task_complexity,
                        "selected by": r.selected_by,
                        "selection confidence": r.confidence,
                        "status": r.status,
                        "tokens in": r.input_tokens,
                        "tokens out": r.output_tokens,
                        "cost $": r.cost_usd,
                        "latency ms": r.latency_ms,
                        "batch": r.batch_id,
                        "error": r.error,
                    }
                    for r in logs
                ]
            ),
            hide_index=True,
            width="stretch",
            key="logs_table",
        )
