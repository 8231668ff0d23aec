"""docs/embeddings.md the ONNX model registry, and the monitoring design schema (hourly rollup, migrations)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mmos_core.core.db import session_scope
from mmos_core.embeddings.embedder import EmbedderUnavailable, default_model_dir
from mmos_core.models import AsiInference, OnnxModel
from mmos_core.services import model_registry as reg

pytestmark = pytest.mark.usefixtures("clean_db")


def _fake_model_dir(root: Path, onnx_bytes: bytes = b"not an onnx graph") -> Path:
    folder = root / "broken-model"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    real_tok = default_model_dir() / "tokenizer.json"
    if real_tok.is_file():
        shutil.copy(real_tok, folder / "tokenizer.json")
    else:
        (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    return folder


def _status(name: str) -> OnnxModel:
    with session_scope() as s:
        return reg.get_model(session=s, name=name)


def test_register_list_and_single_default(tmp_path):
    a, b = _fake_model_dir(tmp_path / "a"), _fake_model_dir(tmp_path / "b")
    with session_scope() as s:
        ma = reg.register_model(session=s, name="m-a", model_dir=a, quantization="fp32", make_default=True)
        mb = reg.register_model(session=s, name="m-b", model_dir=b, quantization="int8")
        assert ma.status == mb.status == "ready" and ma.sha256 and len(ma.sha256) == 64
        assert [m.name for m in reg.list_models(session=s)] == ["m-a", "m-b"]
        reg.set_default(session=s, model_id=mb.id)
        assert [(m.name, m.is_default) for m in reg.list_models(session=s)] == [("m-b", True), ("m-a", False)]
        with pytest.raises(reg.RegistryError, match="already registered"):
            reg.register_model(session=s, name="m-a", model_dir=a)
        with pytest.raises(reg.RegistryError, match="quantization"):
            reg.register_model(session=s, name="m-c", model_dir=a, quantization="fp16")
        reg.set_status(session=s, model_id=ma.id, status="disabled")
        with pytest.raises(reg.RegistryError, match="disabled"):
            reg.set_default(session=s, model_id=ma.id)
    with session_scope() as s:
        assert reg.default_model(session=s).name == "m-b"
        assert reg.get_model(session=s, name="m-b").quantization == "int8"
    # The partial unique index refuses a second default written behind the service's back.
    with pytest.raises(IntegrityError, match="uq_onnx_models_single_default"):
        with session_scope() as s:
            s.execute(text("UPDATE onnx_models SET is_default = true WHERE name = 'm-a'"))


def test_broken_model_file_gives_error_status_and_embedder_unavailable(tmp_path):
    folder = _fake_model_dir(tmp_path)
    with session_scope() as s:
        reg.register_model(session=s, name="broken", model_dir=folder, make_default=True)
    with session_scope() as s:
        with pytest.raises(EmbedderUnavailable) as info:
            reg.load_default_embedder(session=s)
    msg = str(info.value)
    assert "broken-model" in msg and "Traceback" not in msg
    model = _status("broken")
    assert model.status == "error" and model.error_message == msg and model.loaded_at is None


def test_file_changed_after_registration_is_an_error(tmp_path):
    folder = _fake_model_dir(tmp_path)
    with session_scope() as s:
        reg.register_model(session=s, name="changed", model_dir=folder, make_default=True)
    (folder / "model.onnx").write_bytes(b"something else")
    with session_scope() as s:
        with pytest.raises(EmbedderUnavailable, match="corrupt or was modified"):
            reg.load_default_embedder(session=s)
    assert _status("changed").status == "error"


def test_missing_model_file(tmp_path):
    with session_scope() as s:
        m = reg.register_model(session=s, name="gone", model_dir=tmp_path / "nowhere", make_default=True)
        assert m.status == "error" and "not found" in m.error_message
    folder = _fake_model_dir(tmp_path)
    with session_scope() as s:
        reg.register_model(session=s, name="deleted", model_dir=folder)
        reg.set_default(session=s, model_id=reg.get_model(session=s, name="deleted").id)
    (folder / "model.onnx").unlink()
    with session_scope() as s:
        with pytest.raises(EmbedderUnavailable, match="not found"):
            reg.load_default_embedder(session=s)
    model = _status("deleted")
    assert model.status == "error" and "model.onnx not found" in model.error_message


def test_no_default_and_disabled_default(tmp_path):
    with session_scope() as s:
        with pytest.raises(EmbedderUnavailable, match="No default"):
            reg.load_default_embedder(session=s)
        m = reg.register_model(session=s, name="off", model_dir=_fake_model_dir(tmp_path), make_default=True)
        reg.set_status(session=s, model_id=m.id, status="disabled")
        with pytest.raises(EmbedderUnavailable, match="disabled"):
            reg.load_default_embedder(session=s)
        assert m.status == "disabled"
        with pytest.raises(reg.RegistryError, match="status must be"):
            reg.set_status(session=s, model_id=m.id, status="broken")


def test_ensure_registered_and_load_sets_ready(embedder_or_skip, tmp_path):
    with session_scope() as s:
        models = reg.ensure_registered(session=s)
        assert models[0].name == "all-MiniLM-L6-v2" and models[0].is_default and models[0].quantization == "fp32"
        assert reg.ensure_registered(session=s) == models  # idempotent
    with session_scope() as s:
        embedder = reg.load_default_embedder(session=s)
    assert embedder.embed_one("hello").shape == (384,)
    model = _status("all-MiniLM-L6-v2")
    assert model.status == "ready" and model.error_message is None
    assert model.loaded_at is not None and (dt.datetime.now(dt.UTC) - model.loaded_at).total_seconds() < 120
    assert model.performance_metrics["load_time_ms"] > 0 and model.performance_metrics["loads"] == 1


def test_ensure_registered_int8_and_unprovisioned(tmp_path):
    # An empty cache dir: fp32 is registered with status error (and made default), no int8.
    with session_scope() as s:
        models = reg.ensure_registered(session=s, cache_dir=tmp_path)
    assert [(m.name, m.status, m.is_default) for m in models] == [("all-MiniLM-L6-v2", "error", True)]
    int8 = _fake_model_dir(tmp_path / "x")
    shutil.move(int8, tmp_path / "embeddings" / "all-MiniLM-L6-v2-int8")
    with session_scope() as s:
        models = reg.ensure_registered(session=s, cache_dir=tmp_path)
    assert [(m.name, m.quantization, m.is_default) for m in models] == [
        ("all-MiniLM-L6-v2", "fp32", True), ("all-MiniLM-L6-v2-int8", "int8", False),
    ]


def test_performance_summary_hourly_rollup():
    h1 = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)
    h2 = h1 + dt.timedelta(hours=1)
    with session_scope() as s:
        s.add_all([OnnxModel(name="m1", model_path="/x/model.onnx", tokenizer_path="/x/tokenizer.json", status="ready"),
                   OnnxModel(name="m2", model_path="/y/model.onnx", tokenizer_path="/y/tokenizer.json", status="ready")])
        s.flush()
        m1, m2 = (reg.get_model(session=s, name=n).id for n in ("m1", "m2"))
        rows = [  # (model, created_at, ms, confidence, hallucinated, lake)
            (m1, h1 + dt.timedelta(minutes=1), 10.0, 0.9, False, True),
            (m1, h1 + dt.timedelta(minutes=20), 20.0, 0.5, True, False),
            (m1, h1 + dt.timedelta(minutes=40), 30.0, 0.7, False, False),
            (m1, h1 + dt.timedelta(minutes=59), 40.0, 0.9, False, True),
            (m2, h1 + dt.timedelta(minutes=5), 7.0, 0.8, False, False),
            (m1, h2 + dt.timedelta(minutes=1), 5.0, 0.6, False, False),
        ]
        for model_id, at, ms, conf, hall, lake in rows:
            s.add(AsiInference(kind="search_query", input_text="q", onnx_model_id=model_id, flux_position=1,
                               confidence=conf, hallucination_detected=hall, lake_worthy=lake,
                               processing_time_ms=ms, created_at=at))
    with session_scope() as s:
        assert reg.refresh_performance_summary(session=s) == 3
        summary = reg.performance_summary(session=s, since=h1)
    by_key = {(r["hour"], r["model_name"]): r for r in summary}
    first = by_key[(h1, "m1")]
    assert first["total_inferences"] == 4 and first["search_count"] == 4
    assert first["p50_processing_time_ms"] == pytest.approx(25.0)
    assert first["p95_processing_time_ms"] == pytest.approx(38.5)
    assert first["avg_confidence"] == pytest.approx(0.75, abs=1e-6)
    assert first["hallucination_count"] == 1 and first["hallucination_rate"] == pytest.approx(0.25)
    assert first["lake_worthy_count"] == 2
    assert by_key[(h1, "m2")]["total_inferences"] == 1 and by_key[(h1, "m2")]["p50_processing_time_ms"] == 7.0
    assert by_key[(h2, "m1")]["total_inferences"] == 1
    # A refresh after more rows (CONCURRENTLY, via the seed's function) sees them.
    with session_scope() as s:
        s.add(AsiInference(kind="message_analysis", input_text="q", onnx_model_id=m2, flux_position=9,
                           confidence=0.95, processing_time_ms=9.0, created_at=h1 + dt.timedelta(minutes=6)))
    with session_scope() as s:
        s.execute(text("SELECT refresh_asi_performance_summary()"))
        row = s.execute(text("SELECT total_inferences, message_count, p50_processing_time_ms FROM asi_performance_summary "
                             "WHERE hour = :h AND model_name = 'm2'"), {"h": h1}).one()
    assert tuple(row) == (2, 1, pytest.approx(8.0))


def test_seed_conventions_are_checked():
    from sqlalchemy.exc import DBAPIError

    with session_scope() as s:
        inf = AsiInference(kind="fragment_grounding", input_text="t", flux_position=6, confidence=0.5, processing_time_ms=1.0)
        s.add(inf)
        s.flush()
        assert s.scalar(text("SELECT is_sacred FROM asi_inferences WHERE id = :i"), {"i": inf.id}) is True
    for sql in (
        "INSERT INTO asi_inferences (kind, input_text, flux_position, confidence, processing_time_ms) VALUES ('search_query','t',1,1.5,1)",
        "INSERT INTO asi_inferences (kind, input_text, flux_position, confidence, processing_time_ms) VALUES ('search_query','t',10,0.5,1)",
        "INSERT INTO asi_inferences (kind, input_text, flux_position, confidence, processing_time_ms) VALUES ('chat','t',1,0.5,1)",
        "INSERT INTO beam_tensors (digits, confidence, elp_channels, flux_position) VALUES ('{1,2,3}', 0.5, '{\"ethos\": 1, \"logos\": 1, \"pathos\": 1}', 3)",
        "INSERT INTO beam_tensors (digits, confidence, elp_channels, flux_position) VALUES ('{1,2,3,4,5,6,7,8,9}', 0.5, '{\"ethos\": 1}', 3)",
        "INSERT INTO onnx_models (name, model_path, tokenizer_path, status) VALUES ('z','a','b','broken')",
    ):
        with pytest.raises(DBAPIError, match="violates check constraint"):
            with session_scope() as s:
                s.execute(text(sql))


def test_downgrade_to_0002_and_upgrade_again():
    from alembic import command
    from sqlalchemy import inspect

    from mmos_core.core.db import get_engine
    from mmos_core.core.migrate import alembic_config, upgrade

    new = {"onnx_models", "asi_inferences", "beam_tensors", "sacred_interventions", "context_metrics", "training_samples"}
    get_engine().dispose()
    try:
        command.downgrade(alembic_config(), "0002")
        get_engine().dispose()
        insp = inspect(get_engine())
        assert not new & set(insp.get_table_names())
        assert "asi_performance_summary" not in insp.get_materialized_view_names()
    finally:
        upgrade("head")
        get_engine().dispose()
    insp = inspect(get_engine())
    assert new <= set(insp.get_table_names())
    assert "asi_performance_summary" in insp.get_materialized_view_names()
    command.check(alembic_config())
