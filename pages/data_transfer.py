"""Import / export: fragments of any sources, filtered, as CSV / JSONL / Parquet; comparison tables;
reviewers' preference pairs as JSONL; legacy fragments in (the core design section 8; docs/export.md)."""

import numpy as np
import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.core.domain import CATEGORIES, FragmentType
from mmos_core.embeddings.embedder import EmbedderUnavailable
from mmos_core.services.auth import Permission
from mmos_core.services.comparison import completed_batches
from mmos_core.services.model_registry import cached_registry_embedder
from mmos_core.services.preferences import preference_pairs, preference_records
from mmos_core.services.review import filter_choices
from mmos_core.services.sources import list_sources
from mmos_core.services.transfer import (
    EXPORT_FORMATS,
    ExportFilter,
    ImportRefused,
    comparison_table,
    export_fragments,
    import_legacy_fragments,
    parse_legacy_file,
    records_to_jsonl,
    table_bytes,
)
from mmos_core.ui import require, sidebar_status, source_picker, transaction

MIME = {"csv": "text/csv", "jsonl": "application/jsonl", "parquet": "application/octet-stream"}
EMBED_STEP = 64  # texts embedded between two progress updates while importing

user = require(Permission.import_export)
sidebar_status()
st.title("Import / export")

with transaction() as session:
    sources = list_sources(session=session)
if not sources:
    st.info("No sources yet. Add one on the Sources page first.")
    st.stop()

source_id = source_picker(sources, key="transfer_source")
codes = {s.source_id: s.source_code for s in sources}

export_tab, prefs_tab, import_tab = st.tabs(["Export", "Preference pairs", "Import legacy fragments"])

with export_tab:
    picked = st.multiselect(
        "Sources", list(codes), default=[source_id], format_func=lambda i: next(f"{s.source_code} — {s.title}" for s in sources if s.source_id == i),
        key="export_sources", help="Any number of sources; none selected exports every source.",
    )
    with transaction() as session:
        models = sorted({m for sid in picked for m in filter_choices(session=session, source_id=sid).models}) if picked else filter_choices(session=session).models
    left, mid, right = st.columns(3)
    flt = ExportFilter(
        source_ids=tuple(picked),
        model_names=tuple(left.multiselect("Models", models, key="export_models")),
        categories=tuple(mid.multiselect("Categories", list(CATEGORIES), key="export_categories")),
        fragment_types=tuple(right.multiselect("Types", [t.value for t in FragmentType], key="export_types")),
        status=left.selectbox("Status", [None, "verified", "rejected", "pending"], format_func=lambda v: v or "any", key="export_status"),
        relevance_min=mid.slider("Relevance at least", 1, 10, 1, key="export_relevance"),
        query=right.text_input("Full-text query", key="export_query") or None,
    )
    fmt = st.radio("Format", EXPORT_FORMATS, horizontal=True, key="export_format")
    with st.status("Exporting fragments…", expanded=False) as status:
        st.write("Reading the fragments and their checks…")
        with transaction() as session:
            fragments = export_fragments(session=session, flt=flt)
        st.write(f"Writing {len(fragments):,} rows as {fmt.upper()}…")
        payload = table_bytes(fragments, fmt)
        status.update(label=f"{len(fragments):,} fragments ready as {fmt.upper()} ({len(payload):,} bytes)", state="complete")
    stem = "_".join(codes[i] for i in picked[:3]) + ("_etc" if len(picked) > 3 else "") if picked else "all_sources"
    st.markdown(f"**{len(fragments)}** fragments match.")
    st.download_button(
        f"Fragments ({fmt.upper()})", payload, f"{stem}_fragments.{fmt}", MIME[fmt],
        disabled=fragments.empty, key="dl_fragments",
    )
    with transaction() as session:
        batches = completed_batches(session=session, source_id=source_id)
        comparison = comparison_table(session=session, batch_ids=[b.id for b in batches])
    st.markdown(f"Comparison table of the source's **{len(comparison)}** completed batches.")
    st.download_button(
        f"Comparison ({fmt.upper()})", table_bytes(comparison, fmt), f"{codes[source_id]}_comparison.{fmt}", MIME[fmt],
        disabled=comparison.empty, key="dl_comparison",
    )

