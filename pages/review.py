"""Review: filter and search fragments, judge them, edit, tag, relate, compare with similar ones and
give feedback on the model output (thumbs, stars, like / dislike / regenerate / skip).

Actions run in widget callbacks (one transaction each) so the list drawn afterwards already shows
their effect; their outcome is shown once at the top of the page. Per-fragment details (source
context, history, tags, relationships, similar fragments, feedback) are read only while that
fragment's "Details" toggle is on, so a rerun costs one query per page of results.
"""

from collections.abc import Callable
from typing import Any

import streamlit as st

from mmos_core.analysis.calibration import format_estimate
from mmos_core.core.domain import CATEGORIES, FragmentType, RelationshipType
from mmos_core.embeddings.embedder import EmbedderUnavailable
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services import feedback as fb
from mmos_core.services import review as rv
from mmos_core.services.auth import CurrentUser, Permission, can_change_verdict
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.calibration import reviewer_agreement, reviewer_progress
from mmos_core.services.checks import checks_for
from mmos_core.services.review_queue import QueueScope
from mmos_core.ui import (
    browser_session_id,
    data_version,
    keep_in_query,
    model_names,
    require,
    seed_from_query,
    sidebar_status,
    transaction,
)
from mmos_core.ui_review import (
    FLASH,
    REASON_LABELS,
    checks_line,
    diff_markdown,
    render_bulk,
    render_drilldown,
    render_queue,
    status_line,
)

user = require(Permission.review_fragments)
sidebar_status()
st.title("Review")

_FLASH = FLASH
_PAGE = "review_page"
#: what a copied link keeps (docs/ARCHITECTURE.md, "Rules"): session key → (URL parameter, parser)
_LINKED = {
    "review_view": ("view", str),
    "review_source": ("source", int),
    "review_batch": ("batch", int),
    "review_model": ("model", str),
    "review_category": ("category", str),
    "review_type": ("type", str),
    "review_status": ("status", str),
    "review_query": ("q", str),
    "review_mode": ("search", str),
    _PAGE: ("page", int),
}


def _run(action: Callable[[Any], Any], success: str | None = None) -> Any:
    """Run a service call in one transaction; remember its outcome for the next draw of the page."""
    try:
        with transaction() as session:
            result = action(session)
    except (rv.ReviewError, fb.FeedbackError, UnknownModelError, EmbedderUnavailable, ValueError) as exc:
        st.session_state[_FLASH] = ("error", str(exc))
        return None
    if success:
        st.session_state[_FLASH] = ("success", success)
    return result


# --- actions (widget callbacks) ----------------------------------------------------------------


def _verdict(kind: str, fragment_id: int, code: str, who: CurrentUser) -> None:
    done = {"verify": "verified", "reject": "rejected", "reset": "back to pending"}[kind]
    reason = st.session_state.get(f"reject_reason_{fragment_id}")
    if kind == "reject":
        _run(lambda s: rv.reject(session=s, user=who, fragment_id=fragment_id, reason=reason),
             f"{code} {done}" + (f" ({REASON_LABELS[reason]})." if reason else "."))
        return
    fn = {"verify": rv.verify, "reset": rv.reset_verdict}[kind]
    _run(lambda s: fn(session=s, user=who, fragment_id=fragment_id), f"{code} {done}.")


def _second_opinion(verdict: str, fragment_id: int, code: str, who: CurrentUser) -> None:
    reason = st.session_state.get(f"reject_reason_{fragment_id}") if verdict == "rejected" else None
    _run(lambda s: rv.second_opinion(session=s, user=who, fragment_id=fragment_id, verdict=verdict, reason=reason),
         f"Your own verdict on {code} recorded ({verdict}); it counts for reviewer agreement only.")


def _save_edit(fragment_id: int, code: str, who: CurrentUser) -> None:
    edits = _run(
        lambda s: rv.edit_fragment(
            session=s,
            user=who,
            fragment_id=fragment_id,
            content=st.session_state[f"edit_content_{fragment_id}"],
            category=st.session_state[f"edit_category_{fragment_id}"],
            insight=st.session_state[f"edit_insight_{fragment_id}"],
        )
    )
    if edits is not None:
        st.session_state[_FLASH] = ("success", f"{code}: {len(edits)} field(s) changed." if edits else f"{code}: nothing changed.")


def _add_tag(fragment_id: int, who: CurrentUser) -> None:
    key = f"tag_new_{fragment_id}"
    if _run(lambda s: rv.add_tag(session=s, user=who, fragment_id=fragment_id, name=st.session_state.get(key) or "")) is not None:
        st.session_state[key] = ""


