"""Inference audit trail (the monitoring design `asi_inferences`, `beam_tensors`, `sacred_interventions`,
`context_metrics`, `training_samples`): what every analysis inference measured, plus the seed's
conventions recorded beside it.

Measured values (the only numbers any quality figure may use)
------------------------------------------------------------
* ``confidence`` — grounding/support score of a text against its evidence (`grounding_confidence`):

      confidence = clip(max_i cos(text, evidence_i), 0, 1)

  where the vectors are the unit-length all-MiniLM-L6-v2 embeddings (cosine = dot product) and the
  evidence is a list of sentence windows from the source. A verbatim quote scores ~1.0, a faithful
  paraphrase ~0.6-0.7, an unrelated sentence ~0.0-0.1 (measured with this model on Darwin's text:
  paraphrases 0.67 / 0.69, off-topic sentences 0.05). No evidence → 0.0.
* ``hallucination_detected`` = ``confidence < GROUNDING_THRESHOLD`` (0.5): the midpoint between the
  off-topic band (< 0.3) and the paraphrase band (> 0.6) of all-MiniLM-L6-v2; 0.5 is also the usual
  cut-off for "same meaning" with this model. A loose inference that no window states (e.g. "Darwin
  was a patient observer", 0.27) is flagged: *ungrounded* here means "not supported by the text",
  which is exactly what the flag must tell a reviewer.
* ``archetype`` — the nearest of `ARCHETYPES` (one documented prototype sentence per MMOS fragment
  category) by cosine. The same prototypes are the zero-shot category classifier
  (`predict_category`) whose accuracy `zero_shot_accuracy` measures against reviewer corrections.
* ``elp_channels`` — ``{appeal: clip(cos(text, ELP_PROTOTYPES[appeal]), 0, 1)}`` for ethos, logos,
  pathos, rounded to 4 decimals.
* ``processing_time_ms`` — wall time of the inference as the caller measured it.

The monitoring design conventions (recorded, never fed back into a measured value)
---------------------------------------------------------------------
The seed gives these fields no measurable meaning; each is filled by a deterministic rule so the
same text always gets the same values, and nothing here reads them back into ``confidence``,
``hallucination_detected``, ``archetype`` or any quality score:

* ``flux_position`` (seed: ``flux_position INTEGER CHECK 0..9``) = the digital root (1-9) of the
  first 8 bytes of SHA-256 of the input text (UTF-8, stripped) read as an unsigned integer; 0 for an
  empty text. The digital root is the seed's own arithmetic: its vortex cycle 1→2→4→8→7→5 is the
  digital root of successive doublings.
* ``is_sacred`` = position in {3, 6, 9} (seed: "is_sacred -- Positions 3, 6, 9"; a generated column).
* ``vortex_intervention`` = ``is_sacred`` (seed's example: ``flux_position: 9 … vortex_intervention:
  true // Sacred position boost``). When it is true a `sacred_interventions` row records the seed's
  boost: ``position``, ``signal_before = confidence``, ``confidence_boost = 0.15`` ("Typically 0.15
  (15%)"), ``signal_after = min(1, confidence + 0.15)`` (the seed's example: 0.72 → 0.87, additive),
  ``intervention_type = 'magnification'`` (the seed's example). The boost is only stored there.
* ``beam_tensors.digits`` (seed: ``digits REAL[9] -- 9-position tensor``): positions 1-8 are the
  text's similarity clip(cos, 0, 1) to the 8 `ARCHETYPES` prototypes in `CATEGORIES` order; position 9
  (the seed's "divine position") holds the measured confidence. A layout, not a new measurement.
* ``context_metrics`` (only when the caller passes ``token_count``): ``retention_rate`` is measured
  (share of tokens inside the embedder's 256-token window); ``sacred_checkpoints`` = [flux position]
  when sacred; ``vortex_cycle_count`` = token_count // 6 (complete 1→2→4→8→7→5 cycles over the token
  positions) — recorded only.
* ``lake_worthy`` = `mmos_core.storage.lake.is_lake_worthy(confidence, hallucination, flux_position)`, the
  seed's entry rule. Lake-worthy inferences are offered to the confidence lake **after the session
  commits** (a rolled-back inference never reaches the lake); lake failures are logged, never raised.

Like every service these functions never commit.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, select
from sqlalchemy.orm import Session

# confidence below GROUNDING_THRESHOLD = hallucination (why 0.5: module docstring); one rule shared
# with measured quality's grounding, so the audit and the quality score say the same of a fragment
from mmos_core.analysis.quality_score import GROUNDING_THRESHOLD
from mmos_core.core.domain import CATEGORIES
from mmos_core.core.vectors import Embed
from mmos_core.embeddings.embedder import MODEL_NAME
from mmos_core.models import (
    SACRED_POSITIONS,
    AsiInference,
    BeamTensor,
    ContextMetric,
    Fragment,
    OnnxModel,
    SacredIntervention,
    Source,
    SourceChunk,
    TrainingSample,
)
from mmos_core.services.model_registry import cached_registry_embedder
from mmos_core.storage import signals as live_signals
from mmos_core.storage.lake import LakeEntry, get_lake, is_lake_worthy
from mmos_core.text.sentences import split_sentences

log = logging.getLogger(__name__)


#: the monitoring design: "confidence_boost REAL NOT NULL -- Typically 0.15 (15%)"; recorded only.
SEED_CONFIDENCE_BOOST = 0.15
SEED_INTERVENTION_TYPE = "magnification"
#: characters of source text taken either side of a fragment's location as its evidence.
EVIDENCE_PAD_CHARS = 600
#: consecutive sentences joined into one evidence window (1, 2 and 3), so a quote that spans
#: sentence boundaries still meets a window that contains it whole.
WINDOW_SIZES = (1, 2, 3)
MAX_EVIDENCE_SENTENCES = 200
EMBEDDER_WINDOW_TOKENS = 256
VORTEX_CYCLE = (1, 2, 4, 8, 7, 5)

#: One prototype sentence per MMOS fragment category (`mmos_core.core.domain.CATEGORIES`, same order).
#: `archetype` = nearest prototype; also the zero-shot category classifier.
ARCHETYPES: dict[str, str] = {
    "Biographical": "Facts about the person's life: birth, family, schooling, places lived, jobs and dates.",
    "Cognitive": "How the person thinks and reasons: their ideas, methods of analysis, knowledge and problem solving.",
    "Communicative": "How the person speaks and writes: their style, tone, choice of words and way of explaining.",
    "Behavioral": "What the person habitually does: routines, actions, working habits and hobbies.",
    "Values and Beliefs": "What the person believes and values: principles, morals, religion and convictions.",
    "Social": "The person's relationships with others: family, friends, colleagues, mentors and society.",
    "Emotional": "The person's feelings and moods: joy, pleasure, fear, grief, anxiety and passion.",
    "Meta-cognitive": "The person reflecting on their own mind: awareness of their strengths, weaknesses and how they learn.",
}
assert tuple(ARCHETYPES) == CATEGORIES

#: Aristotle's three rhetorical appeals, scored as the text's similarity to each description.
ELP_PROTOTYPES: dict[str, str] = {
    "ethos": "An appeal to character and credibility: the speaker's authority, experience, honesty and trustworthiness.",
    "logos": "An appeal to reason and evidence: facts, data, logical argument, causes and conclusions.",
    "pathos": "An appeal to emotion: feelings, passion, sympathy, fear, love and suffering.",
}


# --- prototypes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prototypes:
    archetypes: np.ndarray  # (8, 384), rows in CATEGORIES order
    elp: np.ndarray  # (3, 384): ethos, logos, pathos


_PROTO_CACHE: dict[str, Prototypes] = {}
_PROTO_LOCK = threading.Lock()


def _model_key(embed: Embed) -> str:
    """Cache key of an embed callable: the embedder's model folder (e.g. fp32 vs int8), else its name."""
    owner = getattr(embed, "__self__", None)
    model_dir = getattr(owner, "model_dir", None)
    if model_dir is not None:
        return str(model_dir)
    return getattr(embed, "model_name", None) or f"{type(owner or embed).__qualname__}:{id(owner or embed)}"


