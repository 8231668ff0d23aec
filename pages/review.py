"""Review page (being built)."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.review_fragments)
sidebar_status()
st.title("Review")
