"""Comparison: per-model figures of a source's batches and their fragments side by side, with
"differences only" / "unmatched only" filters, a word-level diff of matched quotes, the source passage
of a pair, and an A / B / tie vote per pair (stored as feedback: `services.feedback.record_pair_vote`).

The view (source, batches, the pair of batches, filter, threshold) lives in the URL, so a copied link
reopens it (docs/ARCHITECTURE.md, "Rules").
"""

import re

import pandas as pd
import plotly.express as px
import streamlit as st

from mmos_core.analysis.fragment_checks import word_diff
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services import feedback as fb
from mmos_core.services import review as rv
from mmos_core.services.auth import Permission
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.checks import checks_for
from mmos_core.services.comparison import DEFAULT_MATCH_THRESHOLD, align_batches, batch_stats, completed_batches
from mmos_core.services.sources import list_sources
from mmos_core.ui import (
    browser_session_id,
    data_version,
    failed_enqueues,
    int_list,
    keep_in_query,
    model_names,
    require,
    seed_from_query,
    sidebar_status,
    source_picker,
    transaction,
)

user = require(Permission.view_comparison)
sidebar_status()
st.title("Model comparison")

with transaction() as session:
    sources = [s for s in list_sources(session=session) if s.batches_completed]
if not sources:
    st.info("No completed batches yet. Queue a source for several models on the Sources page.")
    st.stop()

SHOW = {"all": "all pairs", "differences": "differences only", "unmatched": "unmatched only"}
#: pairs drawn per page of the side-by-side view: two batches of a large source have ~1,600 rows, and drawing
#: them all (ten elements each) took most of the page's ~1.4 s at 100,000 fragments (bench/README.md)
PAIRS_PER_PAGE = 50
seed_from_query({
    "cmp_batches": ("batches", int_list), "cmp_a": ("a", int), "cmp_b": ("b", int), "cmp_show": ("show", str),
    "cmp_threshold": ("match", float), "cmp_page": ("pairs_page", int),
})
source_id = source_picker(sources)

with transaction() as session:
    batches = completed_batches(session=session, source_id=source_id)
    batch_labels = {b.id: f"{b.batch_code} · {b.model_name}" for b in batches}
    # a linked batch of another source (or a deleted one) is dropped; none left → all of this source's
    linked = [b for b in st.session_state.get("cmp_batches") or [] if b in batch_labels]
    if "cmp_batches" in st.session_state and linked != st.session_state["cmp_batches"]:
        st.session_state["cmp_batches"] = linked or list(batch_labels)
    chosen = st.multiselect(
        "Batches", list(batch_labels), default=None if "cmp_batches" in st.session_state else list(batch_labels),
        format_func=batch_labels.get, key="cmp_batches",
    )
    stats = batch_stats(session=session, batch_ids=chosen)
