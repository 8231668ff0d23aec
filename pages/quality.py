"""Quality & cost: measured quality per model, the sweet spot, strategies, cascade replay, cross-batch QA."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from mmos_core.analysis.calibration import format_estimate
from mmos_core.core.config import get_settings
from mmos_core.core.domain import CATEGORIES
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services import optimizer as opt
from mmos_core.services import qa
from mmos_core.services.auth import Permission
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.calibration import calibration
from mmos_core.services.model_quality import model_quality
from mmos_core.services.quality import COST_METRICS
from mmos_core.services.replay import replay_cascades, replay_table
from mmos_core.services.report_warmup import REPLAY_DEFAULT_METRIC, replay_default_models
from mmos_core.services.sources import list_sources
from mmos_core.ui import data_version, keep_in_query, model_names, require, seed_from_query, sidebar_status, transaction

user = require(Permission.view_comparison)
sidebar_status()
st.title("Quality & cost")
st.caption(
    "Quality is measured, not self-reported: grounding (a direct quote counts only when verbatim and in the "
    "person's own speaker turns), support of each insight by its quote (the LLM judge), agreement with a "
    "reference (human-verified fragments, else the baseline model's batch), and human verdicts — combined "
    "into a 0–10 score with a 95 % interval (rule q-v2: docs/quality.md). The sweet spot uses the interval's "
    "lower bound."
)
if not get_settings().judge_enabled:
    st.warning("The LLM judge is switched off (MMOS_JUDGE_ENABLED=false): support is the embedding baseline only "
               "(insight vs quote similarity), which agrees less with reviewers (docs/quality.md).")

with transaction() as session:
    sources = list_sources(session=session)
if not any(s.batches_completed for s in sources):
    st.info("No completed batches yet. Queue a source for several models on the Sources page.")
    st.stop()
source_labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
source_types = sorted({s.source_type for s in sources})

# The reports below are read-only and cost seconds at 100,000 fragments (bench/README.md, page timings): each is
# cached keyed on `data_version()` (one small query), so a rerun with unchanged data reuses them and any new
# fragment, verdict, check, feedback or batch recomputes them (docs/quality.md).
def _ids(source_ids) -> tuple[int, ...] | None:
    return None if source_ids is None else tuple(source_ids)


@st.cache_data(max_entries=64, show_spinner="Measuring quality…")
def cached_model_quality(version: tuple, source_ids, source_type, category):
    """`model_quality` of the scope (`version`, the data fingerprint, only keys the cache)."""
    with transaction() as session:
        return model_quality(session=session, source_ids=None if source_ids is None else list(source_ids),
                             source_type=source_type, category=category)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_sweet_spot(version: tuple, source_id, source_type, category, threshold, budget, metric):
    """`find_sweet_spot` of the scope, threshold, budget and cost metric."""
    with transaction() as session:
        return opt.find_sweet_spot(session=session, source_id=source_id, source_type=source_type, category=category,
                                   quality_threshold=threshold, budget_per_fragment=budget, cost_metric=metric)


@st.cache_data(max_entries=8, show_spinner=False)
def cached_suggestions(version: tuple):
    """`reprocess_suggestions` (batches worth reprocessing with a cheaper model)."""
    with transaction() as session:
        return opt.reprocess_suggestions(session=session)


@st.cache_data(max_entries=32, show_spinner="Replaying cascades…")
def cached_replay(version: tuple, models: tuple, source_ids, metric: str, prices: tuple):
    """`replay_cascades` of the models on the sources; `prices` as ((model, (in, out)), ...)."""
    with transaction() as session:
        return replay_cascades(session=session, models=list(models), source_ids=None if source_ids is None else list(source_ids),
                               cost_metric=metric, prices=dict(prices) or None)


@st.cache_data(max_entries=32, show_spinner=False)
def cached_qa(version: tuple, source_ids):
    """(cross-batch agreement, 10 largest disagreements, contradicting fragments) of the sources."""
    ids = None if source_ids is None else list(source_ids)
    with transaction() as session:
        return (qa.cross_batch_agreement(session=session, source_ids=ids),
                qa.largest_disagreements(session=session, source_ids=ids, limit=10),
                qa.contradicting_fragments(session=session))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_calibration(version: tuple, source_ids):
    """`calibration` of the sources."""
    with transaction() as session:
        return calibration(session=session, source_ids=None if source_ids is None else list(source_ids))


version = data_version()

# A copied link reopens the same view (docs/ARCHITECTURE.md, "Rules"): scope, source type, source, category,
# the open tab and its choices live in the URL; values the page does not offer are dropped.
#: The replay's cost measures with its default first, which is where the radio opens.
REPLAY_METRICS = sorted(COST_METRICS, key=lambda m: m != REPLAY_DEFAULT_METRIC)
SCOPES = {"all": "All sources", "type": "Source type", "source": "One source"}
TABS = {"quality": "Quality per model", "sweet-spot": "Sweet spot", "strategies": "Strategies",
        "replay": "Cascade replay", "qa": "Cross-batch QA", "calibration": "Calibration"}


def _label_of(slugs: dict[str, str]):
    """URL slug → label parser for `seed_from_query` (ValueError for a slug the page does not know)."""
    def parse(raw: str) -> str:
        if raw not in slugs:
            raise ValueError(raw)
        return slugs[raw]
    return parse


seed_from_query({
    "q_scope": ("scope", _label_of(SCOPES)), "q_type": ("type", str), "q_source": ("source", int),
    "q_category": ("category", str), "q_tab": ("tab", _label_of(TABS)), "q_threshold": ("threshold", float),
    "q_budget": ("budget", float), "q_metric": ("cheapest", str), "r_models": ("replay", lambda raw: raw.split(",")),
    "r_metric": ("replay_cost", str),
})
for _key, _allowed in (("q_type", source_types), ("q_source", list(source_labels)), ("q_category", ["(all)", *CATEGORIES]),
                       ("q_metric", COST_METRICS), ("r_metric", REPLAY_METRICS)):
    if _key in st.session_state and st.session_state[_key] not in _allowed:
        del st.session_state[_key]
for _key, _low, _high in (("q_threshold", 0.0, 10.0), ("q_budget", 0.0, 10.0)):
    if _key in st.session_state and not _low <= st.session_state[_key] <= _high:
        del st.session_state[_key]

scope_col, type_col, cat_col = st.columns(3)
scope = scope_col.radio("Scope", list(SCOPES.values()), horizontal=True, key="q_scope")
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

keep_in_query({
    "scope": next(slug for slug, label in SCOPES.items() if label == scope) if scope != SCOPES["all"] else None,
    "type": source_type if scope == SCOPES["type"] else None,
    "source": source_id if scope == SCOPES["source"] else None,
    "category": kwargs["category"],
})

# on_change="rerun" makes the open tab a rerun-tracked value (st.session_state["q_tab"]) the link can carry
tab_quality, tab_spot, tab_runs, tab_replay, tab_qa, tab_cal = st.tabs(
    list(TABS.values()), key="q_tab", on_change="rerun"
)
open_tab = st.session_state.get("q_tab") or TABS["quality"]
keep_in_query({"tab": next((slug for slug, label in TABS.items() if label == open_tab and slug != "quality"), None)})

with tab_quality:
    rows = cached_model_quality(version, _ids(kwargs.get("source_ids")), kwargs.get("source_type"), kwargs["category"])
    if not rows:
        st.info("No completed batch in this scope.")
    else:
        df = pd.DataFrame([
            {
                "model": r.model_name, "batches": r.batches, "fragments": r.fragments,
                "quality (0-10)": r.score.score, "95% low": r.score.low, "95% high": r.score.high,
                "grounded": r.score.grounding, "hallucination rate": r.score.hallucination_rate,
                "quotes verbatim": (r.score.counts.quotes_exact / r.score.counts.direct_quotes) if r.score.counts.direct_quotes else None,
                "quotes by the person": (r.score.counts.quotes_by_person / r.score.counts.direct_quotes) if r.score.counts.direct_quotes else None,
                "insights supported": r.score.support, "judged": r.score.counts.judged,
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
            "quotes verbatim": st.column_config.NumberColumn(format="percent"),
            "quotes by the person": st.column_config.NumberColumn(format="percent"),
            "insights supported": st.column_config.NumberColumn(format="percent"),
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
    metric = c3.radio("Cheapest by", COST_METRICS, horizontal=True, key="q_metric",
                      help="Local models cost $0; 'seconds' ranks them by model time per fragment.")
    keep_in_query({"threshold": threshold if threshold != float(default_threshold) else None,
                   "budget": budget or None, "cheapest": metric if metric != "usd" else None})
    spot = cached_sweet_spot(version, kwargs.get("source_ids", [None])[0], kwargs.get("source_type"), kwargs["category"],
                             threshold, budget or None, metric)
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
    suggestions = cached_suggestions(version)
    st.subheader("Reprocess with a cheaper model")
    if suggestions:
        st.dataframe(pd.DataFrame([s.__dict__ for s in suggestions]), hide_index=True, width="stretch")
    else:
        st.caption("No completed batch costs more than $1.00 with average relevance below 8 (the core design workflow 2).")

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
    if "r_models" in st.session_state and not set(st.session_state["r_models"]) <= set(names):
        st.session_state["r_models"] = [m for m in st.session_state["r_models"] if m in names]
    default_models = replay_default_models(names)  # what the background warm-up computed (services.report_warmup)
    replay_models = st.multiselect("Models (≥ 2)", names, default=None if "r_models" in st.session_state else default_models,
                                   key="r_models")
    r_metric = st.radio("Cost", REPLAY_METRICS, horizontal=True, key="r_metric")
    keep_in_query({"replay": replay_models if replay_models != default_models else None,
                   "replay_cost": r_metric if r_metric != REPLAY_DEFAULT_METRIC else None})
    prices = {}
    if r_metric == "usd" and st.toggle("Hypothetical prices (USD per 1M tokens)", key="r_hypo"):
        for m in replay_models:
            a, b = st.columns(2)
            prices[m] = (a.number_input(f"{m} input", 0.0, 100.0, 0.15, key=f"r_in_{m}"),
                         b.number_input(f"{m} output", 0.0, 200.0, 0.60, key=f"r_out_{m}"))
    if len(replay_models) >= 2:
        try:
            replay = cached_replay(version, tuple(replay_models), _ids(kwargs.get("source_ids")), r_metric,
                                   tuple(sorted(prices.items())))
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
    agreement, disagreements, contradictions = cached_qa(version, _ids(kwargs.get("source_ids")))
    st.subheader("Fragments matched across batches (the core design workflow 3)")
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
    st.subheader("Contradicting fragments (the core design §6 A)")
    if contradictions:
        st.dataframe(pd.DataFrame([c.__dict__ for c in contradictions]), hide_index=True, width="stretch")
    else:
        st.caption("No fragments are linked as 'contradicts' yet (reviewers link them on the Review page).")


with tab_cal:
    st.caption(
        "How well each automatic check predicts reviewers' verdicts (verified vs rejected), and the matching reject "
        "reason (misquote ↔ verbatim, wrong speaker ↔ attribution, unsupported insight ↔ support, wrong category ↔ "
        "category). AUROC 0.5 is chance, 1.0 perfect; intervals are 95 %."
    )
    report = cached_calibration(version, _ids(kwargs.get("source_ids")))
    if report.n_rows < report.min_verdicts:
        st.info(f"Uncalibrated: {report.n_rows} reviewed fragment(s), {report.min_verdicts} needed before agreement "
                "figures mean anything. Until then the score's weights are the documented defaults, not fitted.")
    st.dataframe([
        {"check": c.check, "against": a.target, "verdicts": a.n,
         "AUROC (95%)": format_estimate(a.auroc, calibrated=a.calibrated),
         "accuracy (95%)": format_estimate(a.accuracy, calibrated=a.calibrated)}
        for c in report.checks.values() for a in (c.verdict, c.reason) if a is not None
    ], hide_index=True, width="stretch")
