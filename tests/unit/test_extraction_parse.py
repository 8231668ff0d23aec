"""Validation of model answers: what is kept, what is recorded as invalid or malformed."""

import json

import pytest

from mmos_core.core.domain import CallStatus
from mmos_core.llm.catalog import ModelSpec
from mmos_core.llm.extraction import RESPONSE_SCHEMA, parse_answer, response_format

GOOD = {
    "category": "Values and Beliefs",
    "fragment_type": "direct_quote",
    "content": "I am not the least afraid to die.",
    "context": "Letter near the end of his life.",
    "insight": "Faces death calmly.",
    "relevance": 8,
    "confidence": 0.85,
}


@pytest.mark.parametrize(
    "raw, reason",
    [
        (None, "empty answer"),
        ("   ", "empty answer"),
        ('{"fragments": [', "not JSON"),
        ("Sure! Here are the fragments:", "not JSON"),
        ('{"items": []}', "no 'fragments' list"),
        ('[{"content": "x"}]', "no 'fragments' list"),
    ],
)
def test_malformed_answers_are_reported_with_a_reason(raw, reason):
    status, valid, invalid, error = parse_answer(raw)
    assert status is CallStatus.malformed
    assert valid == [] and invalid == []
    assert reason in error


@pytest.mark.parametrize(
    "change, field",
    [
        ({"relevance": 0}, "relevance"),
        ({"relevance": 11}, "relevance"),
        ({"confidence": 1.5}, "confidence"),
        ({"category": "Astrology"}, "category"),
        ({"fragment_type": "summary"}, "fragment_type"),
        ({"content": ""}, "content"),
    ],
)
def test_an_invalid_fragment_is_dropped_but_the_answer_is_kept(change, field):
    bad = {**GOOD, "content": "other words here", **change}
    status, valid, invalid, error = parse_answer(json.dumps({"fragments": [GOOD, bad]}))
    assert status is CallStatus.ok and error is None
    assert [f.content for f in valid] == [GOOD["content"]]
    assert len(invalid) == 1 and invalid[0]["error"].startswith(field)


def test_verbatim_repeats_are_kept_once():
    repeated = dict(GOOD, content="  I am NOT the least afraid   to die. ")
    status, valid, invalid, _ = parse_answer(json.dumps({"fragments": [GOOD, repeated, GOOD]}))
    assert status is CallStatus.ok
    assert len(valid) == 1
    assert [i["error"] for i in invalid] == ["duplicate of an earlier fragment in this answer"] * 2


def test_response_format_per_provider_style():
    local = ModelSpec("m", "local", "openai/m", True, "http://x/v1")
    cloud = ModelSpec("gpt-4o-mini", "openai", "gpt-4o-mini", False)
    assert response_format(local) == response_format(cloud)  # llama-server takes json_schema as clouds do
    assert response_format(cloud)["type"] == "json_schema"
    assert response_format(cloud)["json_schema"]["schema"] is RESPONSE_SCHEMA
    item = RESPONSE_SCHEMA["properties"]["fragments"]["items"]
    assert set(item["required"]) == {"category", "fragment_type", "content", "context", "insight", "relevance", "confidence"}
    assert len(item["properties"]["category"]["enum"]) == 8

