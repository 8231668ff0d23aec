"""Model catalog (seed 002): models, prices, task recommendations learned from feedback."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.view_comparison)
sidebar_status()
st.title("Models")
