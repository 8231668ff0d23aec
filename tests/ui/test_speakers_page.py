"""Speakers at intake on the Sources page (AppTest on the real embedded services): the speakers found are
shown with their words, the person's label is chosen by default and can be changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import streamlit as st
from conftest import shared_dir
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

APP = str(Path(__file__).resolve().parents[2] / "app.py")
INTERVIEW = """THE PRESIDENT. Good morning. I have one statement to make about the budget, and then I will take questions.

Q. Mr. President, will you veto the bill if it reaches your desk?

THE PRESIDENT. I will veto any bill that raises taxes on working families. [Laughter] I mean that.

Q. Thank you, Mr. President.
"""


@pytest.fixture()
def app(clean_db) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["current_user"] = signed_in("admin")
    return at


def test_intake_shows_the_speakers_and_the_analyst_changes_the_person(app):
    at = app.run()
    at.text_area(key="add_text").input(INTERVIEW)
    at.text_input(key="add_title").input("Budget press conference")
    at.form_submit_button[0].click()
    at = at.run()
    assert not at.exception, at.exception
    [info] = [t for t in texts(at.info) if t.startswith("Speakers found")]
    assert "THE PRESIDENT" in info and "the person" in info and "Q (" in info
    picked = [m for m in at.multiselect if m.label == "Whose words are the person's?"]
    assert picked and picked[0].value == ["THE PRESIDENT"]
    picked[0].set_value(["Q"])
    [save] = [b for b in at.button if b.label == "Save speakers"]
    at = save.click().run()
    assert not at.exception, at.exception
    assert any("now Q" in t for t in texts(at.success)), texts(at.success)
    table = [d.value for d in at.dataframe if "speaker" in d.value.columns][0]
    assert dict(zip(table["speaker"], table["the person"], strict=True)) == {"THE PRESIDENT": False, "Q": True}


def test_a_real_press_conference_defaults_to_the_president(app):
    path = shared_dir() / "data" / "press_conferences" / "2009-01-12-final-press-conference.txt"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not found: the shared data folder is absent")
    at = app.run()
    at.text_area(key="add_text").input(path.read_text(encoding="utf-8"))
    at.text_input(key="add_title").input("Final press conference")
    at.form_submit_button[0].click()
    at = at.run()
    assert not at.exception, at.exception
    table = [d.value for d in at.dataframe if "speaker" in d.value.columns][0]
    assert table["speaker"].iloc[0] == "THE PRESIDENT" and bool(table["the person"].iloc[0])
