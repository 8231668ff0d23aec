"""Import / export: fragments and comparison tables as CSV or Parquet; legacy fragments in (seed 000 section 8)."""

import streamlit as st

from mmos_core.core.config import get_settings
from mmos_core.embeddings.embedder import EmbedderUnavailable
from mmos_core.services.auth import Permission
from mmos_core.services.comparison import completed_batches
from mmos_core.services.sources import list_sources
from mmos_core.services.transfer import (
    ImportRefused,
    comparison_table,
    export_fragments,
    import_legacy_fragments,
    parse_legacy_file,
    to_csv_bytes,
    to_parquet_bytes,
)
from mmos_core.ui import require, sidebar_status, transaction

user = require(Permission.import_export)
sidebar_status()
st.title("Import / export")

with transaction() as session:
    sources = list_sources(session=session)
if not sources:
    st.info("No sources yet. Add one on the Sources page first.")
    st.stop()

ids = [s.source_id for s in sources]
labels = {s.source_id: f"{s.source_code} — {s.title}" for s in sources}
current = st.session_state.get("selected_source_id")
source_id = st.selectbox(
    "Source", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get, key="transfer_source"
)
st.session_state["selected_source_id"] = source_id

export_tab, import_tab = st.tabs(["Export", "Import legacy fragments"])

with export_tab:
    with transaction() as session:
        batches = completed_batches(session=session, source_id=source_id)
    batch_labels = {0: "all batches of this source"} | {b.id: f"{b.batch_code} · {b.model_name}" for b in batches}
    batch_id = st.selectbox("Batch", list(batch_labels), format_func=batch_labels.get, key="export_batch")
    with transaction() as session:
        fragments = export_fragments(session=session, source_id=source_id, batch_id=batch_id or None)
        comparison = comparison_table(session=session, batch_ids=[b.id for b in batches])
    stem = labels[source_id].split(" — ")[0] + (f"_{batch_labels[batch_id].split(' · ')[0]}" if batch_id else "")
    st.markdown(f"**{len(fragments)}** fragments match.")
    a, b = st.columns(2)
    a.download_button(
        "Fragments (CSV)", to_csv_bytes(fragments), f"{stem}_fragments.csv", "text/csv",
        disabled=fragments.empty, key="dl_fragments_csv",
    )
    b.download_button(
        "Fragments (Parquet)", to_parquet_bytes(fragments), f"{stem}_fragments.parquet", "application/octet-stream",
        disabled=fragments.empty, key="dl_fragments_parquet",
    )
    st.markdown(f"Comparison table of the source's **{len(comparison)}** completed batches.")
    c, d = st.columns(2)
    c.download_button(
        "Comparison (CSV)", to_csv_bytes(comparison), f"{stem}_comparison.csv", "text/csv",
        disabled=comparison.empty, key="dl_comparison_csv",
    )
    d.download_button(
        "Comparison (Parquet)", to_parquet_bytes(comparison), f"{stem}_comparison.parquet", "application/octet-stream",
        disabled=comparison.empty, key="dl_comparison_parquet",
    )

with import_tab:
    st.caption(
        "CSV (with a header line) or JSON (a list of objects). Columns: category, type or fragment_type, content, "
        "relevance (1-10), confidence (0-1, or metadata.confidence), and optionally id, location, context, insight. "
        "Every row is checked first; one bad row refuses the whole file. The fragments become one new batch "
        "LEGACY_IMPORT_NNN of the chosen source; each keeps 'legacy row N' (and its old id) in its location."
    )
    upload = st.file_uploader("Legacy fragments", type=["csv", "json"], key="legacy_upload")
    if st.button("Import", key="legacy_import", disabled=upload is None):
        try:
            rows = parse_legacy_file(upload.name, upload.getvalue(), max_bytes=get_settings().max_source_bytes)
            with transaction() as session:
                result = import_legacy_fragments(
                    session=session, source_id=source_id, rows=rows, imported_by=user.username
                )
            st.success(
                f"Imported {len(result.fragment_codes)} fragments as {result.batch_code} "
                f"({result.fragment_codes[0]} … {result.fragment_codes[-1]})."
            )
        except ImportRefused as exc:
            st.error(f"Refused: {exc}")
        except EmbedderUnavailable as exc:
            st.error(f"Nothing was imported: the embedding model is not available ({exc}).")
