"""A real schema-constrained completion through litellm against the local llama.cpp server (0.5B model).

Needs the provisioned GGUFs and the built llama-server (`mmos models provision`); skipped otherwise (a
failure in CI, where MMOS_REQUIRE_MODELS is set). Takes ~10-30 s on 2 cores (server start + one short generation).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
from pathlib import Path

import pytest

from mmos_core.core.config import Settings
from mmos_core.llm import server
from mmos_core.llm.llama_server import binary_path, is_built
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


# The same two sentences, for machines without ../shared (public domain, Darwin 1887).
FALLBACK_EXCERPT = (
    "The passion for collecting which leads a man to be a systematic naturalist, a virtuoso, or a miser, "
    "was very strong in me, and was clearly innate, as none of my sisters or brother ever had this taste. "
    "One little event during this year has fixed itself very firmly in my mind, and I hope that it has "
    "done so from my conscience having been afterwards sorely troubled by it; it is curious as showing "
    "that apparently I was interested at this early age in the variability of plants!"
)


def _excerpt() -> str:
    if not DARWIN.exists():
        return FALLBACK_EXCERPT
    text = " ".join(DARWIN.read_text(encoding="utf-8", errors="replace").split())
    start = text.find("The passion for collecting")
    if start < 0:
        pytest.skip("expected passage not found in darwin_autobiography.txt")
    sentences = re.split(r"(?<=[.!?])\s+", text[start:])
    return " ".join(sentences[:2])


def _unavailable(reason: str):
    """Skip, except in CI (MMOS_REQUIRE_MODELS set), where a missing local model is a failure."""
    if os.environ.get("MMOS_REQUIRE_MODELS"):
        pytest.fail(f"MMOS_REQUIRE_MODELS is set: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    if not is_built(settings := Settings(llm_port=_free_port())):
        _unavailable(f"llama-server not built at {binary_path(settings)}: run `mmos models provision`")
    if importlib.util.find_spec("litellm") is None:
        _unavailable("litellm not installed")
    settings = Settings(data_dir=tmp_path_factory.mktemp("llm-data"), llm_port=settings.llm_port)
    missing = [a for a, m in LOCAL_MODELS.items() if not is_model_present(m, settings.cache_dir)]
    if missing:
        _unavailable(f"GGUF weights not provisioned ({', '.join(missing)}): run `mmos models provision`")
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
    server.register_litellm_prices(local_server)
    params = server.litellm_params(ALIAS, local_server)
    resp = litellm.completion(
        **params,
        messages=[
            {"role": "system", "content": "Extract fragments about the author from the text. Answer in JSON."},
            {"role": "user", "content": excerpt},
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "fragments", "schema": SCHEMA}},
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
    assert litellm.completion_cost(completion_response=resp) == 0.0


def test_real_model_through_the_extraction_job(local_server, services, clean_db, embedder_or_skip, monkeypatch):
    """The workbench's own path, end to end, with the real 0.5B model on a two-sentence excerpt:
    source → batch → RQ job → litellm → llama.cpp → validated fragments with embeddings."""
    from rq import SimpleWorker
    from sqlalchemy import select

    from mmos_core.core.config import get_settings
    from mmos_core.core.db import session_scope
    from mmos_core.core.domain import RQ_QUEUES
    from mmos_core.core.redis import get_redis
    from mmos_core.jobs.enqueue import get_queue
    from mmos_core.models import ExtractionCall, Fragment, ProcessingBatch
    from mmos_core.services.batches import enqueue_batches, queue_extraction
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    monkeypatch.setenv("MMOS_LLM_PORT", str(local_server.llm_port))
    get_settings.cache_clear()
    try:
        with session_scope() as session:
            source = create_source(
                session=session, parsed=parse_pasted(_excerpt(), max_bytes=100_000), title="Autobiography (excerpt)",
                person="Charles Darwin", source_type="book", quality="primary", extraction_priority="HIGH",
            )
            jobs = queue_extraction(session=session, source_id=source.id, model_names=[ALIAS])
        enqueue_batches(jobs)
        SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)
        with session_scope() as session:
            batch = session.get(ProcessingBatch, jobs[0].batch_id)
            call = session.scalar(select(ExtractionCall).where(ExtractionCall.batch_id == batch.id))
            fragments = session.scalars(select(Fragment).where(Fragment.batch_id == batch.id)).all()
            assert batch.batch_status == "completed", batch.error_message
            assert call.status == "ok", (call.error, call.raw_response)  # grammar-constrained: valid JSON
            assert batch.total_input_tokens > 0 and batch.total_output_tokens > 0
            assert float(batch.estimated_cost_usd) == 0.0
            assert batch.processing_duration_seconds > 0
            for f in fragments:
                assert f.embedding is not None and f.fragment_code
    finally:
        get_settings.cache_clear()