def prototypes(embed: Embed) -> Prototypes:
    """Embeddings of `ARCHETYPES` and `ELP_PROTOTYPES`, computed once per process and model."""
    key = _model_key(embed)
    cached = _PROTO_CACHE.get(key)
    if cached is not None:
        return cached
    with _PROTO_LOCK:
        if key not in _PROTO_CACHE:
            vecs = _unit(embed([*ARCHETYPES.values(), *ELP_PROTOTYPES.values()]))
            _PROTO_CACHE[key] = Prototypes(archetypes=vecs[: len(ARCHETYPES)], elp=vecs[len(ARCHETYPES):])
        return _PROTO_CACHE[key]


def _unit(a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    norm = np.linalg.norm(a, axis=-1, keepdims=True)
    return a / np.where(norm == 0, 1, norm)


# --- measured ------------------------------------------------------------------------------------


def grounding_confidence(text_vec: Any, evidence_vecs: Any) -> float:
    """clip(max cosine of `text_vec` against the rows of `evidence_vecs`, 0, 1); 0.0 without evidence."""
    ev = np.asarray(evidence_vecs, dtype=np.float32)
    if ev.size == 0:
        return 0.0
    sims = _unit(ev.reshape(-1, ev.shape[-1])) @ _unit(text_vec).reshape(-1)
    return float(np.clip(sims.max(), 0.0, 1.0))


def is_hallucination(confidence: float) -> bool:
    return confidence < GROUNDING_THRESHOLD


def archetype_scores(text_vec: Any, protos: Prototypes) -> dict[str, float]:
    sims = protos.archetypes @ _unit(text_vec).reshape(-1)
    return dict(zip(ARCHETYPES, (float(s) for s in sims), strict=True))


def nearest_archetype(text_vec: Any, protos: Prototypes) -> str:
    scores = archetype_scores(text_vec, protos)
    return max(scores, key=scores.__getitem__)


def elp_channels(text_vec: Any, protos: Prototypes) -> dict[str, float]:
    sims = protos.elp @ _unit(text_vec).reshape(-1)
    return {k: round(float(np.clip(s, 0.0, 1.0)), 4) for k, s in zip(ELP_PROTOTYPES, sims, strict=True)}


def predict_category(text_vec: Any, embed: Embed) -> str:
    """Zero-shot category: the category whose `ARCHETYPES` prototype is nearest by cosine."""
    return nearest_archetype(text_vec, prototypes(embed))


# --- seed conventions ----------------------------------------------------------------------------


def flux_position(text: str) -> int:
    """Seed convention: digital root (1-9) of SHA-256(text.strip())[:8] as an integer; 0 for ''."""
    text = (text or "").strip()
    if not text:
        return 0
    n = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return 0 if n == 0 else 1 + (n - 1) % 9


def beam_digits(text_vec: Any, confidence: float, protos: Prototypes) -> list[float]:
    """Seed convention: 8 archetype similarities (clipped to 0-1, CATEGORIES order) + confidence."""
    sims = np.clip(protos.archetypes @ _unit(text_vec).reshape(-1), 0.0, 1.0)
    return [round(float(s), 4) for s in sims] + [round(float(confidence), 4)]


def seed_signal_after(confidence: float) -> float:
    """Seed's 'sacred boost', recorded in sacred_interventions.signal_after only: min(1, c + 0.15)."""
    return min(1.0, confidence + SEED_CONFIDENCE_BOOST)


# --- lake: offered after commit ------------------------------------------------------------------

_PENDING = "inference_log.lake_pending"
_HOOKED = "inference_log.lake_hooked"


_SIGNALS = "inference_log.pending_signals"


def _queue_after_commit(session: Session, key: str, item: Any) -> None:
    # Listeners are attached once per session and stay (sessions are short-lived); the pending
    # lists are emptied at every commit (sent) and rollback (dropped).
    if not session.info.get(_HOOKED):
        event.listen(session, "after_commit", _offer_pending)
        event.listen(session, "after_rollback", _drop_pending)
        session.info[_HOOKED] = True
    session.info.setdefault(key, []).append(item)


def _queue_for_lake(session: Session, entry: LakeEntry) -> None:
    _queue_after_commit(session, _PENDING, entry)


def _embed_model_name(embed: Embed | None) -> str:
    model_dir = getattr(getattr(embed, "__self__", None), "model_dir", None)
    return Path(model_dir).name if model_dir is not None else MODEL_NAME


def _offer_pending(session: Session) -> None:
    entries = session.info.pop(_PENDING, None) or []
    signals = session.info.pop(_SIGNALS, None) or []
    if signals:
        for signal in signals:
            try:
                live_signals.record_signal(signal.pop("value"), **signal)
            except Exception:  # live signals are best effort: never fail committed work
                log.exception("Could not record a real-time signal")
    if not entries:
        return
    try:
        get_lake().offer(entries)
    except Exception:  # the lake is an archive: never fail the caller's committed work
        log.exception("Could not append %d inference(s) to the confidence lake", len(entries))


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_SIGNALS, None)


