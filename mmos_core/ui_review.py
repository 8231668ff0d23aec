"""Streamlit glue for the Review page (`pages/review.py`): the queue mode (one fragment at a time,
claimed for the reviewer, keyboard shortcuts), the drill-down to the chunk, extraction call and judge
calls behind a fragment, bulk verdicts, and the one-line rendering of a fragment's checks.

Kept out of the page so the page stays one readable file; it renders and calls services, no SQL.
Keyboard shortcuts are Streamlit's own `st.button(shortcut=...)` (Streamlit ≥ 1.50): no extra
component, and the keys work in every browser Streamlit supports. "R" and "C" are reserved by
Streamlit, so reject is "X".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from mmos_core.services import review as rv
from mmos_core.services import review_queue as rq
from mmos_core.services.auth import CurrentUser, can_change_verdict
from mmos_core.services.checks import FragmentChecks, checks_for
from mmos_core.services.drilldown import fragment_drilldown, turn_drilldown
from mmos_core.ui import keep_in_query, transaction

FLASH = "review_flash"  # the page shows this (kind, text) once at its top
#: why a reviewer rejects: each reason tests one automatic check (docs/quality.md, "Calibration")
REASON_LABELS = {
    "misquote": "misquote",
    "wrong_speaker": "wrong speaker",
    "unsupported_insight": "unsupported insight",
    "wrong_category": "wrong category",
    "trivial": "trivial",
}
#: queue-mode keys (Streamlit's `shortcut` syntax; "R" and "C" are reserved by Streamlit)
SHORTCUTS = {"verify": "V", "reject": "X", "skip": "S", "next": "N", "previous": "P", "details": "D"}

_HISTORY, _POS, _SKIPPED, _SCOPE, _DETAILS = "rq_history", "rq_pos", "rq_skipped", "rq_scope", "rq_details"


def run_action(action: Callable[[Any], Any], success: str | None = None) -> Any:
    """Run a service call in one transaction; remember its outcome (or its refusal) for the next draw."""
    try:
        with transaction() as session:
            result = action(session)
    except ValueError as exc:  # ReviewError, FeedbackError and bad values are ValueErrors with safe messages
        st.session_state[FLASH] = ("error", str(exc))
        return None
    if success:
        st.session_state[FLASH] = ("success", success)
    return result


# --- rendering helpers shared by list and queue -------------------------------------------------


def checks_line(c: FragmentChecks | None) -> str:
    """One line of the fragment's automatic checks (docs/quality.md, "Per-fragment checks")."""
    if c is None:
        return "checks: not computed yet"
    parts = []
    if c.verbatim != "n/a":
        parts.append(f"verbatim **{c.verbatim.replace('_', ' ')}**"
                     + (f" ({c.verbatim_similarity:.2f})" if c.verbatim == "near" and c.verbatim_similarity else ""))
        who = c.attribution
        parts.append("said by **the person**" if who == "person" else f"said by **{who.split(':', 1)[-1]}**"
                     if who.startswith("other:") else f"attribution **{who}**")
    if c.judge_support is not None:
        parts.append(f"support **{c.judge_support}** (judge {c.judge_model})")
    if c.support_baseline is not None:
        parts.append(f"baseline support {c.support_baseline:.2f}")
    if c.category_agrees is not None:
        parts.append("category agrees" if c.category_agrees else f"judge's category: **{c.judge_category}**")
    return "checks: " + " · ".join(parts) if parts else "checks: none apply"


def diff_markdown(diff: list) -> str:
    """The model's quote against the source span, word by word: ~~source~~ → **model**."""
    out = []
    for op, quote, source in diff:
        if op == "replace":
            out.append(f"~~{rv.markdown_escape(source)}~~ → **{rv.markdown_escape(quote)}**")
        elif op == "insert":
            out.append(f"added **{rv.markdown_escape(quote)}**")
        else:
            out.append(f"left out ~~{rv.markdown_escape(source)}~~")
    return "; ".join(out)


def status_line(row: rv.FragmentRow) -> str:
    """'status: **verified** by ana on 2025-01-01 10:00 UTC' (or pending)."""
    if row.status == "pending":
        return "status: **pending**"
    when = f" on {row.verdict_at:%Y-%m-%d %H:%M} UTC" if row.verdict_at else ""
    return f"status: **{row.status}** by {row.verdict_by}{when}"