def _remove_tag(fragment_id: int, who: CurrentUser) -> None:
    name = st.session_state.get(f"tag_remove_{fragment_id}")
    if name:
        _run(lambda s: rv.remove_tag(session=s, user=who, fragment_id=fragment_id, name=name))


def _relate(fragment_id: int, who: CurrentUser) -> None:
    def action(s: Any) -> Any:
        other = rv.fragment_id_by_code(session=s, code=st.session_state.get(f"rel_code_{fragment_id}") or "")
        return rv.relate(
            session=s,
            user=who,
            fragment_id=fragment_id,
            related_fragment_id=other,
            relationship_type=st.session_state[f"rel_type_{fragment_id}"],
            note=st.session_state.get(f"rel_note_{fragment_id}"),
        )

    _run(action, "Relationship recorded.")


def _feedback(kind: str, fragment_id: int, who: CurrentUser) -> None:
    mapped = fb.from_widget(kind, st.session_state.get(f"{kind}_{fragment_id}"))
    if mapped is None:
        return
    kind, rating = mapped[0].value, mapped[1]
    reason = st.session_state.get(f"reason_{fragment_id}")
    _run(
        lambda s: fb.record_feedback(
            session=s, user=who, feedback_type=kind, fragment_id=fragment_id, quality_rating=rating,
            reason=reason, session_id=browser_session_id(),
        ),
        f"Feedback recorded: {kind}{f' ({rating}★)' if rating else ''}.",
    )


def _regenerate(fragment_id: int, who: CurrentUser) -> None:
    job = _run(
        lambda s: fb.regenerate_fragment(
            session=s, user=who, fragment_id=fragment_id, model_name=st.session_state.get(f"regen_model_{fragment_id}"),
            reason=st.session_state.get(f"reason_{fragment_id}"), session_id=browser_session_id(),
        )
    )
    if job is None:
        return
    try:
        enqueue_batches([job])
    except Exception as exc:  # the batch is committed; the queue reconciler picks it up later
        st.session_state[_FLASH] = ("warning", f"Regeneration saved but not queued yet ({exc}).")
        return
    st.session_state[_FLASH] = ("success", "Regeneration queued: its output appears below the original when done.")


def _reset_page() -> None:
    st.session_state[_PAGE] = 1


# --- filters -----------------------------------------------------------------------------------

seed_from_query(_LINKED)
if st.session_state.get("review_view") not in ("List", "Queue"):
    st.session_state["review_view"] = "List"
if st.session_state.get("review_mode") not in (None, "full text", "semantic"):
    st.session_state["review_mode"] = "full text"
view = st.radio("View", ["List", "Queue"], key="review_view", horizontal=True,
                help="Queue: one fragment at a time, claimed for you, with keyboard shortcuts.")

flash = st.session_state.pop(_FLASH, None)
if flash:
    getattr(st, flash[0])(flash[1])

with transaction() as session:
    choices = rv.filter_choices(session=session, source_id=st.session_state.get("review_source"))
# a linked value the choices do not offer (deleted source, stale link) falls back to "all"
for _key, _options in (("review_source", dict(choices.sources)), ("review_model", choices.models),
                       ("review_category", CATEGORIES), ("review_type", [t.value for t in FragmentType]),
                       ("review_status", rv.STATUSES)):
    if st.session_state.get(_key) not in (None, *_options):
        st.session_state[_key] = None

with st.sidebar:
    st.subheader("Filters")
    source_labels = dict(choices.sources)
    source_id = st.selectbox(
        "Source", [None, *source_labels], format_func=lambda v: "All sources" if v is None else source_labels[v],
        key="review_source", on_change=_reset_page,
    )
    batch_labels = dict(choices.batches)
    if st.session_state.get("review_batch") not in (None, *batch_labels):
        st.session_state["review_batch"] = None
    batch_id = st.selectbox(
        "Batch", [None, *batch_labels], format_func=lambda v: "All batches" if v is None else batch_labels[v],
        key="review_batch", on_change=_reset_page,
    )
    model = st.selectbox(
        "Model", [None, *choices.models], format_func=lambda v: "All models" if v is None else v,
        key="review_model", on_change=_reset_page,
    )
    category = st.selectbox(
        "Category", [None, *CATEGORIES], format_func=lambda v: "All categories" if v is None else v,
        key="review_category", on_change=_reset_page,
    )
    fragment_type = st.selectbox(
        "Type", [None, *(t.value for t in FragmentType)], format_func=lambda v: "All types" if v is None else v,
        key="review_type", on_change=_reset_page,
    )
    status = st.selectbox(
        "Status", [None, *rv.STATUSES], format_func=lambda v: "Any status" if v is None else v,
        key="review_status", on_change=_reset_page,
    )
    relevance = st.slider("Relevance", 1, 10, (1, 10), key="review_relevance", on_change=_reset_page)
    page_size = st.selectbox("Fragments per page", rv.PAGE_SIZES, index=0, key="review_page_size", on_change=_reset_page)