# --- writing -------------------------------------------------------------------------------------


def _default_embed() -> Embed:
    return cached_registry_embedder().embed


def log_inference(
    *,
    session: Session,
    kind: str,
    text: str,
    embedding: Any,
    confidence: float | None = None,
    evidence: Sequence[str] | np.ndarray | None = None,
    model_id: int | None = None,
    fragment_id: int | None = None,
    processing_time_ms: float,
    embed: Embed | None = None,
    token_count: int | None = None,
) -> AsiInference:
    """Write one `asi_inferences` row (+ its `beam_tensors` row, a `sacred_interventions` row when the
    seed's rule says so, a `context_metrics` row when `token_count` is given). Never commits.

    Args:
        kind: 'fragment_grounding', 'message_analysis' or 'search_query'.
        embedding: the text's 384-d vector.
        confidence: the measured 0-1 support score; when None it is computed from `evidence`
            (texts, embedded with `embed`, or an (n, 384) array) by `grounding_confidence`.
        embed: texts → unit vectors (default: the ONNX embedder); used for the prototypes.
    The hallucination flag is always `confidence < GROUNDING_THRESHOLD`; the seed's conventions are
    derived from `text` and stored beside the measured values, never instead of them.
    """
    embed = embed or _default_embed()
    vec = _unit(embedding).reshape(-1)
    if confidence is None:
        if evidence is None:
            raise ValueError("log_inference needs a confidence or the evidence to measure it against.")
        ev = evidence
        if len(ev) and isinstance(ev[0], str):
            ev = embed(list(ev))
        confidence = grounding_confidence(vec, ev)
    confidence = float(np.clip(confidence, 0.0, 1.0))
    hallucination = is_hallucination(confidence)
    protos = prototypes(embed)
    position = flux_position(text)
    sacred = position in SACRED_POSITIONS
    worthy = is_lake_worthy(confidence, hallucination, position)

    beam = BeamTensor(
        digits=beam_digits(vec, confidence, protos), confidence=confidence,
        elp_channels=elp_channels(vec, protos), flux_position=position,
    )
    session.add(beam)
    session.flush()
    row = AsiInference(
        kind=kind, input_text=text, beam_tensor_id=beam.id, onnx_model_id=model_id, fragment_id=fragment_id,
        semantic_embedding=vec.tolist(), flux_position=position, archetype=nearest_archetype(vec, protos),
        confidence=confidence, hallucination_detected=hallucination, vortex_intervention=sacred,
        lake_worthy=worthy, processing_time_ms=max(0.0, float(processing_time_ms)),
    )
    session.add(row)
    session.flush()
    if sacred:
        session.add(SacredIntervention(
            inference_id=row.id, position=position, signal_before=confidence,
            signal_after=seed_signal_after(confidence), confidence_boost=SEED_CONFIDENCE_BOOST,
            intervention_type=SEED_INTERVENTION_TYPE,
        ))
    if token_count is not None:
        session.add(ContextMetric(
            inference_id=row.id, token_count=token_count, context_window_size=EMBEDDER_WINDOW_TOKENS,
            retention_rate=min(token_count, EMBEDDER_WINDOW_TOKENS) / token_count if token_count else 1.0,
            sacred_checkpoints=[position] if sacred else [],
            vortex_cycle_count=token_count // len(VORTEX_CYCLE),
        ))
    session.flush()
    model = session.get(OnnxModel, model_id) if model_id is not None else None
    # the monitoring design's Redis real-time keys, written after commit (a rolled-back inference never shows)
    _queue_after_commit(session, _SIGNALS, dict(
        value=float(confidence), model_name=model.name if model else _embed_model_name(embed),
        latency_ms=float(processing_time_ms), hallucination=bool(hallucination), inference_id=str(row.id),
        sacred_position=position if sacred else None, boost=SEED_CONFIDENCE_BOOST if sacred else None,
    ))
    if worthy:
        _queue_for_lake(session, LakeEntry(
            text=text, embedding=vec, confidence=confidence, model=model.name if model else MODEL_NAME,
            sacred_position=position, hallucination_detected=hallucination, inference_id=str(row.id),
        ))
    return row