def render_drilldown(fragment_id: int) -> None:
    """The chunk (the fragment's span highlighted), the extraction call(s) on it with the prompt as sent,
    and the judge calls on the fragment (`services.drilldown`; credentials already masked there)."""
    with transaction() as session:
        try:
            d = fragment_drilldown(session=session, fragment_id=fragment_id)
        except rv.ReviewError as exc:
            st.caption(str(exc))
            return
    st.markdown("**Chunk**")
    if d.chunk is None:
        st.caption("Imported fragment: no chunk and no extraction call behind it.")
    else:
        c = d.chunk
        st.caption(f"chunk #{c.chunk_index} · {c.location_label or '—'} · characters {c.char_start:,}–{c.char_end:,}"
                   + ("" if c.span else " · the fragment was not located in this chunk"))
        before, match, after = c.parts
        st.markdown(rv.markdown_escape(before) + (f":orange-background[{rv.markdown_escape(match)}]" if match else "")
                    + rv.markdown_escape(after))
    x = d.extraction
    if x is not None:
        st.markdown("**Extraction call**")
        job = (f" · job {x.job_status}, attempt {x.job_attempts} of {x.job_max_attempts}" if x.job_status else "")
        st.caption(f"{x.batch_code} · {x.model_provider}/{x.model_name} · prompt {x.prompt_version} · "
                   f"temperature {x.temperature:g}{job}")
        if x.job_last_error:
            st.caption(f"last job error: {x.job_last_error}")
        st.caption("Prompt (rebuilt from the source, the chunk and the batch's prompt version):" if x.messages_rebuilt
                   else "Prompt as sent:")
        for m in x.messages:
            st.text(f"[{m['role']}]")
            st.code(m["content"], language=None, wrap_lines=True)
        if not x.calls:
            st.caption("No call on this chunk is recorded.")
        for call in x.calls:
            st.markdown(f"call {call.id} · attempt {call.attempt} · **{call.status}** · {call.input_tokens:,} in / "
                        f"{call.output_tokens:,} out tokens · ${call.cost_usd:.6f} · {call.duration_ms:,} ms · "
                        f"{call.created_at:%Y-%m-%d %H:%M:%S} UTC")
            if call.error:
                st.caption(f"error: {call.error}")
            if call.raw_response:
                st.text("raw answer")
                st.code(call.raw_response, language=None, wrap_lines=True)
            if call.parsed_json:
                st.text("parsed JSON")
                st.code(call.parsed_json, language="json", wrap_lines=True)
    st.markdown("**Judge calls**")
    if not d.judges:
        st.caption("Not judged yet.")
    for j in d.judges:
        lat = f" · {j.latency_ms:,} ms" if j.latency_ms is not None else ""
        st.markdown(f"{j.judge_model} · rubric {j.rubric_version} · **{j.status}** · support {j.support or '—'}"
                    f" · category {j.judge_category or '—'} · {j.prompt_tokens:,} in / {j.completion_tokens:,} out tokens"
                    f" · ${j.cost_usd:.6f}{lat}")
        if j.reason:
            st.caption(f"reason: {j.reason}")
        if j.error_message:
            st.caption(f"error: {j.error_message}")
        if j.raw_answer:
            st.code(j.raw_answer, language=None, wrap_lines=True)


def render_turn_drilldown(message_id: int) -> None:
    """A debate turn's LLM call (model, tokens, cost, latency, status, failed attempts) and its prompt,
    rebuilt from the topic and the earlier messages (`services.drilldown.turn_drilldown`; errors masked)."""
    with transaction() as session:
        try:
            d = turn_drilldown(session=session, message_id=message_id)
        except LookupError as exc:
            st.caption(str(exc))
            return
    where = f"round {d.round_number}, turn {d.turn_index}" if d.round_number is not None else "imported"
    st.caption(f"message #{d.sequence} · {d.agent or '?'} · {d.model or '—'} · {where}")
    if not d.is_debate or d.round_number is None:
        st.caption("Imported message: no LLM call of this workbench behind it.")
        return
    for c in [*d.failed, *([d.call] if d.call else [])]:
        lat = f" · {c.latency_ms:,} ms" if c.latency_ms is not None else ""
        st.markdown(f"call {c.id} · {c.provider or 'local'}/{c.model_name} · **{c.status}** · {c.input_tokens:,} in / "
                    f"{c.output_tokens:,} out tokens · ${c.cost_usd:.6f}{lat} · {c.attempts} attempt(s) · "
                    f"{c.created_at:%Y-%m-%d %H:%M:%S} UTC")
        if c.error:
            st.caption(f"error: {c.error}")
    if d.call is None:
        st.caption("No logged call matches this turn (ai_logs, category conversation_turn).")
    st.caption("Prompt (rebuilt from the topic and the earlier messages):")
    for m in d.messages:
        st.text(f"[{m['role']}]")
        st.code(m["content"], language=None, wrap_lines=True)


