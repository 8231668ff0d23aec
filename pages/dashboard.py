"""Dashboard: spend per day / model / source type, quality against cost, daily budget, savings."""

import datetime as dt

import pandas as pd
import plotly.express as px
import streamlit as st

from mmos_core.services.auth import Permission
from mmos_core.services.dashboard import (
    DEFAULT_QUALITY_THRESHOLD,
    QUALITY_LABELS,
    BudgetPermissionError,
    cheapest_above,
    cost_and_quality_by_model,
    days_against_budget,
    get_budget,
    models_over_fragment_limit,
    models_with_performance,
    savings_vs_baseline,
    set_budget,
    spend_by,
    spend_rows,
)
from mmos_core.ui import require, sidebar_status, transaction

user = require(Permission.view_dashboard)
sidebar_status()
st.title("Dashboard")

today = dt.datetime.now(dt.UTC).date()
picked = st.date_input("Date range (UTC days)", value=(today - dt.timedelta(days=29), today), key="dash_range")
if not isinstance(picked, tuple | list) or len(picked) != 2:
    st.info("Choose the last day of the range too.")
    st.stop()
start, end = picked

with transaction() as session:
    rows = spend_rows(session=session, start=start, end=end)
    models = cost_and_quality_by_model(session=session, start=start, end=end)
    budget = get_budget(session=session)
    baselines = models_with_performance(session=session)

# --- budget ------------------------------------------------------------------------------------

st.subheader("Daily budget")
spent_today = spend_by([r for r in rows if r.day == today], "day").get(today)
col_a, col_b = st.columns(2)
col_a.metric(
    "Spent today (UTC)",
    f"${float(spent_today or 0):.4f}",
    help="Sum of the cost of today's LLM calls (litellm prices frozen per batch).",
)
col_b.metric(
    "Daily limit",
    f"${float(budget.daily_limit_usd):.4f}" if budget.daily_limit_usd is not None else "none",
)
if budget.per_fragment_limit_usd is not None:
    st.caption(f"Per-fragment limit: ${float(budget.per_fragment_limit_usd):.6f}")
if user.can(Permission.change_budgets):
    with st.form("budget_form"):
        daily = st.number_input(
            "Daily limit (USD, empty = none)",
            min_value=0.0,
            value=float(budget.daily_limit_usd) if budget.daily_limit_usd is not None else None,
            step=1.0,
            format="%.4f",
            key="budget_daily",
        )
        per_fragment = st.number_input(
            "Per-fragment limit (USD, empty = none)",
            min_value=0.0,
            value=float(budget.per_fragment_limit_usd) if budget.per_fragment_limit_usd is not None else None,
            step=0.001,
            format="%.6f",
            key="budget_per_fragment",
        )
        if st.form_submit_button("Save budget"):
            try:
                with transaction() as session:
                    budget = set_budget(
                        session=session, user=user, daily_limit_usd=daily, per_fragment_limit_usd=per_fragment
                    )
                st.success("Budget saved.")
            except (BudgetPermissionError, ValueError) as exc:
                st.error(str(exc))
else:
    st.caption("Read-only: your role does not change budgets.")

# --- spend -------------------------------------------------------------------------------------

st.subheader("Spend")
if not rows:
    st.info("No LLM calls in this date range.")
else:
    spend = pd.DataFrame(
        [{"day": r.day, "model": r.model_name, "source type": r.source_type, "cost (USD)": float(r.cost_usd), "calls": r.calls} for r in rows]
    )
    st.metric("Spent in range", f"${spend['cost (USD)'].sum():.4f}")
    per_day = px.bar(spend, x="day", y="cost (USD)", color="model", title="Spend per day (USD, by model)")
    if budget.daily_limit_usd is not None:
        per_day.add_hline(y=float(budget.daily_limit_usd), line_dash="dash", annotation_text="daily limit")
    st.plotly_chart(per_day, width="stretch")
    over = [d for d in days_against_budget(rows, budget) if d.over]
    if over:
        st.warning("Over the daily limit on: " + ", ".join(f"{d.day} (${float(d.spent_usd):.4f})" for d in over))
    left, right = st.columns(2)
    by_model = pd.DataFrame([{"model": k, "cost (USD)": float(v)} for k, v in spend_by(rows, "model_name").items()])
    left.plotly_chart(px.bar(by_model, x="model", y="cost (USD)", title="Spend per model"), width="stretch")
    by_type = pd.DataFrame([{"source type": k, "cost (USD)": float(v)} for k, v in spend_by(rows, "source_type").items()])
    right.plotly_chart(px.bar(by_type, x="source type", y="cost (USD)", title="Spend per source type"), width="stretch")

