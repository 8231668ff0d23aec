"""Streamlit feedback widgets → the catalog design feedback types."""

import pytest


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        ("thumbs", 1, ("like", None)),
        ("thumbs", 0, ("dislike", None)),
        ("thumbs", None, None),
        ("stars", 0, ("rating", 1)),
        ("stars", 4, ("rating", 5)),
        ("stars", None, None),
        ("like", None, ("like", None)),
        ("regenerate", None, ("regenerate", None)),
    ],
)
def test_feedback_widgets_map_to_seed_002_types(kind, value, expected):
    from mmos_core.services.feedback import from_widget

    got = from_widget(kind, value)
    assert (None if got is None else (got[0].value, got[1])) == expected
