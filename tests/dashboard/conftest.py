"""Fixtures shared by the dashboard page tests."""

import pytest
import streamlit as st
from apptools import APP
from streamlit.testing.v1 import AppTest


@pytest.fixture()
def app():
    """The dashboard through its entry point, with Streamlit's data cache cleared."""
    st.cache_data.clear()
    return AppTest.from_file(APP, default_timeout=60)