with prefs_tab:
    st.caption(
        "Pairs of fragments from the same chunk judged by the same person: every fragment a reviewer verified "
        "against every fragment of that chunk they rejected (reason: the rejection's reason), and likes or 4-5 stars "
        "against dislikes or 1-2 stars from the same user's latest feedback (reason: the feedback text). The prompt is "
        "the chunk's text. JSONL, one pair per line (docs/export.md)."
    )
    pref_sources = st.multiselect(
        "Sources", list(codes), default=[source_id], format_func=codes.get, key="pref_sources",
        help="None selected: every source.",
    )
    if st.button("Build preference pairs", key="pref_build"):
        with st.status("Pairing verdicts and feedback…") as status:
            with transaction() as session:
                pairs = preference_pairs(session=session, source_ids=tuple(pref_sources))
            st.session_state["pref_payload"] = records_to_jsonl(preference_records(pairs))
            st.session_state["pref_summary"] = (
                f"{len(pairs):,} pairs: {sum(p.pair_source == 'verdict' for p in pairs):,} from verdicts, "
                f"{sum(p.pair_source == 'feedback' for p in pairs):,} from feedback."
            )
            status.update(label=st.session_state["pref_summary"], state="complete")
    if "pref_payload" in st.session_state:
        st.markdown(st.session_state["pref_summary"])
        st.download_button(
            "Preference pairs (JSONL)", st.session_state["pref_payload"], "preference_pairs.jsonl", MIME["jsonl"],
            disabled=not st.session_state["pref_payload"], key="dl_preferences",
        )


def _embed_with_progress(texts: list[str]) -> np.ndarray:
    """The registry's embedder over `texts` in steps of EMBED_STEP, with a progress bar; (n, 384) float32."""
    embedder = cached_registry_embedder()
    bar = st.progress(0.0, text=f"Embedding {len(texts):,} fragments…")
    parts = []
    for i in range(0, len(texts), EMBED_STEP):
        parts.append(np.asarray(embedder.embed(texts[i : i + EMBED_STEP]), dtype=np.float32))
        done = min(i + EMBED_STEP, len(texts))
        bar.progress(done / len(texts), text=f"Embedded {done:,} of {len(texts):,} fragments")
    return np.vstack(parts)


with import_tab:
    st.caption(
        "CSV (with a header line) or JSON (a list of objects). Columns: category, type or fragment_type, content, "
        "relevance (1-10), confidence (0-1, or metadata.confidence), and optionally id, location, context, insight. "
        "Every row is checked first; one bad row refuses the whole file. The fragments become one new batch "
        "LEGACY_IMPORT_NNN of the chosen source; each keeps 'legacy row N' (and its old id) in its location."
    )
    upload = st.file_uploader("Legacy fragments", type=["csv", "json"], key="legacy_upload")
    if st.button("Import", key="legacy_import", disabled=upload is None):
        with st.status(f"Importing {upload.name}…") as status:
            try:
                st.write("Checking every row…")
                rows = parse_legacy_file(upload.name, upload.getvalue(), max_bytes=get_settings().max_source_bytes)
                st.write(f"{len(rows):,} rows are valid; embedding and writing them…")
                with transaction() as session:
                    result = import_legacy_fragments(
                        session=session, source_id=source_id, rows=rows, imported_by=user.username, embed=_embed_with_progress
                    )
                status.update(label=f"Imported {len(result.fragment_codes):,} fragments as {result.batch_code}", state="complete")
                st.success(
                    f"Imported {len(result.fragment_codes)} fragments as {result.batch_code} "
                    f"({result.fragment_codes[0]} … {result.fragment_codes[-1]})."
                )
            except ImportRefused as exc:
                status.update(label="Nothing was imported", state="error")
                st.error(f"Refused: {exc}")
            except EmbedderUnavailable as exc:
                status.update(label="Nothing was imported", state="error")
                st.error(f"Nothing was imported: the embedding model is not available ({exc}).")