keep_in_query({"batches": chosen if chosen != list(batch_labels) else None})

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
            "quality (0-10)": s.quality_score,
            "direct quotes": s.direct_quote_share,
            "quotes found in source": s.located_share,
            "quotes verbatim": s.verbatim_share,
            "quotes by the person": s.person_share,
            "insights supported": s.support_rate,
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
        "quotes verbatim": st.column_config.NumberColumn(format="percent"),
        "quotes by the person": st.column_config.NumberColumn(format="percent"),
        "insights supported": st.column_config.NumberColumn(format="percent"),
        "quality (0-10)": st.column_config.NumberColumn(format="%.2f"),
    },
)
st.caption(
    "Times are model time (the sum of the batch's LLM calls). Confidence is the model's own grade; "
    "'quotes found in source' is measured: the share of direct quotes located in the text (≥ 85/100 fuzzy match); "
    "'verbatim' counts exact quotes only, 'by the person' those inside the person's speaker turns, 'insights supported' "
    "the LLM judge's verdicts (the embedding baseline where nothing was judged yet). Quality is docs/quality.md's q-v2."
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
    keep_in_query({"a": None, "b": None, "show": None, "match": None, "pairs_page": None})
    st.info("Choose two batches to see their fragments side by side.")
    st.stop()

st.subheader("Fragments side by side")
for _key, _fallback in (("cmp_a", chosen[0]), ("cmp_b", chosen[1])):
    if st.session_state.get(_key) not in chosen:
        st.session_state[_key] = _fallback
if st.session_state.get("cmp_show") not in SHOW:
    st.session_state["cmp_show"] = "all"
if not 0.5 <= float(st.session_state.get("cmp_threshold", DEFAULT_MATCH_THRESHOLD)) <= 0.95:
    st.session_state["cmp_threshold"] = DEFAULT_MATCH_THRESHOLD
left_col, right_col, thr_col = st.columns([2, 2, 1])
batch_a = left_col.selectbox("Batch A", chosen, format_func=batch_labels.get, key="cmp_a")
batch_b = right_col.selectbox("Batch B", chosen, format_func=batch_labels.get, key="cmp_b")
threshold = thr_col.slider("Match at cosine ≥", 0.5, 0.95, value=None if "cmp_threshold" in st.session_state
                           else DEFAULT_MATCH_THRESHOLD, step=0.05, key="cmp_threshold")
show_what = st.radio("Show", list(SHOW), format_func=SHOW.get, horizontal=True, key="cmp_show")
keep_in_query({"a": batch_a, "b": batch_b, "show": show_what if show_what != "all" else None,
               "match": threshold if threshold != DEFAULT_MATCH_THRESHOLD else None})


def differs(pair) -> bool:
    """Unmatched, or matched with other words or another category."""
    if pair.left is None or pair.right is None:
        return True
    return bool(word_diff(pair.right.content, pair.left.content)[0]) or pair.left.category != pair.right.category


@st.cache_data(max_entries=32, show_spinner="Aligning the batches…")
def cached_alignment(version: tuple, batch_a: int, batch_b: int, threshold: float):
    """(`align_batches`' pairs, whether each `differs`), computed once per data version (`version` only keys
    the cache): a rerun that only turns a page or a toggle reuses the alignment (bench/README.md)."""
    with transaction() as session:
        aligned = align_batches(session=session, batch_a=batch_a, batch_b=batch_b, threshold=threshold)
    return aligned, [differs(p) for p in aligned]


pairs, differing = cached_alignment(data_version(), batch_a, batch_b, float(threshold))

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
    c = pair_checks.get(fragment.id)
    if c is not None and c.verbatim != "n/a":
        who = "the person" if c.attribution == "person" else c.attribution.replace("other:", "")
        column.caption(f"verbatim: {c.verbatim.replace('_', ' ')} · said by: {who}"
                       + (f" · support: {c.judge_support}" if c.judge_support else ""))


_MARK = re.compile(r"\[-(.*?)-\]|\{\+(.*?)\+\}")


def diff_markdown(rendered: str) -> str:
    """`word_diff`'s inline form (`we [-must-]{+should+} act`) as escaped Markdown: ~~A's words~~ → **B's words**."""
    out, at, deleted_at = [], 0, -1
    for m in _MARK.finditer(rendered):
        out.append(rv.markdown_escape(rendered[at:m.start()]))
        if m.group(1) is not None:
            out.append(f"~~{rv.markdown_escape(m.group(1))}~~")
            deleted_at = m.end()
        else:  # a replacement reads "~~A's~~ → **B's**"
            out.append((" → " if deleted_at == m.start() else "") + f"**{rv.markdown_escape(m.group(2))}**")
        at = m.end()
    out.append(rv.markdown_escape(rendered[at:]))
    return "".join(out)


def _vote(fragment_a: int, fragment_b: int, choice: str) -> None:
    try:
        with transaction() as session:
            fb.record_pair_vote(session=session, user=user, fragment_a=fragment_a, fragment_b=fragment_b,
                                choice=choice, session_id=browser_session_id())
        st.toast(f"Vote recorded: {'tie' if choice == 'tie' else choice + ' is better'}.")
    except fb.FeedbackError as exc:
        st.toast(f"Not recorded: {exc}")


shown_pairs = [p for p, d in zip(pairs, differing, strict=True)
               if show_what == "all" or (show_what == "unmatched" and (p.left is None or p.right is None))
               or (show_what == "differences" and d)]
if not shown_pairs:
    st.caption("No pair matches this filter.")
pair_pages = max(1, -(-len(shown_pairs) // PAIRS_PER_PAGE))
if not isinstance(st.session_state.get("cmp_page"), int) or not 1 <= st.session_state["cmp_page"] <= pair_pages:
    st.session_state["cmp_page"] = 1
if pair_pages > 1:
    pair_page = st.number_input(f"Page (of {pair_pages}, {PAIRS_PER_PAGE} pairs each)", min_value=1,
                                max_value=pair_pages, step=1, key="cmp_page")
else:
    pair_page = 1
keep_in_query({"pairs_page": pair_page if pair_page > 1 else None})
shown_pairs = shown_pairs[(pair_page - 1) * PAIRS_PER_PAGE:pair_page * PAIRS_PER_PAGE]
with transaction() as session:  # checks and votes of the pairs on this page only
    pair_checks = checks_for(
        session=session, fragment_ids=[f.id for p in shown_pairs for f in (p.left, p.right) if f is not None]
    )
    votes = fb.pair_votes(session=session, user=user,
                          pairs=[(p.left.id, p.right.id) for p in shown_pairs if p.left and p.right])
can_vote = user.can(Permission.give_feedback)
for pair in shown_pairs:
    a, b = st.columns(2)
    show(pair.left, a)
    show(pair.right, b)
    anchor = (pair.left or pair.right).id
    if pair.left is not None and pair.right is not None:
        _, rendered = word_diff(pair.right.content, pair.left.content)
        same = not _MARK.search(rendered)
        st.caption(f"cosine similarity {pair.similarity:.2f} · "
                   + ("same words" if same else "words: " + diff_markdown(rendered)))
        ids = (pair.left.id, pair.right.id)
        if can_vote:
            va, vb, vt, current = st.columns([1, 1, 1, 3])
            for col, choice, label in ((va, "A", "A is better"), (vb, "B", "B is better"), (vt, "tie", "Tie")):
                col.button(label, key=f"vote_{choice}_{ids[0]}_{ids[1]}", on_click=_vote, args=(*ids, choice),
                           type="primary" if votes.get(ids) == choice else "secondary")
            current.caption(f"your vote: {votes[ids]}" if ids in votes else "no vote yet")
    if st.toggle("Source passage", key=f"cmp_src_{anchor}"):
        with transaction() as session:
            try:
                ctx = rv.source_context(session=session, fragment_id=anchor, chars=300)
            except rv.ReviewError as exc:
                ctx = None
                st.caption(str(exc))
        if ctx is not None:
            st.caption(ctx.location_label or "—")
            st.markdown(f"…{rv.markdown_escape(ctx.before)}**{rv.markdown_escape(ctx.match)}**{rv.markdown_escape(ctx.after)}…")
    st.divider()