if view == "Queue":
    keep_in_query({"view": "Queue", "source": source_id, "batch": batch_id, "model": None, "category": None,
                   "type": None, "status": None, "q": None, "search": None, "page": None})
    linked = st.query_params.get("fragment")
    render_queue(user, QueueScope(source_id=source_id, batch_id=batch_id),
                 linked_fragment=int(linked) if linked and linked.isdigit() else None)
    st.stop()

search_col, mode_col = st.columns([4, 1])
query = search_col.text_input(
    "Search", key="review_query", placeholder='words, "a phrase", -exclude', on_change=_reset_page
)
mode = mode_col.radio("Search by", ["full text", "semantic"], key="review_mode", horizontal=True, on_change=_reset_page)

flt = rv.FragmentFilter(
    source_id=source_id,
    batch_id=batch_id,
    model_name=model,
    category=category,
    fragment_type=fragment_type,
    status=status,
    relevance_min=relevance[0] if relevance[0] > 1 else None,
    relevance_max=relevance[1] if relevance[1] < 10 else None,
    query=query if mode == "full text" else None,
    page=int(st.session_state.get(_PAGE, 1)),
    page_size=int(page_size),
)

similarity: dict[int, float] = {}
if mode == "semantic" and query.strip():
    try:
        with transaction() as session:
            found = rv.semantic_search(session=session, query=query, limit=flt.page_size, flt=flt)
    except EmbedderUnavailable as exc:
        st.error(f"Semantic search needs the embedding model: {exc}")
        st.stop()
    rows = [f.row for f in found]
    similarity = {f.row.id: f.similarity for f in found}
    st.caption(f"The {len(rows)} fragments closest in meaning to your search (filters apply).")
else:
    with transaction() as session:
        result = rv.search_fragments(session=session, flt=flt)
        if result.rows == [] and result.total and flt.page > result.pages:
            flt.page = result.pages
            result = rv.search_fragments(session=session, flt=flt)
    rows = result.rows
    st.session_state[_PAGE] = result.page
    keep_in_query({"view": None, "source": source_id, "batch": batch_id, "model": model, "category": category,
                   "type": fragment_type, "status": status, "q": query.strip() or None,
                   "search": mode if mode != "full text" else None, "page": result.page if result.page > 1 else None,
                   "fragment": None})
    count_col, nav_col = st.columns([3, 1])
    first = (result.page - 1) * result.page_size + 1
    count_col.markdown(
        f"**{result.total:,}** fragments match" + (f" · showing {first:,}–{first + len(rows) - 1:,}" if rows else "")
    )
    nav_col.number_input(f"Page (of {result.pages})", min_value=1, max_value=result.pages, step=1, key=_PAGE)

if not rows:
    st.info("No fragments match. Widen the filters, or extract a source on the Sources page.")
    st.stop()



@st.cache_data(max_entries=16, show_spinner=False)
def _reviewers(version: tuple) -> tuple[list, list]:
    """Reviewer progress and Cohen's kappa (a bootstrap per pair and dimension), recomputed only when the data
    version (`ui.data_version`, which moves with every verdict) changes, not on every rerun of the page."""
    with transaction() as session:
        return reviewer_progress(session=session), reviewer_agreement(session=session)


with transaction() as session:
    checks = checks_for(session=session, fragment_ids=[r.id for r in rows])
progress, kappas = _reviewers(data_version())

with st.expander("Reviewers: progress and agreement", icon=":material/groups:"):
    if progress:
        st.dataframe([{"reviewer": p.reviewer, "verdicts": p.verdicts, "verified": p.verified, "rejected": p.rejected}
                      for p in progress], hide_index=True)
    else:
        st.caption("No verdicts yet.")
    if kappas:
        st.dataframe([{"reviewers": f"{k.reviewer_a} · {k.reviewer_b}", "dimension": k.dimension, "fragments": k.n,
                       "Cohen's kappa (95%)": format_estimate(k.kappa)} for k in kappas], hide_index=True)
    else:
        st.caption("Agreement needs two reviewers on the same fragments: on a fragment someone else judged, "
                   "record your own verdict with “Agree / disagree”.")


