"""MMOS workbench: Streamlit entry point (`streamlit run app.py`, or `mmos up`)."""

import streamlit as st

st.set_page_config(page_title="MMOS workbench", page_icon="🧭", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/sources.py", title="Sources", icon=":material/library_books:", default=True),
        st.Page("pages/comparison.py", title="Comparison", icon=":material/compare_arrows:"),
    ]
)
navigation.run()
