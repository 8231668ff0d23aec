"""A real schema-constrained completion through litellm against the local llama.cpp server (0.5B model).

Needs the provisioned GGUFs (`mmos models provision`) and `llama-cpp-python[server]==0.3.36`; skipped
otherwise. Takes ~10-30 s on 2 cores (server start + one short generation).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
from pathlib import Path

import pytest

from mmos_core.config import Settings
from mmos_core.llm import server
from mmos_core.llm.local_models import LOCAL_MODELS, is_model_present

pytestmark = pytest.mark.llm

ALIAS = "qwen2.5-coder-0.5b-instruct"
DARWIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "person_texts" / "darwin_autobiography.txt"

SCHEMA = {
    "type": "object",
    "properties": {
        "fragments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "quote": {"type": "string"},
                    "category": {"type": "string", "enum": ["interest", "trait", "event", "other"]},
                    "relevance": {"type": "integer"},
                },
                "required": ["quote", "category", "relevance"],
            },
        }
    },
    "required": ["fragments"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _excerpt() -> str:
    if not DARWIN.exists():
        pytest.skip(f"person_texts data folder absent ({DARWIN.parent})")
    text = " ".join(DARWIN.read_text(encoding="utf-8", errors="replace").split())
    start = text.find("The passion for collecting")
    if start < 0:
        pytest.skip("expected passage not found in darwin_autobiography.txt")
    sentences = re.split(r"(?<=[.!?])\s+", text[start:])
    return " ".join(sentences[:2])


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(f"llama_cpp not installed: pip install '{server.LLAMA_CPP_REQUIREMENT}'")
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm not installed")
    settings = Settings(data_dir=tmp_path_factory.mktemp("llm-data"), llm_port=_free_port())
    missing = [a for a, m in LOCAL_MODELS.items() if not is_model_present(m, settings.cache_dir)]
    if missing:
        pytest.skip(f"GGUF weights not provisioned ({', '.join(missing)}): run `mmos models provision`")
    server.start_server(wait=True, timeout_s=180, settings=settings)
    try:
        yield settings
    finally:
        server.stop_server(settings=settings)
        assert not server.server_status(settings)["running"]


def test_server_lists_both_models(local_server):
    status = server.server_status(local_server)
    assert status["running"] and status["healthy"]
    assert set(LOCAL_MODELS) <= set(status["models"])
    # starting again returns the same process
    assert server.start_server(settings=local_server) == status["pid"]


def test_schema_constrained_completion_through_litellm(local_server):
    excerpt = _excerpt()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    params = server.litellm_params(ALIAS, local_server)
    resp = litellm.completion(
        **params,
        messages=[
            {"role": "system", "content": "Extract fragments about the author from the text. Answer in JSON."},
            {"role": "user", "content": excerpt},
        ],
        response_format=server.response_format_for_schema(SCHEMA),
        temperature=0,
        max_tokens=300,
        timeout=300,
    )
    content = resp.choices[0].message.content
    data = json.loads(content)  # grammar-constrained: must be valid JSON
    assert isinstance(data["fragments"], list)
    for frag in data["fragments"]:
        assert isinstance(frag["quote"], str)
        assert frag["category"] in {"interest", "trait", "event", "other"}
        assert isinstance(frag["relevance"], int)
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
