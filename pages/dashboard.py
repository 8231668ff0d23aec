"""Dashboard page (being built)."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.view_dashboard)
sidebar_status()
st.title("Dashboard")
