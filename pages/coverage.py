"""Coverage: the 8 categories of a person or of chosen sources, gap status, and contradicting fragments.

The scope (person, or chosen sources) lives in the URL (`?scope=Sources&sources=3,5`, `?person=…`), so a
copied link reopens it (docs/ARCHITECTURE.md, "Rules")."""

import pandas as pd
import plotly.express as px
import streamlit as st

from mmos_core.services.auth import Permission
from mmos_core.services.coverage import (
    ADEQUATE,
    CRITICAL_GAP,
    NEEDS_ATTENTION,
    category_coverage,
    contradictions,
    people,
    source_choices,
)
from mmos_core.ui import int_list, keep_in_query, require, seed_from_query, sidebar_status, transaction

user = require(Permission.view_coverage)
sidebar_status()
st.title("Coverage")

STATUS_COLOURS = {CRITICAL_GAP: "#d62728", NEEDS_ATTENTION: "#ff7f0e", ADEQUATE: "#2ca02c"}
ALL = "All sources"

with transaction() as session:
    persons = people(session=session)
    choices = source_choices(session=session)

seed_from_query({"coverage_scope": ("scope", str), "coverage_person": ("person", str),
                 "coverage_sources": ("sources", int_list)})
labels = {c.source_id: f"{c.source_code} — {c.title}" + (f" ({c.person})" if c.person else "") for c in choices}
if st.session_state.get("coverage_scope") not in (None, "Person", "Sources"):
    st.session_state["coverage_scope"] = "Person"
if st.session_state.get("coverage_person") not in (None, ALL, *persons):
    st.session_state["coverage_person"] = ALL
if any(i not in labels for i in st.session_state.get("coverage_sources") or []):
    st.session_state["coverage_sources"] = [i for i in st.session_state["coverage_sources"] if i in labels]
scope = st.radio("Scope", ["Person", "Sources"], horizontal=True, key="coverage_scope")
person = None
source_ids = None
if scope == "Person":
    picked = st.selectbox("Person", [ALL, *persons], key="coverage_person")
    person = None if picked == ALL else picked
    keep_in_query({"scope": None, "person": person, "sources": None})
else:
    source_ids = st.multiselect("Sources", list(labels), format_func=labels.get, key="coverage_sources")
    keep_in_query({"scope": scope, "person": None, "sources": source_ids})
    if not source_ids:
        st.info("Choose one or more sources.")
        st.stop()

with transaction() as session:
    rows = category_coverage(session=session, person=person, source_ids=source_ids)
    pairs = contradictions(session=session, person=person, source_ids=source_ids)

table = pd.DataFrame(
    [
        {
            "category": r.category,
            "fragments": r.fragment_count,
            "status": r.status,
            "verified": r.verified_count,
            "verification %": r.verification_rate,
            "sources": r.source_diversity,
            "avg relevance": r.avg_relevance,
        }
        for r in rows
    ]
)
gaps = [r.category for r in rows if r.status == CRITICAL_GAP]
total = sum(r.fragment_count for r in rows)
st.caption(f"{total:,} non-rejected fragments · {len(gaps)} of {len(rows)} categories are a critical gap")

chart = px.bar(
    table,
    x="category",
    y="fragments",
    color="status",
    color_discrete_map=STATUS_COLOURS,
    category_orders={"category": [r.category for r in rows], "status": list(STATUS_COLOURS)},
)
chart.update_layout(xaxis_title=None, yaxis_title="fragments (not rejected)", legend_title=None)
st.plotly_chart(chart, width="stretch")
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Contradictions")
if not pairs:
    st.caption("No contradicting fragments in this scope.")
for p in pairs:
    with st.container(border=True):
        left, right = st.columns(2)
        left.markdown(f"**{p.fragment_code}** · {p.source_code} · relevance {p.relevance}")
        left.write(p.content)
        right.markdown(f"**{p.related_fragment_code}** · {p.related_source_code} · relevance {p.related_relevance}")
        right.write(p.related_content)
        if p.note:
            st.caption(p.note)
