"""Conversation health (the conversations design): health over time, contradictions, loops, citations; live while running."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.core.domain import ConversationStatus, InterventionStatus
from mmos_core.embeddings.embedder import EmbedderUnavailable
from mmos_core.services import conversations as svc
from mmos_core.services.auth import Permission
from mmos_core.text.conversation_import import (
    ConversationImportError,
    parse_conversation_file,
    parse_pasted_conversation,
)
from mmos_core.ui import failed_enqueues, local_model_names, require, sidebar_status, transaction
from mmos_core.ui_review import render_turn_drilldown

user = require(Permission.view_monitoring)
sidebar_status()
st.title("Conversations")
st.caption(
    "Multi-agent conversations scored after every message: contradictions (between any two messages, candidates "
    "from the vector index), loops, citations and coherence, combined into a 0–100 health score "
    "(formulas: docs/conversations.md)."
)

settings = get_settings()
LIVE = ("queued", "analyzing", "running")
ALERTS_SHOWN = 20  # contradiction cards drawn by default (a noisy log can hold hundreds)
_SELECTED = "conversation_selected"

with transaction() as session:
    summaries = svc.list_conversations(session=session)

view_tab, import_tab, debate_tab, search_tab = st.tabs(["Conversation", "Import", "Start a debate", "Search"])


def _label(s: svc.ConversationSummary) -> str:
    health = f"{s.health:.0f}" if s.health is not None else "—"
    return f"#{s.id} · {s.title[:80]} · health {health} · {s.status}"


def _warn_if_not_queued(session, what: str) -> None:
    for failure in failed_enqueues(session):  # Redis down: the rows are committed, re-queue later
        st.warning(f"{what}, but the analysis could not be queued ({failure}). Use “Re-analyse” once Redis is up.")


# --- one conversation, live ---------------------------------------------------------------------


def _health_chart(series: list[dict], mistake_step: int | None) -> go.Figure:
    df = pd.DataFrame(series)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df["sequence"], y=df["health"], name="health", mode="lines+markers", line={"width": 3}))
    for col in ("coherence", "contradiction", "loop", "citation"):
        fig.add_trace(go.Scatter(x=df["sequence"], y=df[col], name=col, mode="lines", line={"dash": "dot"}, opacity=0.6))
    if mistake_step is not None:
        fig.add_vline(x=mistake_step, line_dash="dash", line_color="red", annotation_text="log's mistake step")
    fig.update_layout(title="Health over the conversation", xaxis_title="message #", yaxis_title="score (0–100)",
                      yaxis_range=[0, 102], height=380, margin={"t": 50, "b": 40})
    return fig


def _act(service, id_name: str, id_value: int, **extra) -> None:
    """Button callback: runs before the (fragment) rerun, so what is drawn next already shows the change."""
    with transaction() as session:
        service(session=session, user_id=user.id, **{id_name: id_value}, **extra)


def _contradiction_card(c: svc.ContradictionAlert) -> None:
    with st.container(border=True):
        state = "resolved" if c.resolved else ("acknowledged" if c.acknowledged else "new")
        st.markdown(
            f"**{c.severity}** contradiction · probability {c.confidence:.2f} · similarity "
            f"{(c.semantic_similarity or 0):.2f} · {'same agent' if c.same_agent else 'between agents'} · {state}"
        )
        left, right = st.columns(2)
        left.markdown(f"**#{c.sequence_1} · {c.agent_1 or '?'}**")
        left.info(c.statement_1)
        right.markdown(f"**#{c.sequence_2} · {c.agent_2 or '?'}**")
        right.info(c.statement_2)
        if c.explanation:
            st.caption(c.explanation)
        if c.resolution_suggestion:
            st.caption(f"Suggestion: {c.resolution_suggestion}")
        if not c.resolved:
            a, b, _ = st.columns([1, 1, 4])
            if not c.acknowledged:
                a.button("Acknowledge", key=f"ack_c_{c.id}", on_click=_act, args=(svc.acknowledge_contradiction, "contradiction_id", c.id))
            b.button("Resolve", key=f"res_c_{c.id}", on_click=_act, args=(svc.resolve_contradiction, "contradiction_id", c.id))


def _loop_card(lp: svc.LoopAlert) -> None:
    with st.container(border=True):
        sim = f" · similarity {lp.similarity:.2f}" if lp.similarity is not None else ""
        st.markdown(
            f"**Loop**: {lp.loop_size} message(s) repeated **{lp.repetition_count}×**, messages "
            f"#{lp.first_sequence}–#{lp.last_sequence}{sim} · {lp.intervention_status}"
        )
        if lp.intervention_message:
            st.markdown(f"Proposed intervention: _{lp.intervention_message}_")
        if lp.intervention_status in (InterventionStatus.pending.value, InterventionStatus.acknowledged.value):
            a, b, c, _ = st.columns([1, 1, 1, 3])
            if lp.intervention_status == InterventionStatus.pending.value:
                a.button("Acknowledge", key=f"ack_l_{lp.id}", on_click=_act, args=(svc.acknowledge_loop, "loop_id", lp.id))
            b.button("Resolve", key=f"res_l_{lp.id}", on_click=_act, args=(svc.resolve_loop, "loop_id", lp.id))
            c.button("Dismiss", key=f"dis_l_{lp.id}", help="Not a real loop", on_click=_act,
                     args=(svc.resolve_loop, "loop_id", lp.id), kwargs={"dismiss": True})


def render_conversation(conversation_id: int, was_live: bool) -> None:
    """Everything about one conversation, re-read from the database on each (timed) rerun."""
    with transaction() as session:
        conv = svc.get_conversation(session=session, conversation_id=conversation_id)
        status, error, title = conv.status, conv.error_message, conv.title
        labels = svc.failure_labels(conv)
        health, needs_help = conv.current_health_score, conv.requires_intervention
        series = svc.health_series(session=session, conversation_id=conversation_id)
        contradictions = svc.contradiction_alerts(session=session, conversation_id=conversation_id)
        loops = svc.loop_alerts(session=session, conversation_id=conversation_id)
        rows = svc.message_rows(session=session, conversation_id=conversation_id)
    if was_live and status not in LIVE:
        st.rerun()  # the run ended: redraw the page once, without the timer
    # alerts: a toast for each contradiction / loop that appeared since this browser last drew the page
    seen_key = f"conversation_alerts_seen_{conversation_id}"
    current = {f"c{x.id}" for x in contradictions} | {f"l{x.id}" for x in loops}
    seen = st.session_state.get(seen_key)
    if seen is not None:
        for x in contradictions:
            if f"c{x.id}" not in seen:
                st.toast(f"New {x.severity} contradiction: #{x.sequence_1} {x.agent_1} ↔ #{x.sequence_2} {x.agent_2}", icon=":material/warning:")
        for x in loops:
            if f"l{x.id}" not in seen:
                st.toast(f"New loop: {x.loop_size} message(s) × {x.repetition_count}", icon=":material/repeat:")
    st.session_state[seen_key] = current
    st.subheader(title)
    analysed = sum(1 for r in rows if r["analysed"])
    a, b, c, d, e = st.columns(5)
    a.metric("Status", status)
    b.metric("Messages analysed", f"{analysed}/{len(rows)}")
    c.metric("Health", f"{health:.1f}" if health is not None else "—")
    d.metric("Open contradictions", len(contradictions))
    e.metric("Active loops", len(loops))
    if error:
        st.error(error)
    if needs_help:
        st.warning("This conversation requires intervention: " + "; ".join(series[-1]["reasons"] if series else []))
    mistake_step = None
    if labels:
        mistake_step = labels.get("mistake_step")
        st.info(
            f"The log's own failure label: **{labels.get('mistake_agent')}** at step **{mistake_step}**"
            + (f" ({labels['mistake_type']})" if labels.get("mistake_type") else "")
            + f" — {labels.get('mistake_reason')}"
        )
    if series:
        st.plotly_chart(_health_chart(series, mistake_step), width="stretch", key=f"health_{conversation_id}")
    elif rows:
        st.caption("No health points yet: the analysis has not reached the first message.")

    st.markdown(f"#### Contradictions ({len(contradictions)} open)")
    if not contradictions:
        st.caption("None open.")
    shown = contradictions
    if len(contradictions) > ALERTS_SHOWN and not st.toggle(
        f"Show all {len(contradictions)} (newest first; {ALERTS_SHOWN} shown)", key=f"all_contradictions_{conversation_id}"
    ):
        shown = contradictions[:ALERTS_SHOWN]
    for ctr in shown:
        _contradiction_card(ctr)
    st.markdown(f"#### Loops ({len(loops)} active)")
    if not loops:
        st.caption("None active.")
    for lp in loops:
        _loop_card(lp)

    st.markdown("#### Messages")
    if rows:
        df = pd.DataFrame(rows).drop(columns=["id", "analysed"])
        if not labels:
            df = df.drop(columns=["log's mistake step"])
        st.dataframe(
            df, hide_index=True, width="stretch",
            column_config={
                "health": st.column_config.NumberColumn(format="%.0f"),
                "coherence": st.column_config.NumberColumn(format="%.0f"),
                "content": st.column_config.TextColumn(width="large"),
            },
        )
        turns = {r["#"]: r["id"] for r in rows if r["round"] is not None and r["role"] == "assistant"}
        if turns:
            with st.expander("LLM call of a debate turn"):
                seq = st.selectbox("Message #", list(turns), key=f"turn_call_{conversation_id}")
                render_turn_drilldown(turns[seq])
    else:
        st.caption("No messages yet.")


with view_tab:
    if not summaries:
        st.info("No conversations yet: import one or start a debate (tabs above).")
    else:
        ids = [s.id for s in summaries]
        by_id = {s.id: s for s in summaries}
        if st.session_state.get(_SELECTED) not in ids:
            st.session_state[_SELECTED] = ids[0]
        selected = st.selectbox("Conversation", ids, key=_SELECTED, format_func=lambda i: _label(by_id[i]))
        live = by_id[selected].status in LIVE
        cols = st.columns([1, 1, 4])
        if cols[0].button("Re-analyse", key="conversation_reanalyse", help="Run every detector again on every message, in order (idempotent)."):
            with transaction() as session:
                svc.set_status(session=session, conversation_id=selected, status=ConversationStatus.queued.value)
                svc.enqueue_analysis(selected, force=True, session=session)
            if failed_enqueues(session):
                st.error(f"Could not queue the analysis: {'; '.join(failed_enqueues(session))}")
            else:
                st.toast("Analysis queued.")
            st.rerun()
        if live:
            cols[1].caption(f"Live: refreshing every {settings.conversation_refresh_s:g} s")
        st.fragment(run_every=settings.conversation_refresh_s if live else None)(render_conversation)(selected, live)


# --- import -----------------------------------------------------------------------------------------

with import_tab:
    st.markdown(
        "JSON or JSONL in the OpenAI chat format (`[{\"role\", \"content\", \"name\"}]` or `{\"messages\": [...]}` per "
        "line), Who&When multi-agent failure logs (their failure labels are kept and shown next to the detections), "
        "or pasted `Agent: message` lines. One transaction: a bad file imports nothing."
    )
    with st.form("conversation_import"):
        upload = st.file_uploader("File (.json, .jsonl, .txt)", type=["json", "jsonl", "txt"])
        only = st.text_input("Only these conversations of the file (e.g. 1, 4-6; blank = all)", key="conversation_only")
        pasted = st.text_area("…or paste “Agent: message” lines", height=150, key="conversation_paste",
                              placeholder="Alice: The bridge is safe.\nBob: It is not; the 2020 inspection failed.")
        paste_title = st.text_input("Title for pasted text", value="Pasted conversation", key="conversation_paste_title")
        submitted = st.form_submit_button("Import and analyse", type="primary", key="conversation_import_submit")
    if submitted:
        limits = {"max_bytes": settings.conversation_max_import_bytes, "max_messages": settings.conversation_max_messages,
                  "max_message_chars": settings.conversation_max_message_chars}
        try:
            if upload is not None:
                parsed = parse_conversation_file(upload.name, upload.getvalue(), **limits)
            elif pasted.strip():
                parsed = [parse_pasted_conversation(pasted, title=paste_title, **limits)]
            else:
                parsed = []
                st.error("Choose a file or paste some text.")
            if parsed and only.strip():
                picked: list[int] = []
                for part in only.replace(" ", "").split(","):
                    lo, _, hi = part.partition("-")
                    picked.extend(range(int(lo), int(hi or lo) + 1))
                if any(not 1 <= n <= len(parsed) for n in picked):
                    raise ValueError(f"the file holds {len(parsed)} conversation(s)")
                parsed = [parsed[n - 1] for n in picked]
        except ConversationImportError as exc:
            parsed = []
            st.error(f"Refused: {exc}")
        except ValueError as exc:
            parsed = []
            st.error(f"“Only these conversations”: {exc}. Use numbers like 1, 4-6.")
        if parsed:
            with transaction() as session:
                new_ids = svc.import_conversations(session=session, parsed=parsed, user_id=user.id)
                for cid in new_ids:
                    svc.enqueue_analysis(cid, session=session)
            _warn_if_not_queued(session, "Imported")
            st.session_state[_SELECTED] = new_ids[0]
            st.success(f"Imported {len(new_ids)} conversation(s), {sum(len(p.messages) for p in parsed):,} messages; "
                       "analysis queued.")


# --- debate -----------------------------------------------------------------------------------------

with debate_tab:
    models = local_model_names()
    st.caption(
        f"Agents speak in turn on the local models ({', '.join(models)}), each message analysed as it arrives. "
        "There are only two local models, so in a three-agent debate two agents share a model and differ by "
        "name and turn. A turn takes 10–60 s on this machine."
    )
    n_agents = st.radio("Agents", [2, 3], horizontal=True, key="debate_n")
    with st.form("debate"):
        topic = st.text_area("Topic", placeholder="Should cities ban cars from their centres?", key="debate_topic")
        defaults = ["Alice", "Bob", "Carol"]
        agents = []
        for i in range(int(n_agents)):
            left, right = st.columns(2)
            name = left.text_input(f"Agent {i + 1} name", value=defaults[i], key=f"debate_name_{i}")
            model = right.selectbox(f"Agent {i + 1} model", models, index=i % max(1, len(models)), key=f"debate_model_{i}")
            agents.append(svc.DebateAgent(name=name, model=model))
        rounds = st.slider("Rounds", 1, 10, 3, key="debate_rounds")
        start = st.form_submit_button("Start the debate", type="primary", key="debate_submit")
    if start:
        try:
            with transaction() as session:
                conv = svc.create_debate(session=session, topic=topic, agents=agents, rounds=int(rounds), user_id=user.id)
                new_id = conv.id
                svc.enqueue_debate(new_id, session=session)
        except ValueError as exc:
            st.error(str(exc))
        else:
            if failed_enqueues(session):
                st.error(f"The debate was saved but could not be queued: {'; '.join(failed_enqueues(session))}")
            else:
                st.session_state[_SELECTED] = new_id
                st.success(f"Debate #{new_id} queued: open the Conversation tab to watch it live.")


# --- search -----------------------------------------------------------------------------------------

with search_tab:
    query = st.text_input("Search messages by meaning", key="conversation_search")
    scope = st.radio("Where", ["All conversations", "The selected conversation"], horizontal=True)
    limit = st.slider("Results", 5, 50, 10)

    def _show_hits(hits: list[svc.MessageHit]) -> None:
        if not hits:
            st.caption("Nothing found (messages are searchable once analysed).")
            return
        st.dataframe(
            pd.DataFrame([{"similarity": h.similarity, "conversation": f"#{h.conversation_id} {h.conversation_title[:50]}",
                           "#": h.sequence, "agent": h.agent, "content": h.content} for h in hits]),
            hide_index=True, width="stretch",
            column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
        )

    conversation_scope = st.session_state.get(_SELECTED) if scope == "The selected conversation" else None
    if query.strip():
        try:
            with transaction() as session:
                hits = svc.search_messages(session=session, query=query, conversation_id=conversation_scope, limit=limit)
            _show_hits(hits)
        except EmbedderUnavailable as exc:
            st.error(f"Search needs the embedding model: {exc}")
    st.markdown("#### Similar messages")
    selected_id = st.session_state.get(_SELECTED)
    if selected_id is None:
        st.caption("Select a conversation first.")
    else:
        seq = st.number_input("Message # in the selected conversation", min_value=0, step=1, value=0)
        with transaction() as session:
            rows = svc.message_rows(session=session, conversation_id=selected_id)
            target = next((r for r in rows if r["#"] == seq), None)
            if target is None:
                st.caption("No such message.")
            else:
                st.caption(f"{target['agent'] or '?'}: {target['content'][:300]}")
                try:
                    _show_hits(svc.similar_messages(session=session, message_id=target["id"], limit=limit,
                                                    same_conversation=scope == "The selected conversation"))
                except svc.ConversationNotFound as exc:
                    st.caption(str(exc))