# --- bulk verdicts (list mode) ------------------------------------------------------------------


def _bulk(user: CurrentUser) -> None:
    ids = list(st.session_state.get("bulk_ids") or [])
    verdict = st.session_state.get("bulk_verdict", "verified")
    reason = st.session_state.get("bulk_reason") if verdict == "rejected" else None
    result = run_action(lambda s: rq.bulk_verdict(session=s, user=user, fragment_ids=ids, verdict=verdict, reason=reason))
    if result is None:
        return
    text = f"{len(result.done)} fragment(s) {verdict}."
    if result.refused:
        text += " Refused: " + " ".join(result.refused)
    st.session_state[FLASH] = ("warning" if result.refused else "success", text)
    st.session_state["bulk_ids"] = []
    st.session_state["bulk_confirm"] = False


def render_bulk(user: CurrentUser, rows: list[rv.FragmentRow]) -> None:
    """Pick fragments of the shown page, a verdict (and reason), confirm, apply (`review_queue.bulk_verdict`)."""
    codes = {r.id: r.fragment_code for r in rows}
    if any(i not in codes for i in st.session_state.get("bulk_ids") or []):
        st.session_state["bulk_ids"] = [i for i in st.session_state["bulk_ids"] if i in codes]
    with st.expander("Bulk verdict on this page", icon=":material/done_all:"):
        picked = st.multiselect("Fragments", list(codes), format_func=codes.get, key="bulk_ids")
        verdict = st.radio("Verdict", ["verified", "rejected"], key="bulk_verdict", horizontal=True)
        if verdict == "rejected":
            st.selectbox("Reason", [None, *REASON_LABELS], key="bulk_reason",
                         format_func=lambda r: "no reason given" if r is None else REASON_LABELS[r])
        confirm = st.checkbox(f"Yes, mark {len(picked)} fragment(s) {verdict}", key="bulk_confirm")
        st.button("Apply to the selected fragments", key="bulk_apply", disabled=not (picked and confirm),
                  on_click=_bulk, args=(user,))


# --- queue mode ---------------------------------------------------------------------------------


def _history() -> list[int]:
    return st.session_state.setdefault(_HISTORY, [])


def _advance(step: int) -> None:
    st.session_state[_POS] = max(0, int(st.session_state.get(_POS, 0)) + step)
    st.session_state[_DETAILS] = False


def _judge(verdict: str, fid: int, code: str, user: CurrentUser, agreement: bool) -> None:
    reason = st.session_state.get("rq_reason") if verdict == "rejected" else None
    how = " (your own verdict, for agreement)" if agreement else ""
    label = f" ({REASON_LABELS[reason]})" if reason else ""
    done = run_action(
        lambda s: rq.judge(session=s, user=user, fragment_id=fid, verdict=verdict, reason=reason, agreement=agreement) or True,
        f"{code} {verdict}{label}{how}.",
    )
    if done:
        st.session_state["rq_reason"] = None
        _advance(1)


def _skip(fid: int, code: str, user: CurrentUser) -> None:
    st.session_state.setdefault(_SKIPPED, []).append(fid)
    try:
        from mmos_core.core.redis import get_redis

        rq.release(get_redis(), user, fid)
    except Exception:  # the claim expires by itself (CLAIM_TTL_S)
        pass
    st.session_state[FLASH] = ("info", f"{code} skipped: it is not served again in this session.")
    _advance(1)


def _toggle_details() -> None:
    st.session_state[_DETAILS] = not st.session_state.get(_DETAILS, False)


