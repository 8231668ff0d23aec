"""Conversation health (seed 004): health over time, contradictions, loops, citations; live while running."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.view_coverage)
sidebar_status()
st.title("Conversations")
