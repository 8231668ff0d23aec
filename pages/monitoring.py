"""Live inference monitoring: rate, latency per model, confidence, hallucinations, lake inflow."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mmos_core.services import monitoring as mon
from mmos_core.services.auth import Permission
from mmos_core.storage.lake import get_lake
from mmos_core.ui import require, sidebar_status, transaction

user = require(Permission.view_monitoring)
sidebar_status()
st.title("Inference monitoring")
st.caption(
    "Every embedding-based analysis (fragment grounding, message analysis, search queries) is logged in "
    "`asi_inferences`. Confidence is the measured support of a text by its evidence; flux/sacred positions "
    "shown elsewhere are the monitoring design's conventions and never change these figures."
)


@st.fragment(run_every=5)
def live() -> None:
    """Re-drawn every 5 s from the database (and the lake's own stats)."""
    with transaction() as session:
        rate = pd.DataFrame(mon.inference_rate(session=session, minutes=60))
        latency = mon.latency_by_model(session=session, minutes=60)
        conf = mon.confidence_values(session=session, hours=24)
        hours = pd.DataFrame(mon.hourly(session=session, hours=24))
    lake = get_lake().stats()
    a, b, c = st.columns(3)
    a.metric("Inferences, last hour", int(rate["n"].sum()) if not rate.empty else 0)
    b.metric("Hallucination rate, 24 h", f"{(hours['hallucination_rate'] * hours['n']).sum() / hours['n'].sum():.1%}" if not hours.empty else "—")
    c.metric("Confidence lake", f"{lake.entries:,} entries", help=f"{lake.torn_records} torn records skipped")
    if rate.empty:
        st.info("No inferences in the last hour.")
    else:
        st.plotly_chart(px.bar(rate, x="minute", y="n", color="kind", title="Inferences per minute"), width="stretch")
    if latency:
        lat = pd.DataFrame([{"model": r.model_name, "p50 ms": r.p50_ms, "p95 ms": r.p95_ms, "n": r.n} for r in latency])
        st.plotly_chart(px.bar(lat.melt(id_vars=["model", "n"], var_name="percentile", value_name="ms"),
                               x="model", y="ms", color="percentile", barmode="group", title="Latency per model (last hour)"),
                        width="stretch")
    if conf:
        st.plotly_chart(px.histogram(pd.DataFrame({"confidence": conf}), x="confidence", nbins=20,
                                     title="Confidence distribution (24 h)"), width="stretch")
    if not hours.empty:
        left, right = st.columns(2)
        left.plotly_chart(px.line(hours, x="hour", y="hallucination_rate", title="Hallucination rate per hour"), width="stretch")
        right.plotly_chart(px.bar(hours, x="hour", y="lake_inflow", title="Lake inflow per hour"), width="stretch")


live()

st.subheader("Latest inferences")
with transaction() as session:
    recent = pd.DataFrame(mon.recent_inferences(session=session, limit=50))
    accuracy = mon.category_accuracy(session=session)
if recent.empty:
    st.caption("None yet.")
else:
    recent = recent.rename(
        columns={
            "flux_position": "flux position (the monitoring design convention)",
            "is_sacred": "sacred 3/6/9 (the monitoring design convention)",
            "elp_channels": "ELP (similarity to appeal prototypes)",
        }
    )
    st.dataframe(recent, hide_index=True, width="stretch")
    st.caption(
        "Measured: confidence (support by the evidence), hallucination (confidence < 0.5), archetype (nearest "
        "prototype). The monitoring design conventions (flux position, sacred positions, its +0.15 'boost' kept in "
        "sacred_interventions) are recorded as the seed states and never change a measured value."
    )
st.caption(
    "Zero-shot category accuracy against reviewers' corrections: "
    + (f"{accuracy['accuracy']:.0%} of {accuracy['n']}" if accuracy.get("n") else "no corrections yet")
)

st.subheader("History (hourly rollup)")
with transaction() as session:
    past = pd.DataFrame(mon.history(session=session, days=7))
if past.empty:
    st.caption("The rollup is empty (workers refresh it every 5 minutes; `mmos metrics` refreshes it now).")
else:
    st.dataframe(past.drop(columns=["onnx_model_id"], errors="ignore"), hide_index=True, width="stretch")
