"""Comparison: per-model figures of a source's batches and their fragments side by side."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services import feedback as fb
from mmos_core.services.auth import Permission
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.comparison import DEFAULT_MATCH_THRESHOLD, align_batches, batch_stats, completed_batches
from mmos_core.services.sources import list_sources
from mmos_core.ui import browser_session_id, failed_enqueues, model_names, require, sidebar_status, transaction

user = require(Permission.view_comparison)
sidebar_status()
st.title("Model comparison")

with transaction() as session:
    sources = [s for s in list_sources(session=session) if s.batches_completed]
if not sources:
    st.info("No completed batches yet. Queue a source for several models on the Sources page.")
    st.stop()

ids = [s.source_id for s in sources]
labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
current = st.session_state.get("selected_source_id")
source_id = st.selectbox("Source", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get)
st.session_state["selected_source_id"] = source_id

with transaction() as session:
    batches = completed_batches(session=session, source_id=source_id)
    batch_labels = {b.id: f"{b.batch_code} · {b.model_name}" for b in batches}
    chosen = st.multiselect(
        "Batches", list(batch_labels), default=list(batch_labels), format_func=batch_labels.get
    )
    stats = batch_stats(session=session, batch_ids=chosen)

table = pd.DataFrame(
    [
        {
            "batch": s.batch_code,
            "model": s.model_name,
            "fragments": s.fragments,
            "avg relevance": s.avg_relevance,
            "avg confidence (self-reported)": s.avg_confidence,
            "input tokens": s.input_tokens,
            "output tokens": s.output_tokens,
            "cost (USD)": float(s.cost_usd),
            "USD / fragment": float(s.cost_per_fragment) if s.cost_per_fragment is not None else None,
            "s / fragment": s.seconds_per_fragment,
            "direct quotes": s.direct_quote_share,
            "quotes found in source": s.located_share,
            "malformed answers": f"{s.malformed_responses}/{s.chunks_total}",
        }
        for s in stats
    ]
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "avg relevance": st.column_config.NumberColumn(format="%.2f"),
        "avg confidence (self-reported)": st.column_config.NumberColumn(format="%.3f"),
        "cost (USD)": st.column_config.NumberColumn(format="$%.6f"),
        "USD / fragment": st.column_config.NumberColumn(format="$%.6f"),
        "s / fragment": st.column_config.NumberColumn(format="%.2f"),
        "direct quotes": st.column_config.NumberColumn(format="percent"),
        "quotes found in source": st.column_config.NumberColumn(format="percent"),
    },
)
st.caption(
    "Times are model time (the sum of the batch's LLM calls). Confidence is the model's own grade; "
    "'quotes found in source' is measured: the share of direct quotes located in the text (≥ 85/100 fuzzy match)."
)

if len(stats) >= 1:
    chart = px.scatter(
        table,
        x="s / fragment",
        y="avg relevance",
        size="fragments",
        color="model",
        hover_data=["batch", "USD / fragment"],
        title="Speed and relevance per batch",
    )
    st.plotly_chart(chart, width="stretch")

def _batch_feedback(kind: str, batch_id: int) -> None:
    """Store thumbs / stars / like / dislike / skip / regenerate on a whole batch output."""
    mapped = fb.from_widget(kind, st.session_state.get(f"batch_{kind}_{batch_id}"))
    if mapped is None:
        return
    kind, rating = mapped[0].value, mapped[1]
    reason = st.session_state.get(f"batch_reason_{batch_id}")
    try:
        with transaction() as session:
            if kind == "regenerate":
                job = fb.regenerate_batch(
                    session=session, user=user, batch_id=batch_id, reason=reason, session_id=browser_session_id(),
                    model_name=st.session_state.get(f"batch_regen_model_{batch_id}"),
                )
                enqueue_batches([job], session=session)
            else:
                fb.record_feedback(
                    session=session, user=user, feedback_type=kind, batch_id=batch_id, quality_rating=rating,
                    reason=reason, session_id=browser_session_id(),
                )
        for failure in failed_enqueues(session):
            st.toast(f"Saved, but not queued yet ({failure}); the worker's reconcile picks it up.")
        st.toast(f"Feedback recorded: {kind}{f' ({rating}★)' if rating else ''}.")
    except (fb.FeedbackError, UnknownModelError, ValueError) as exc:
        st.toast(f"Not recorded: {exc}")


with st.expander("Rate a batch output", icon=":material/thumbs_up_down:"):
    rated = st.selectbox("Batch", chosen, format_func=batch_labels.get, key="rate_batch")
    if rated is not None:
        thumbs_col, stars_col = st.columns(2)
        with thumbs_col:
            st.feedback("thumbs", key=f"batch_thumbs_{rated}", on_change=_batch_feedback, args=("thumbs", rated))
        with stars_col:
            st.feedback("stars", key=f"batch_stars_{rated}", on_change=_batch_feedback, args=("stars", rated))
        st.text_input("Reason (optional)", key=f"batch_reason_{rated}")
        like, dislike, skip, regen_model, regen = st.columns([1, 1, 1, 2, 1])
        like.button("Like", key=f"batch_like_{rated}", on_click=_batch_feedback, args=("like", rated))
        dislike.button("Dislike", key=f"batch_dislike_{rated}", on_click=_batch_feedback, args=("dislike", rated))
        skip.button("Skip", key=f"batch_skip_{rated}", on_click=_batch_feedback, args=("skip", rated))
        regen_model.selectbox("Regenerate with", model_names(), key=f"batch_regen_model_{rated}", label_visibility="collapsed")
        regen.button("Regenerate", key=f"batch_regen_{rated}", on_click=_batch_feedback, args=("regenerate", rated))
        with transaction() as session:
            counts = fb.feedback_counts(session=session, batch_id=rated)
        st.caption(
            f"likes {counts.likes} · dislikes {counts.dislikes} · regenerated {counts.regenerates} · skipped {counts.skips}"
            + (f" · {counts.mean_stars:.1f}★ from {counts.ratings} rating(s)" if counts.ratings else "")
        )

if len(chosen) < 2:
    st.info("Choose two batches to see their fragments side by side.")
    st.stop()

st.subheader("Fragments side by side")
left_col, right_col, thr_col = st.columns([2, 2, 1])
batch_a = left_col.selectbox("Batch A", chosen, index=0, format_func=batch_labels.get)
batch_b = right_col.selectbox("Batch B", chosen, index=1, format_func=batch_labels.get)
threshold = thr_col.slider("Match at cosine ≥", 0.5, 0.95, DEFAULT_MATCH_THRESHOLD, 0.05)

with transaction() as session:
    pairs = align_batches(session=session, batch_a=batch_a, batch_b=batch_b, threshold=threshold)

matched = sum(1 for p in pairs if p.left and p.right)
only_a = sum(1 for p in pairs if p.left and not p.right)
only_b = sum(1 for p in pairs if p.right and not p.left)
st.write(f"**{matched}** matched pairs · **{only_a}** only in A · **{only_b}** only in B")


def show(fragment, column) -> None:
    if fragment is None:
        column.caption("— no match —")
        return
    column.markdown(
        f"`{fragment.fragment_code}` **{fragment.category}** · {fragment.fragment_type} · "
        f"relevance {fragment.relevance} · confidence {fragment.confidence:.2f}"
    )
    column.markdown(f"> {fragment.content}")
    if fragment.insight:
        column.caption(f"Insight: {fragment.insight}")
    column.caption(f"Location: {fragment.location_in_source or '—'}")


for pair in pairs:
    a, b = st.columns(2)
    show(pair.left, a)
    show(pair.right, b)
    if pair.similarity is not None:
        st.caption(f"cosine similarity {pair.similarity:.2f}")
    st.divider()