def render_queue(user: CurrentUser, scope: rq.QueueScope, *, linked_fragment: int | None = None) -> None:
    """One fragment at a time: claim the next waiting one (or, in agreement mode, one others judged),
    show it with its checks and source context, and verify / reject / skip / next / previous / details.

    `linked_fragment`: a fragment id from the URL (`?fragment=`) to open first in this browser session.
    """
    agreement = st.toggle("Agreement mode", key="rq_agreement",
                          help="Serve fragments other reviewers already judged; your verdict is recorded as your own "
                               "(for Cohen's kappa) and leaves theirs in place.")
    key = (scope.source_id, scope.batch_id, agreement)
    if st.session_state.get(_SCOPE) != key:
        fresh = st.session_state.get(_SCOPE) is None
        st.session_state[_SCOPE] = key
        st.session_state[_HISTORY] = [linked_fragment] if fresh and linked_fragment else []
        st.session_state[_POS] = 0
    hist = _history()
    pos = min(int(st.session_state.get(_POS, 0)), len(hist))
    st.session_state[_POS] = pos
    with transaction() as session:
        if pos == len(hist):
            exclude = set(hist) | set(st.session_state.get(_SKIPPED, []))
            item = rq.claim_next(session=session, user=user, scope=scope, agreement=agreement, exclude=exclude)
            row, prog, waiting = item.fragment, item.progress, item.waiting
            if row is not None:
                hist.append(row.id)
        else:
            try:
                row = rv.get_fragment_row(session=session, fragment_id=hist[pos])
            except rv.ReviewError:
                row = None
            prog = rq.progress(session=session, user=user, scope=scope, batch_id=row.batch_id if row else None)
            waiting = None
        checks = checks_for(session=session, fragment_ids=[row.id]) if row is not None else {}
        try:
            ctx = rv.source_context(session=session, fragment_id=row.id, chars=300) if row is not None else None
        except rv.ReviewError:
            ctx = None

    mine = f"You: **{prog.mine:,} of {prog.scope_total:,}** judged in this scope"
    more = f" · **{waiting:,}** waiting" if waiting is not None else ""
    st.markdown(mine + more)
    st.progress(prog.mine / prog.scope_total if prog.scope_total else 0.0)
    if prog.batch_code:
        st.caption(f"Batch {prog.batch_code}: {prog.batch_judged:,} of {prog.batch_total:,} judged (by anyone)")
    if row is None:
        keep_in_query({"fragment": None})
        st.info("Nothing waits for you here" + (" that others judged." if agreement else
                ": every fragment in scope is judged, skipped, or being reviewed by someone else."))
        st.button("Previous", key="rq_previous", on_click=_advance, args=(-1,), disabled=pos == 0,
                  shortcut=SHORTCUTS["previous"], icon=":material/arrow_back:")
        return
    keep_in_query({"fragment": row.id})
    fid = row.id
    own = agreement or not can_change_verdict(user, row.verdict_by)
    with st.container(border=True):
        st.markdown(f"`{row.fragment_code}` **{row.category}** · {row.fragment_type} · relevance {row.relevance} · "
                    f"confidence {row.confidence:.2f} · {row.model_name} · {row.source_code} · {row.batch_code}")
        st.markdown(status_line(row))
        st.markdown(f"> {row.highlighted}")
        if row.insight:
            st.caption(f"Insight: {rv.markdown_escape(row.insight)}")
        c = checks.get(fid)
        st.caption(checks_line(c))
        if c is not None and c.verbatim == "near" and c.diff:
            st.caption("Misquote, against the source: " + diff_markdown(c.diff))
        if ctx is not None:
            st.caption(f"Source context · {ctx.location_label or '—'}")
            st.markdown(f"…{rv.markdown_escape(ctx.before)}**{rv.markdown_escape(ctx.match)}**{rv.markdown_escape(ctx.after)}…")
    if own and not agreement:
        st.caption(f"Judged by {row.verdict_by}: your verdict is recorded as your own, for agreement.")
    v, x, reason, s, p, n, d = st.columns([1, 1, 2, 1, 1, 1, 1])
    v.button("Verify", key="rq_verify", on_click=_judge, args=("verified", fid, row.fragment_code, user, own),
             shortcut=SHORTCUTS["verify"], icon=":material/check:", type="primary")
    x.button("Reject", key="rq_reject", on_click=_judge, args=("rejected", fid, row.fragment_code, user, own),
             shortcut=SHORTCUTS["reject"], icon=":material/close:")
    reason.selectbox("Reason for a rejection", [None, *REASON_LABELS], key="rq_reason", label_visibility="collapsed",
                     format_func=lambda r: "reject: no reason given" if r is None else f"reject: {REASON_LABELS[r]}")
    s.button("Skip", key="rq_skip", on_click=_skip, args=(fid, row.fragment_code, user), shortcut=SHORTCUTS["skip"],
             icon=":material/skip_next:")
    p.button("Previous", key="rq_previous", on_click=_advance, args=(-1,), disabled=pos == 0,
             shortcut=SHORTCUTS["previous"], icon=":material/arrow_back:")
    n.button("Next", key="rq_next", on_click=_advance, args=(1,), shortcut=SHORTCUTS["next"],
             icon=":material/arrow_forward:")
    d.button("Details", key="rq_details_btn", on_click=_toggle_details, shortcut=SHORTCUTS["details"],
             icon=":material/info:")
    st.caption("Keys: " + " · ".join(f"{k} **{v}**" for k, v in SHORTCUTS.items()))
    if st.session_state.get(_DETAILS):
        render_drilldown(fid)
