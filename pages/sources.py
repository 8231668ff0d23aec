"""Sources: add a source, queue it for models, watch its batches progress."""

import datetime as dt
from pathlib import PurePath

import pandas as pd
import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.core.domain import BatchStatus, ExtractionPriority, QualityTier, SourceType
from mmos_core.llm.catalog import UnknownModelError
from mmos_core.services.auth import Permission
from mmos_core.services.batches import batch_progress, enqueue_batches, queue_extraction
from mmos_core.services.estimate import estimate_for_source
from mmos_core.services.person_labels import change_person_labels
from mmos_core.services.sources import DuplicateSourceError, create_source, list_sources
from mmos_core.services.speakers import speaker_summary
from mmos_core.text.documents import DOCUMENT_EXTENSIONS
from mmos_core.text.intake import ACCEPTED_EXTENSIONS, IntakeError, ParsedSource, first_words, parse_pasted, parse_upload
from mmos_core.ui import (
    has_source_selected,
    local_model_names,
    model_names,
    remember_source,
    require,
    sidebar_status,
    source_picker,
    transaction,
)

settings = get_settings()
user = require(Permission.add_sources)
sidebar_status()
st.title("Sources")



def _parse_file(name: str, data: bytes) -> ParsedSource:
    """`parse_upload` with a progress bar while a document converts (pages of a PDF, chapters of an EPUB)."""
    if PurePath(name).suffix.lower() not in DOCUMENT_EXTENSIONS:
        return parse_upload(name, data, max_bytes=settings.max_source_bytes)
    bar = st.progress(0.0, text=f"Converting {name}…")

    def report(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"Converting {name}: {done:,} of {total:,}")

    try:
        return parse_upload(
            name, data, max_bytes=settings.max_source_bytes, max_document_bytes=settings.max_document_bytes,
            max_pages=settings.max_document_pages, progress=report,
        )
    finally:
        bar.empty()


with st.expander("Add a source", expanded=not has_source_selected()):
    with st.form("add_source", clear_on_submit=False):
        upload = st.file_uploader(
            "File (.txt, .md, .srt, .vtt, .pdf, .docx, .html, .epub)",
            type=[ext.lstrip(".") for ext in ACCEPTED_EXTENSIONS],
            help="PDF, Word, web pages and EPUB books are converted to text; a PDF's pages become locations "
            "(“p. 12, ¶48”). Scanned PDFs need OCR first.",
        )
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
                parsed = _parse_file(upload.name, upload.getvalue())
            else:
                parsed = parse_pasted(pasted, max_bytes=settings.max_source_bytes)
            if max_words:
                parsed = first_words(parsed, int(max_words))
            with transaction() as session:
                source = create_source(
                    session=session,
                    parsed=parsed,
                    title=title or parsed.title or (upload.name if upload else ""),
                    source_type=source_type,
                    quality=quality,
                    extraction_priority=priority,
                    person=person,
                    url=url,
                    source_date=source_date,
                    original_filename=upload.name if upload else None,
                )
                code, source_id, words, chunks = source.source_code, source.id, source.word_count, len(source.chunks)
                found = speaker_summary(session=session, source_id=source_id)
                note = source.turns_note
            remember_source(source_id)
            st.success(f"Added {code}: {words:,} words in {chunks} chunks.")
            for warning in parsed.warnings:
                st.warning(warning)
            if len(found) > 1:
                st.info("Speakers found: " + ", ".join(f"{sp.label} ({sp.words:,} words{', the person' if sp.is_person else ''})"
                                                    for sp in found) + ". Change who the person is under “Speakers” below.")
            elif note:
                st.caption(note)
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

selected = source_picker(sources, key="source_picker")


def _save_person_labels(source_id: int) -> None:
    labels = st.session_state.get(f"person_labels_{source_id}") or []
    try:
        with transaction() as session:
            n = change_person_labels(session=session, source_id=source_id, labels=labels)
        st.session_state["sources_flash"] = ("success", f"The person's speaker is now {', '.join(labels)}; {n} fragment(s) re-checked.")
    except (LookupError, ValueError) as exc:
        st.session_state["sources_flash"] = ("error", str(exc))


with transaction() as session:
    speakers = speaker_summary(session=session, source_id=selected)
flash = st.session_state.pop("sources_flash", None)
if flash:
    getattr(st, flash[0])(flash[1])
with st.expander(f"Speakers ({len(speakers)})", expanded=len(speakers) > 1, icon=":material/record_voice_over:"):
    st.dataframe([{"speaker": sp.label, "words": sp.words, "the person": sp.is_person} for sp in speakers], hide_index=True)
    if len(speakers) > 1:
        labels = [sp.label for sp in speakers]
        st.multiselect(
            "Whose words are the person's?", labels, default=[sp.label for sp in speakers if sp.is_person],
            key=f"person_labels_{selected}",
            help="Direct quotes from other speakers' turns are not evidence about the person. Changing this "
            "re-runs the checks and the quality score, not the LLM.",
        )
        st.button("Save speakers", key=f"save_speakers_{selected}", on_click=_save_person_labels, args=(selected,))
    else:
        st.caption("No speaker labels were found: the whole source is treated as the person's own words.")

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
            + (f" · {b.fragments} fragments" if b.status == BatchStatus.completed.value else "")
            + (f" · attempt {b.attempts}/{b.max_attempts}" if b.attempts > 1 else "")
        )
        st.markdown(label)
        st.progress(b.fraction)
        if b.malformed_responses:
            st.caption(f"{b.malformed_responses} malformed answer(s) recorded")
        if b.error_message:
            st.error(b.error_message)
    if any(b.status == BatchStatus.completed.value for b in batches):
        st.page_link("pages/comparison.py", label="Open the comparison", icon=":material/compare_arrows:")


st.subheader("Batches")
progress_panel(selected)