def sentence_windows(text: str) -> list[str]:
    """Every run of 1, 2 and 3 consecutive sentences (`WINDOW_SIZES`), joined by one space,
    de-duplicated, in order; the sentences are `mmos_core.text.sentences.split_sentences` (prose:
    hard-wrapped line breaks do not end a sentence), the first `MAX_EVIDENCE_SENTENCES` of them."""
    sents = split_sentences(text)[:MAX_EVIDENCE_SENTENCES]
    seen: dict[str, None] = {}
    for size in WINDOW_SIZES:
        for i in range(0, max(0, len(sents) - size + 1)):
            seen.setdefault(" ".join(sents[i : i + size]), None)
    return list(seen)


def evidence_windows(source: Source, chunk: SourceChunk | None, fragment: Fragment) -> list[str]:
    """Evidence for a fragment: sentence windows of the source ± `EVIDENCE_PAD_CHARS` around its
    location (`char_start`/`char_end`; for paraphrases and inferences this is their chunk), else
    around its chunk; plus the located span itself."""
    content = source.content or ""
    if fragment.char_start is not None and fragment.char_end is not None:
        start, end = fragment.char_start, fragment.char_end
    elif chunk is not None:
        start, end = chunk.char_start, chunk.char_end
    else:
        return []
    windows = sentence_windows(content[max(0, start - EVIDENCE_PAD_CHARS) : end + EVIDENCE_PAD_CHARS])
    span = content[start:end].strip()
    if span and span not in windows:
        windows.append(span)
    return windows


