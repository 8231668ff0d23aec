"""Quality & cost: measured quality per model, the sweet spot, strategies, cascade replay, cross-batch QA."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mmos_core.core.domain import CATEGORIES
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services import optimizer as opt
from mmos_core.services import qa
from mmos_core.services.auth import Permission
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.quality import model_quality
from mmos_core.services.replay import replay_cascades, replay_table
from mmos_core.services.sources import list_sources
from mmos_core.ui import model_names, require, sidebar_status, transaction

user = require(Permission.view_comparison)
sidebar_status()
st.title("Quality & cost")
st.caption(
    "Quality is measured, not self-reported: grounding of every fragment in its source, agreement with a "
    "reference (human-verified fragments, else the baseline model's batch), and human verdicts — combined "
    "into a 0–10 score with a 95 % interval (rule: docs/quality.md). The sweet spot uses the interval's "
    "lower bound."
)

with transaction() as session:
    sources = list_sources(session=session)
if not any(s.batches_completed for s in sources):
    st.info("No completed batches yet. Queue a source for several models on the Sources page.")
    st.stop()
source_labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
source_types = sorted({s.source_type for s in sources})

scope_col, type_col, cat_col = st.columns(3)
scope = scope_col.radio("Scope", ["All sources", "Source type", "One source"], horizontal=True, key="q_scope")
source_type = type_col.selectbox("Source type", source_types, key="q_type", disabled=scope != "Source type")
source_id = cat_col.selectbox("Source", list(source_labels), format_func=source_labels.get, key="q_source",
                              disabled=scope != "One source")
category = st.selectbox("Fragment category", ["(all)", *CATEGORIES], key="q_category")
kwargs = {"category": None if category == "(all)" else category}
scope_type = {"Source type": source_type, "One source": next(s.source_type for s in sources if s.source_id == source_id)}.get(scope)
if scope == "Source type":
    kwargs["source_type"] = source_type
elif scope == "One source":
    kwargs["source_ids"] = [source_id]

tab_quality, tab_spot, tab_runs, tab_replay, tab_qa = st.tabs(
    ["Quality per model", "Sweet spot", "Strategies", "Cascade replay", "Cross-batch QA"]
)

with tab_quality:
    with transaction() as session:
        rows = model_quality(session=session, **kwargs)
    if not rows:
        st.info("No completed batch in this scope.")
    else:
        df = pd.DataFrame([
            {
                "model": r.model_name, "batches": r.batches, "fragments": r.fragments,
                "quality (0-10)": r.score.score, "95% low": r.score.low, "95% high": r.score.high,
                "grounded": r.score.grounding, "hallucination rate": r.score.hallucination_rate,
                "agreement F1": r.score.agreement_f1, "human": r.score.human,
                "judgements": r.score.counts.human_n,
                "USD / fragment": None if r.cost_per_fragment is None else float(r.cost_per_fragment),
                "s / fragment": r.seconds_per_fragment,
            }
            for r in rows
        ])
        st.dataframe(df, hide_index=True, width="stretch", column_config={
            "grounded": st.column_config.NumberColumn(format="percent"),
            "hallucination rate": st.column_config.NumberColumn(format="percent"),
            "agreement F1": st.column_config.NumberColumn(format="%.3f"),
            "human": st.column_config.NumberColumn(format="%.3f"),
            "USD / fragment": st.column_config.NumberColumn(format="$%.6f"),
            "s / fragment": st.column_config.NumberColumn(format="%.1f"),
        })
        plotted = df.dropna(subset=["quality (0-10)"])
        if not plotted.empty:
            fig = go.Figure()
            for _, r in plotted.iterrows():
                fig.add_trace(go.Scatter(
                    x=[r["s / fragment"]], y=[r["quality (0-10)"]], mode="markers+text", text=[r["model"]],
                    textposition="top center", name=r["model"],
                    error_y={"type": "data", "symmetric": False, "array": [r["95% high"] - r["quality (0-10)"]],
                             "arrayminus": [r["quality (0-10)"] - r["95% low"]]},
                ))
            fig.update_layout(title="Measured quality (95% interval) against model seconds per fragment",
                              xaxis_title="model seconds per fragment", yaxis_title="quality (0-10)",
                              yaxis_range=[0, 10.5], showlegend=False,
                              xaxis_range=[0, 1.2 * float(plotted["s / fragment"].max() or 1)])
            st.plotly_chart(fig, width="stretch")

with tab_spot:
    default_threshold = opt.quality_threshold_for(scope_type)
    c1, c2, c3 = st.columns(3)
    threshold = c1.number_input("Quality threshold (0-10)", 0.0, 10.0, float(default_threshold), 0.5, key="q_threshold")
    budget = c2.number_input("Budget per fragment (USD, 0 = none)", 0.0, 10.0, 0.0, 0.001, format="%.4f", key="q_budget")
    metric = c3.radio("Cheapest by", ["usd", "seconds"], horizontal=True, key="q_metric",
                      help="Local models cost $0; 'seconds' ranks them by model time per fragment.")
    with transaction() as session:
        spot = opt.find_sweet_spot(
            session=session, source_id=kwargs.get("source_ids", [None])[0], source_type=kwargs.get("source_type"),
            category=kwargs["category"], quality_threshold=threshold, budget_per_fragment=budget or None, cost_metric=metric,
        )
    if spot.model_name:
        saving = f" — saves {spot.saving_pct:g}% ({metric}) against {spot.baseline_model}" if spot.saving_pct is not None else ""
        st.success(f"Sweet spot: **{spot.model_name}**{saving}.")
    else:
        st.warning(f"No model's quality lower bound reaches {spot.quality_threshold:g} within the budget in this scope.")
    st.dataframe(pd.DataFrame([
        {"model": c.model_name, "quality": c.quality.score, "95% low": c.quality.low, "fragments": c.fragments,
         "USD / fragment": None if c.cost_per_fragment is None else float(c.cost_per_fragment),
         "s / fragment": c.seconds_per_fragment, "eligible": c.eligible, "why": c.reason}
        for c in spot.candidates
    ]), hide_index=True, width="stretch")
    with transaction() as session:
        suggestions = opt.reprocess_suggestions(session=session)
    st.subheader("Reprocess with a cheaper model")
    if suggestions:
        st.dataframe(pd.DataFrame([s.__dict__ for s in suggestions]), hide_index=True, width="stretch")
    else:
        st.caption("No completed batch costs more than $1.00 with average relevance below 8 (seed 000 workflow 2).")

with tab_runs:
    if user.can(Permission.queue_extraction):
        with st.form("start_run"):
            chosen_sources = st.multiselect("Sources", list(source_labels), format_func=source_labels.get)
            strategy = st.radio("Strategy", opt.STRATEGIES, horizontal=True,
                                help="progressive: cheapest first on a sample, escalate while below the threshold; "
                                     "aggressive: cheapest everywhere; conservative: best measured quality.")
            ladder = st.multiselect("Models (empty: every available model, cheapest first)", model_names())
            c1, c2, c3 = st.columns(3)
            run_threshold = c1.number_input("Threshold (0 = per source type)", 0.0, 10.0, 0.0, 0.5)
            run_budget = c2.number_input("Budget per fragment (USD, 0 = none)", 0.0, 10.0, 0.0, 0.001, format="%.4f")
            sample = c3.number_input("Sample chunks", 1, 20, 3)
            if st.form_submit_button("Start"):
                try:
                    with transaction() as session:
                        runs, jobs = opt.process_batch(
                            session=session, source_ids=chosen_sources, strategy=strategy, models=ladder or None,
                            quality_threshold=run_threshold or None, budget_per_fragment=run_budget or None,
                            sample_chunks=int(sample), user_id=user.id,
                        )
                        enqueue_batches(jobs, session=session)
                    st.toast(f"Started {len(runs)} run(s), {len(jobs)} batch(es) queued.")
                except (ValueError, LookupError, UnknownModelError) as exc:
                    st.error(str(exc))
    with transaction() as session:
        runs = opt.list_runs(session=session)
        run_rows = [
            {"run": r.id, "source": source_labels.get(r.source_id, r.source_id), "strategy": r.strategy,
             "status": r.status, "chosen model": r.chosen_model, "threshold": float(r.quality_threshold),
             "steps": " → ".join(f"{d['action']} {d['model']}" for d in r.decisions),
             "last decision": r.decisions[-1]["reason"] if r.decisions else ""}
            for r in runs
        ]
    if run_rows:
        st.dataframe(pd.DataFrame(run_rows), hide_index=True, width="stretch")
    else:
        st.caption("No optimization run yet.")

with tab_replay:
    st.caption(
        "Replays stored answers, no new call: the cheapest model first, a chunk escalated to the next model while "
        "the grounded share of its fragments is below x. Hypothetical prices re-price the recorded tokens."
    )
    names = sorted({r.model_name for r in rows}) if rows else []
    replay_models = st.multiselect("Models (≥ 2)", names, default=names[:3], key="r_models")
    r_metric = st.radio("Cost", ["seconds", "usd"], horizontal=True, key="r_metric")
    prices = {}
    if r_metric == "usd" and st.toggle("Hypothetical prices (USD per 1M tokens)", key="r_hypo"):
        for m in replay_models:
            a, b = st.columns(2)
            prices[m] = (a.number_input(f"{m} input", 0.0, 100.0, 0.15, key=f"r_in_{m}"),
                         b.number_input(f"{m} output", 0.0, 200.0, 0.60, key=f"r_out_{m}"))
    if len(replay_models) >= 2:
        try:
            with transaction() as session:
                replay = replay_cascades(session=session, models=replay_models, source_ids=kwargs.get("source_ids"),
                                         cost_metric=r_metric, prices=prices or None)
        except ValueError as exc:
            st.info(str(exc))
        else:
            table = pd.DataFrame(replay_table(replay))
            cost_col = table.columns[1]
            st.dataframe(table, hide_index=True, width="stretch")
            fig = px.scatter(table, x=cost_col, y="quality", text="policy", color="on_hull",
                             title=f"Cost–quality over {replay.chunks} chunks of {len(replay.sources)} source(s)"
                                   + (" (hypothetical prices)" if replay.hypothetical_prices else ""))
            hull = table[table["on_hull"]].sort_values(cost_col)
            fig.add_trace(go.Scatter(x=hull[cost_col], y=hull["quality"], mode="lines", name="hull"))
            fig.update_traces(textposition="top center", selector={"mode": "markers+text"})
            st.plotly_chart(fig, width="stretch")

with tab_qa:
    with transaction() as session:
        agreement = qa.cross_batch_agreement(session=session, source_ids=kwargs.get("source_ids"))
        disagreements = qa.largest_disagreements(session=session, source_ids=kwargs.get("source_ids"), limit=10)
        contradictions = qa.contradicting_fragments(session=session)
    st.subheader("Fragments matched across batches (seed 000 workflow 3)")
    if agreement:
        st.dataframe(pd.DataFrame([a.__dict__ for a in agreement]), hide_index=True, width="stretch")
    else:
        st.caption("No source has batches of two models yet.")
    if disagreements:
        st.subheader("Same content, different relevance")
        st.dataframe(pd.DataFrame([
            {"model A": d.model_a, "relevance A": d.relevance_a, "A": d.content_a,
             "model B": d.model_b, "relevance B": d.relevance_b, "B": d.content_b, "cosine": d.similarity}
            for d in disagreements
        ]), hide_index=True, width="stretch")
    st.subheader("Contradicting fragments (seed 000 §6 A)")
    if contradictions:
        st.dataframe(pd.DataFrame([c.__dict__ for c in contradictions]), hide_index=True, width="stretch")
    else:
        st.caption("No fragments are linked as 'contradicts' yet (reviewers link them on the Review page).")
