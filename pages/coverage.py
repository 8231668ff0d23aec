"""Coverage page (being built)."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.view_coverage)
sidebar_status()
st.title("Coverage")