def log_grounding_for_batch(*, session: Session, batch_id: int, embed: Embed,
                            model_id: int | None = None) -> list[AsiInference]:
    """One `fragment_grounding` inference per fragment of the batch: its content against the
    sentence windows of its source location. Window embeddings are shared within the call."""
    fragments = session.scalars(select(Fragment).where(Fragment.batch_id == batch_id).order_by(Fragment.id)).all()
    cache: dict[str, np.ndarray] = {}
    sources: dict[int, Source] = {}
    out = []
    for fragment in fragments:
        t0 = time.perf_counter()
        source = sources.get(fragment.source_id) or sources.setdefault(
            fragment.source_id, session.get(Source, fragment.source_id))
        chunk = session.get(SourceChunk, fragment.chunk_id) if fragment.chunk_id else None
        windows = evidence_windows(source, chunk, fragment)
        new = [w for w in windows if w not in cache]
        if new:
            cache.update(zip(new, _unit(embed(new)), strict=True))
        if fragment.embedding is not None:
            vec = np.asarray(fragment.embedding, dtype=np.float32)
        else:
            vec = _unit(embed([fragment.content]))[0]
        evidence = np.stack([cache[w] for w in windows]) if windows else np.zeros((0, vec.shape[-1]), np.float32)
        confidence = grounding_confidence(vec, evidence)
        elapsed = (time.perf_counter() - t0) * 1000
        out.append(log_inference(
            session=session, kind="fragment_grounding", text=fragment.content, embedding=vec,
            confidence=confidence, model_id=model_id, fragment_id=fragment.id,
            processing_time_ms=elapsed, embed=embed,
        ))
    return out


