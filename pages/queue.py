"""Queue page (being built)."""

import streamlit as st

from mmos_core.auth import Permission
from mmos_core.ui import require, sidebar_status

user = require(Permission.manage_queue)
sidebar_status()
st.title("Queue")