# --- one fragment ------------------------------------------------------------------------------


def _details(row: rv.FragmentRow) -> None:
    fid = row.id
    context_tab, drill_tab, edit_tab, tags_tab, similar_tab, feedback_tab = st.tabs(
        ["Source context", "Chunk & calls", "Edit", "Tags & relations", "More like this", "Feedback"]
    )
    with drill_tab:
        render_drilldown(fid)
    with transaction() as session:
        try:
            ctx = rv.source_context(session=session, fragment_id=fid)
        except rv.ReviewError as exc:
            ctx = None
            context_tab.caption(str(exc))
        history = rv.edit_history(session=session, fragment_id=fid)
        tags = rv.tags_of(session=session, fragment_id=fid)
        relations = rv.relationships_of(session=session, fragment_id=fid)
        similar = rv.more_like_this(session=session, fragment_id=fid, limit=5)
        counts = fb.feedback_counts(session=session, fragment_id=fid)
        regenerated = [
            (batch.batch_code, batch.model_name, batch.batch_status, [f.content for f in frags])
            for batch, frags in fb.regenerations(session=session, fragment_id=fid)
        ]

    if ctx is not None:
        context_tab.caption(ctx.location_label or "—")
        context_tab.markdown(
            f"…{rv.markdown_escape(ctx.before)}**{rv.markdown_escape(ctx.match)}**{rv.markdown_escape(ctx.after)}…"
        )

    with edit_tab:
        with st.form(key=f"edit_{fid}"):
            st.text_area("Content", value=row.content, key=f"edit_content_{fid}")
            st.selectbox("Category", CATEGORIES, index=CATEGORIES.index(row.category), key=f"edit_category_{fid}")
            st.text_area("Insight", value=row.insight or "", key=f"edit_insight_{fid}")
            st.form_submit_button("Save changes", on_click=_save_edit, args=(fid, row.fragment_code, user))
        if history:
            st.caption("Edit history")
            for h in history:
                st.markdown(
                    f"{h.edited_at:%Y-%m-%d %H:%M} · {h.username or '?'} changed **{h.field}**: "
                    f"~~{rv.markdown_escape(h.old_value or '—')}~~ → {rv.markdown_escape(h.new_value or '—')}"
                )
        else:
            st.caption("Never edited.")

    with tags_tab:
        st.markdown("Tags: " + (", ".join(f"`{t}`" for t in tags) if tags else "none"))
        add_col, remove_col = st.columns(2)
        add_col.text_input("New tag", key=f"tag_new_{fid}")
        add_col.button("Add tag", key=f"tag_add_{fid}", on_click=_add_tag, args=(fid, user))
        if tags:
            remove_col.selectbox("Tag to remove", tags, key=f"tag_remove_{fid}")
            remove_col.button("Remove tag", key=f"tag_remove_btn_{fid}", on_click=_remove_tag, args=(fid, user))
        st.divider()
        for r in relations:
            arrow = f"{row.fragment_code} **{r.relationship_type}** `{r.other_code}`" if r.direction == "outgoing" else (
                f"`{r.other_code}` **{r.relationship_type}** {row.fragment_code}"
            )
            st.markdown(f"{arrow} — {rv.markdown_escape(r.other_content[:120])}" + (f" ({rv.markdown_escape(r.note)})" if r.note else ""))
        if not relations:
            st.caption("No relationships yet.")
        with st.form(key=f"relate_{fid}"):
            code_col, type_col = st.columns(2)
            code_col.text_input("Related fragment code", key=f"rel_code_{fid}", placeholder="e.g. COG-000012")
            type_col.selectbox("Relationship", [t.value for t in RelationshipType], key=f"rel_type_{fid}")
            st.text_input("Note (optional)", key=f"rel_note_{fid}")
            st.form_submit_button("Add relationship", on_click=_relate, args=(fid, user))

    with similar_tab:
        if not similar:
            st.caption("No embedding for this fragment, or no other fragments.")
        for s in similar:
            st.markdown(
                f"**{s.similarity:.2f}** · `{s.row.fragment_code}` {s.row.category} · {s.row.model_name} — {s.row.highlighted}"
            )

    with feedback_tab:
        thumbs_col, stars_col = st.columns(2)
        with thumbs_col:
            st.feedback("thumbs", key=f"thumbs_{fid}", on_change=_feedback, args=("thumbs", fid, user))
        with stars_col:
            st.feedback("stars", key=f"stars_{fid}", on_change=_feedback, args=("stars", fid, user))
        st.text_input("Reason (optional)", key=f"reason_{fid}")
        like, dislike, skip, regen = st.columns(4)
        like.button("Like", key=f"like_{fid}", on_click=_feedback, args=("like", fid, user), icon=":material/thumb_up:")
        dislike.button("Dislike", key=f"dislike_{fid}", on_click=_feedback, args=("dislike", fid, user), icon=":material/thumb_down:")
        skip.button("Skip", key=f"skip_{fid}", on_click=_feedback, args=("skip", fid, user), icon=":material/skip_next:")
        models = model_names()
        if row.chunk_id is None:
            regen.caption("Imported fragment: nothing to regenerate.")
        elif models:
            st.selectbox(
                "Model for regenerate", models, index=models.index(row.model_name) if row.model_name in models else 0,
                key=f"regen_model_{fid}",
            )
            regen.button("Regenerate", key=f"regen_{fid}", on_click=_regenerate, args=(fid, user), icon=":material/refresh:")
        else:
            regen.caption("No model is available to regenerate.")
        stars = f" · {counts.mean_stars:.1f}★ from {counts.ratings}" if counts.mean_stars is not None else ""
        st.caption(
            f"{counts.likes} likes · {counts.dislikes} dislikes · {counts.regenerates} regenerations · {counts.skips} skips{stars}"
        )
        if regenerated:
            st.markdown("**Original and regenerated outputs of this chunk**")
            cols = st.columns(1 + len(regenerated))
            cols[0].caption(f"original · {row.model_name}")
            cols[0].markdown(f"> {row.highlighted}")
            for col, (code, model_name, state, contents) in zip(cols[1:], regenerated):
                col.caption(f"{code} · {model_name} · {state}")
                for content in contents:
                    col.markdown(f"> {rv.markdown_escape(content)}")
                if state == "completed" and not contents:
                    col.caption("no fragments")


