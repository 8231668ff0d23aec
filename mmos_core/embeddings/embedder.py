"""Sentence embeddings at run time: all-MiniLM-L6-v2 through onnxruntime + tokenizers (no PyTorch).

The model is the official sentence-transformers `all-MiniLM-L6-v2` (Apache-2.0), exported once to
ONNX by `mmos_core.embeddings.provision` with mean pooling and L2 normalisation inside the graph, so
a vector here equals `SentenceTransformer("all-MiniLM-L6-v2").encode(text)` (cosine >= 0.999 is
checked at provisioning and by `tests/unit/test_embedder.py`; measured ~0.999999).

Usage::

    from mmos_core.embeddings import get_embedder
    vectors = get_embedder().embed(["first text", "second text"])   # (2, 384) float32, unit length
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from mmos_core.core.vectors import EMBEDDING_DIM

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = EMBEDDING_DIM
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model (the shipped tokenizer.json says 128)
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"

_HOW_TO_FIX = "Run `mmos models provision` (or `python -m mmos_core.embeddings.provision`) to (re)build it."


class EmbedderUnavailable(RuntimeError):
    """The embedding model is missing, incomplete or corrupt; the message says how to provision it."""


def default_model_dir(cache_dir: Path | None = None) -> Path:
    """Directory of the provisioned model: `<cache_dir>/embeddings/all-MiniLM-L6-v2`.

    `cache_dir` defaults to `get_settings().cache_dir` (env `MMOS_CACHE_DIR`, default ~/.cache/mmos).
    """
    if cache_dir is None:
        from mmos_core.core.config import get_settings

        cache_dir = get_settings().cache_dir
    return Path(cache_dir).expanduser() / "embeddings" / MODEL_NAME


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Embedder:
    """all-MiniLM-L6-v2 sentence embedder (384-d) on onnxruntime (CPU) + HuggingFace `tokenizers`.

    Build one with `Embedder.load()` (or use the per-process `get_embedder()`). `embed` is safe to call
    from several threads at once (onnxruntime's `InferenceSession.run` is thread-safe and the tokenizer
    is only read).

    Tokenisation matches sentence-transformers: WordPiece from the model's own `tokenizer.json`,
    truncation at 256 tokens ([CLS] and [SEP] included), each batch padded to its longest member.
    """

    dimension: int = DIMENSION

    def __init__(self, session, tokenizer, model_dir: Path, *, max_length: int = MAX_SEQ_LENGTH) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.model_dir = model_dir
        self.max_length = max_length
        self._pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._input_names = {i.name for i in session.get_inputs()}

    @classmethod
    def load(cls, model_dir: Path | None = None, threads: int | None = None, *, verify: bool = True) -> Embedder:
        """Load the provisioned ONNX model and tokenizer.

        Args:
            model_dir: folder with `model.onnx`, `tokenizer.json`, `manifest.json`; defaults to
                `<settings.cache_dir>/embeddings/all-MiniLM-L6-v2`.
            threads: onnxruntime intra-op threads; defaults to `settings.embedding_threads`.
            verify: check the files' SHA-256 against `manifest.json` (~0.3 s for the 91 MB model).

        Raises:
            EmbedderUnavailable: a file is missing, its hash does not match the manifest, or
                onnxruntime/tokenizers cannot load it. The message names the file and tells the user
                to run `mmos models provision`.
        """
        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        onnx_path, tok_path = model_dir / ONNX_FILE, model_dir / TOKENIZER_FILE
        for p in (onnx_path, tok_path):
            if not p.is_file():
                raise EmbedderUnavailable(f"Embedding model file {p} not found. {_HOW_TO_FIX}")
        if verify:
            _verify_manifest(model_dir)
        if threads is None:
            from mmos_core.core.config import get_settings

            threads = get_settings().embedding_threads
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - both are core dependencies
            raise EmbedderUnavailable(f"onnxruntime/tokenizers are not installed ({e}).") from e

        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as e:
            raise EmbedderUnavailable(f"Cannot read tokenizer {tok_path}: {_short(e)}. {_HOW_TO_FIX}") from None
        tokenizer.no_padding()  # we pad per batch ourselves (to the longest member)
        tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only; never spam worker logs with warnings
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise EmbedderUnavailable(f"Cannot load ONNX model {onnx_path}: {_short(e)}. {_HOW_TO_FIX}") from None
        outputs = {o.name: o.shape for o in session.get_outputs()}
        inputs = {i.name for i in session.get_inputs()}
        if "sentence_embedding" not in outputs or not {"input_ids", "attention_mask"} <= inputs:
            raise EmbedderUnavailable(
                f"{onnx_path} is not the expected sentence-embedding export (inputs {sorted(inputs)}, "
                f"outputs {sorted(outputs)}). {_HOW_TO_FIX}"
            )
        return cls(session, tokenizer, model_dir)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed texts into unit-length vectors.

        Args:
            texts: the texts (any length; tokens beyond 256 are ignored, as in sentence-transformers).
                A bare `str` is rejected (it would be embedded letter by letter).
            batch_size: texts per onnxruntime call. Texts are sorted by token count before batching
                (less padding) and the result is returned in the input order.

        Returns:
            float32 array of shape (len(texts), 384), each row L2-normalised (norm 1 +- 1e-6);
            shape (0, 384) for empty input. Cosine similarity is the dot product of two rows.

        Raises:
            TypeError: `texts` is a str, or holds a non-str item.
            EmbedderUnavailable: onnxruntime failed at run time (e.g. the model file changed under us).
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single str; wrap it in a list")
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        batch_size = max(1, int(batch_size))
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = int(lengths[idx].max())
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, j in enumerate(idx):
                n = int(lengths[j])
                ids[row, :n] = encodings[j].ids
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            try:
                (vecs,) = self._session.run(["sentence_embedding"], feed)
            except Exception as e:
                raise EmbedderUnavailable(f"Embedding model failed at run time: {_short(e)}. {_HOW_TO_FIX}") from None
            out[idx] = vecs
        return out

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text: float32 vector of shape (384,), unit length."""
        return self.embed([text], batch_size=1)[0]


def _short(e: BaseException, limit: int = 300) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= limit else msg[:limit] + "..."


def _verify_manifest(model_dir: Path) -> dict:
    """Check model.onnx and tokenizer.json against manifest.json; return the manifest."""
    manifest_path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = manifest["files"]
    except FileNotFoundError:
        raise EmbedderUnavailable(f"{manifest_path} not found (incomplete provisioning). {_HOW_TO_FIX}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise EmbedderUnavailable(f"{manifest_path} is unreadable ({_short(e)}). {_HOW_TO_FIX}") from None
    for name in (ONNX_FILE, TOKENIZER_FILE):
        want = (expected.get(name) or {}).get("sha256")
        got = sha256_file(model_dir / name)
        if want != got:
            raise EmbedderUnavailable(
                f"{model_dir / name} is corrupt or was modified (sha256 {got[:12]}..., manifest says "
                f"{str(want)[:12]}...). {_HOW_TO_FIX}"
            )
    return manifest


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process-wide `Embedder` for the configured cache dir (loaded once, then reused).

    Raises `EmbedderUnavailable` (not cached; the next call retries) when the model is not provisioned.
    Call `get_embedder.cache_clear()` after re-provisioning in a long-lived process.
    """
    return Embedder.load()