# --- quality against cost ----------------------------------------------------------------------

st.subheader("Quality against cost")
if not models:
    st.info("No completed batches evaluated in this date range.")
else:
    metric = st.radio(
        "Quality signal",
        ["measured", "self_reported", "located"],
        format_func=QUALITY_LABELS.get,
        index=0 if any(m.measured_quality is not None for m in models) else 1,
        key="quality_metric",
        horizontal=True,
    )
    if metric in ("measured", "self_reported"):
        threshold = st.slider("Threshold (0-10)", 0.0, 10.0, DEFAULT_QUALITY_THRESHOLD, 0.5, key="quality_threshold")
    else:
        threshold = st.slider("Threshold (share 0-1)", 0.0, 1.0, 0.8, 0.05, key="located_threshold")
    best = cheapest_above(models, threshold, metric)
    over_limit = set(models_over_fragment_limit(models, budget))
    quality = pd.DataFrame(
        [
            {
                "model": m.model_name,
                "batches": m.batches,
                "fragments": m.fragments,
                "cost (USD)": float(m.cost_usd),
                "USD / fragment": float(m.cost_per_fragment_usd) if m.cost_per_fragment_usd is not None else None,
                "measured quality (0-10)": m.measured_quality,
                "self-reported quality (0-10)": m.self_reported_quality,
                "quotes found in source": m.located_share,
                "mark": "cheapest above threshold" if best and m.model_name == best.model_name else "other",
                "over per-fragment limit": m.model_name in over_limit,
            }
            for m in models
        ]
    )
    y = {"measured": "measured quality (0-10)", "self_reported": "self-reported quality (0-10)"}.get(
        metric, "quotes found in source")
    chart = px.scatter(
        quality.dropna(subset=["USD / fragment", y]),
        x="USD / fragment",
        y=y,
        color="model",
        symbol="mark",
        size="fragments",
        hover_data=["batches", "cost (USD)"],
        title="Quality against cost per fragment",
    )
    chart.add_hline(y=threshold, line_dash="dot", annotation_text="threshold")
    st.plotly_chart(chart, width="stretch")
    if best is None:
        st.markdown(f"No model reaches {threshold:g} on {QUALITY_LABELS[metric]}.")
    else:
        st.markdown(
            f"Cheapest model at or above {threshold:g}: **{best.model_name}** "
            f"(${float(best.cost_per_fragment_usd):.6f} per fragment)"
        )
    st.dataframe(
        quality,
        hide_index=True,
        width="stretch",
        column_config={
            "USD / fragment": st.column_config.NumberColumn(format="$%.6f"),
            "cost (USD)": st.column_config.NumberColumn(format="$%.4f"),
            "self-reported quality (0-10)": st.column_config.NumberColumn(format="%.2f"),
            "quotes found in source": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption(
        "Self-reported quality is the core design's AVG(confidence × 10): the model grading itself. "
        "'Quotes found in source' is measured: the share of direct quotes located in the source text."
    )

# --- savings -----------------------------------------------------------------------------------

st.subheader("Savings against a baseline")
if not baselines:
    st.info("No model has completed a batch yet.")
else:
    baseline = st.selectbox("Baseline model", baselines, key="baseline_model")
    with transaction() as session:
        savings = savings_vs_baseline(session=session, baseline_model=baseline, start=start, end=end)
    if not savings:
        st.info(f"No other model processed a source that {baseline} processed in this range.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "model": s.model_name,
                        "shared sources": s.sources,
                        "baseline cost (USD)": float(s.baseline_cost_usd),
                        "model cost (USD)": float(s.model_cost_usd),
                        "saved (USD)": float(s.savings_usd),
                        "saved (%)": s.savings_pct,
                    }
                    for s in savings
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={"saved (%)": st.column_config.NumberColumn(format="%.1f%%")},
        )
        st.caption(
            "Per source processed by both: baseline batch cost − model batch cost (latest full-source batch "
            "of each). Saved % = total saved ÷ total baseline cost × 100."
        )