render_bulk(user, rows)

for row in rows:
    fid = row.id
    # The key gives the card a stable CSS class (st-key-fragment_<id>) that browser tests find it by.
    with st.container(border=True, key=f"fragment_{fid}"):
        sim = f" · similarity {similarity[fid]:.2f}" if fid in similarity else ""
        st.markdown(
            f"`{row.fragment_code}` **{row.category}** · {row.fragment_type} · relevance {row.relevance} · "
            f"confidence {row.confidence:.2f} · {row.model_name} · {row.source_code}{sim}"
        )
        st.markdown(status_line(row))
        st.markdown(f"> {row.highlighted}")
        if row.insight:
            st.caption(f"Insight: {rv.markdown_escape(row.insight)}")
        st.caption(f"Location: {rv.markdown_escape(row.location_in_source or '—')}")
        c = checks.get(fid)
        st.caption(checks_line(c))
        if c is not None and c.verbatim == "near" and c.diff:
            st.caption("Misquote, against the source: " + diff_markdown(c.diff))
        allowed = can_change_verdict(user, row.verdict_by)
        v_col, r_col, p_col, d_col = st.columns([1, 1, 1, 3])
        v_col.button(
            "Verify", key=f"verify_{fid}", disabled=not allowed or row.status == "verified",
            on_click=_verdict, args=("verify", fid, row.fragment_code, user), icon=":material/check:",
        )
        r_col.button(
            "Reject", key=f"reject_{fid}", disabled=not allowed or row.status == "rejected",
            on_click=_verdict, args=("reject", fid, row.fragment_code, user), icon=":material/close:",
        )
        p_col.button(
            "Reset", key=f"reset_{fid}", disabled=not allowed or row.status == "pending",
            on_click=_verdict, args=("reset", fid, row.fragment_code, user),
        )
        d_col.selectbox(
            "Reason for a rejection", [None, *REASON_LABELS], key=f"reject_reason_{fid}",
            format_func=lambda r: "no reason given" if r is None else REASON_LABELS[r], label_visibility="collapsed",
        )
        if not allowed:
            d_col.caption(f"Judged by {row.verdict_by}: only they or an admin can change this verdict.")
            a_col, b_col, _ = st.columns([1, 1, 3])
            a_col.button("Agree", key=f"second_verify_{fid}", on_click=_second_opinion,
                         args=("verified", fid, row.fragment_code, user), help="Your own verdict: verified (for reviewer agreement).")
            b_col.button("Disagree", key=f"second_reject_{fid}", on_click=_second_opinion,
                         args=("rejected", fid, row.fragment_code, user), help="Your own verdict: rejected, with the reason above.")
        if st.toggle("Details", key=f"details_{fid}"):
            _details(row)
