"""Sources: add a source, queue it for models, watch its batches progress."""

import datetime as dt

import pandas as pd
import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.core.domain import ExtractionPriority, QualityTier, SourceType
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services.auth import Permission
from mmos_core.services.batches import batch_progress, enqueue_batches, queue_extraction
from mmos_core.services.estimate import estimate_for_source
from mmos_core.services.sources import DuplicateSourceError, create_source, list_sources
from mmos_core.text.intake import IntakeError, first_words, parse_pasted, parse_upload
from mmos_core.ui import local_model_names, model_names, require, sidebar_status, transaction

settings = get_settings()
user = require(Permission.add_sources)
sidebar_status()
st.title("Sources")

with st.expander("Add a source", expanded=not st.session_state.get("selected_source_id")):
    with st.form("add_source", clear_on_submit=False):
        upload = st.file_uploader("File (.txt, .md, .srt, .vtt)", type=["txt", "md", "markdown", "srt", "vtt"])
        pasted = st.text_area("…or paste the text", height=120, key="add_text")
        left, right = st.columns(2)
        title = left.text_input("Title", key="add_title")
        person = right.text_input("Person")
        source_type = left.selectbox("Type", [t.value for t in SourceType], index=[t.value for t in SourceType].index("book"))
        quality = right.selectbox("Quality", [q.value for q in QualityTier])
        priority = left.selectbox(
            "Extraction priority", [p.value for p in ExtractionPriority], index=2
        )
        source_date = right.date_input("Date", value=None, min_value=dt.date(1000, 1, 1))
        url = left.text_input("URL")
        max_words = right.number_input("Keep only the first N words (0 = all)", min_value=0, value=0, step=500)
        submitted = st.form_submit_button("Add source", type="primary")
    if submitted:
        try:
            if upload is not None:
                parsed = parse_upload(upload.name, upload.getvalue(), max_bytes=settings.max_source_bytes)
            else:
                parsed = parse_pasted(pasted, max_bytes=settings.max_source_bytes)
            if max_words:
                parsed = first_words(parsed, int(max_words))
            with transaction() as session:
                source = create_source(
                    session=session,
                    parsed=parsed,
                    title=title or (upload.name if upload else ""),
                    source_type=source_type,
                    quality=quality,
                    extraction_priority=priority,
                    person=person,
                    url=url,
                    source_date=source_date,
                    original_filename=upload.name if upload else None,
                )
                code, source_id, words, chunks = source.source_code, source.id, source.word_count, len(source.chunks)
            st.session_state["selected_source_id"] = source_id
            st.success(f"Added {code}: {words:,} words in {chunks} chunks.")
        except IntakeError as exc:
            st.error(f"Refused: {exc}")
        except (DuplicateSourceError, ValueError) as exc:
            st.error(str(exc))

with transaction() as session:
    sources = list_sources(session=session)

if not sources:
    st.info("No sources yet: add one above.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "id": s.source_id,
            "code": s.source_code,
            "title": s.title,
            "type": s.source_type,
            "quality": s.quality,
            "priority": s.extraction_priority,
            "batches": s.batches,
            "completed": s.batches_completed,
            "failed": s.batches_failed,
            "fragments": s.fragments,
            "cost_usd": s.total_cost_usd,
        }
        for s in sources
    ]
)
st.dataframe(table, hide_index=True, width="stretch")

ids = [s.source_id for s in sources]
labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
current = st.session_state.get("selected_source_id")
selected = st.selectbox(
    "Source", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get, key="source_picker"
)
st.session_state["selected_source_id"] = selected

available = model_names()
chosen = st.multiselect(
    "Models", available, default=[m for m in local_model_names() if m in available], key="queue_models"
)
if chosen:
    with transaction() as session:
        estimates = estimate_for_source(session=session, source_id=selected, model_names=chosen)
    st.dataframe(
        [
            {
                "model": name,
                "input tokens": e.input_tokens,
                "max output tokens": e.max_output_tokens_total,
                "at least (USD)": float(e.expected_usd_low),
                "worst case (USD)": float(e.worst_case_usd),
            }
            for name, e in estimates
        ],
        hide_index=True,
        column_config={
            "at least (USD)": st.column_config.NumberColumn(format="$%.6f"),
            "worst case (USD)": st.column_config.NumberColumn(format="$%.6f"),
        },
    )
    st.caption("Estimated before queueing: input tokens counted with litellm × the price map; worst case adds every chunk's max output.")
if st.button("Queue extraction", type="primary", disabled=not chosen, key="queue_extraction"):
    try:
        with transaction() as session:
            jobs = queue_extraction(session=session, source_id=selected, model_names=chosen, processor_name=user.username)
            enqueue_batches(jobs, session=session)
        st.success(f"Queued {len(jobs)} batch(es) on the '{jobs[0].rq_queue}' queue.")
    except (LookupError, UnknownModelError, ValueError) as exc:
        st.error(str(exc))


@st.fragment(run_every=3)
def progress_panel(source_id: int) -> None:
    """Batches of the selected source with live progress (re-runs itself every 3 s)."""
    with transaction() as session:
        batches = batch_progress(session=session, source_id=source_id)
    if not batches:
        st.caption("No batches for this source yet.")
        return
    for b in batches:
        elapsed = f"{b.elapsed_s:,.0f} s" if b.elapsed_s is not None else "not started"
        label = (
            f"**{b.batch_code}** · {b.model_name} · {b.status} · chunks {b.chunks_done}/{b.chunks_total} · "
            f"{elapsed} · ${b.cost_usd:.4f} · {b.input_tokens:,}+{b.output_tokens:,} tokens"
            + (f" · {b.fragments} fragments" if b.status == "completed" else "")
            + (f" · attempt {b.attempts}/{b.max_attempts}" if b.attempts > 1 else "")
        )
        st.markdown(label)
        st.progress(b.fraction)
        if b.malformed_responses:
            st.caption(f"{b.malformed_responses} malformed answer(s) recorded")
        if b.error_message:
            st.error(b.error_message)
    if any(b.status == "completed" for b in batches):
        st.page_link("pages/comparison.py", label="Open the comparison", icon=":material/compare_arrows:")


st.subheader("Batches")
progress_panel(selected)