def log_search_query(*, session: Session, query: str, embedding: Any, processing_time_ms: float,
                     embed: Embed | None = None, model_id: int | None = None) -> AsiInference:
    """A `search_query` inference. Its confidence is the measured support of the query in the corpus:
    clip(cosine to the nearest fragment, 0, 1) (pgvector); no fragments → 0 (flagged ungrounded)."""
    vec = _unit(embedding).reshape(-1)
    distance = session.scalar(
        select(Fragment.embedding.cosine_distance(vec.tolist()))
        .where(Fragment.embedding.is_not(None))
        .order_by(Fragment.embedding.cosine_distance(vec.tolist()))
        .limit(1)
    )
    confidence = 0.0 if distance is None else float(np.clip(1.0 - float(distance), 0.0, 1.0))
    return log_inference(session=session, kind="search_query", text=query, embedding=vec, confidence=confidence,
                         model_id=model_id, processing_time_ms=processing_time_ms, embed=embed)


# --- training samples ----------------------------------------------------------------------------


def record_category_correction(
    *,
    session: Session,
    fragment_id: int,
    expected_category: str,
    predicted_category: str | None = None,
    user_id: int | None = None,
    model_id: int | None = None,
    embed: Embed | None = None,
) -> TrainingSample:
    """A reviewer's category correction as a `training_samples` row (label_kind 'category').

    `expected_category` is the reviewer's label. `predicted_category` is the zero-shot prediction:
    when None it is computed as the category whose `ARCHETYPES` prototype is nearest to the
    fragment's embedding (`predict_category`). Never commits.
    """
    if expected_category not in CATEGORIES:
        raise ValueError(f"Unknown category {expected_category!r}")
    fragment = session.get(Fragment, fragment_id)
    if fragment is None:
        raise ValueError(f"No fragment {fragment_id}.")
    if predicted_category is None:
        embed = embed or _default_embed()
        vec = fragment.embedding if fragment.embedding is not None else embed([fragment.content])[0]
        predicted_category = predict_category(vec, embed)
    sample = TrainingSample(
        input_text=fragment.content, label_kind="category", expected_category=expected_category,
        predicted_category=predicted_category, fragment_id=fragment.id, model_id=model_id, created_by=user_id,
    )
    session.add(sample)
    session.flush()
    return sample


def zero_shot_accuracy(*, session: Session) -> dict[str, float | int | None]:
    """{n, accuracy}: share of category training samples whose predicted equals expected category
    (accuracy None when there are none)."""
    rows = session.execute(
        select(TrainingSample.expected_category, TrainingSample.predicted_category).where(
            TrainingSample.label_kind == "category",
            TrainingSample.expected_category.is_not(None),
            TrainingSample.predicted_category.is_not(None),
        )
    ).all()
    n = len(rows)
    hits = sum(1 for expected, predicted in rows if expected == predicted)
    return {"n": n, "accuracy": (hits / n) if n else None}
