"""Per-fragment checks, stored in `fragment_checks` (rules in docs/quality.md, "Per-fragment checks").

* verbatim — a direct quote is `exact`, `near` (a misquote, with a word diff) or `not_found`
  (`analysis.fragment_checks.check_verbatim`); other fragment types are 'n/a';
* attribution — whose words the quote's span is: `person`, `other:NAME`, `editorial`, `mixed`, `unknown`
  (`analysis.fragment_checks.check_attribution` over the source's speaker turns);
* support baseline — cosine (0-1) between the insight and the quote with its context: the cheap
  embedding measure shown beside the LLM judge's verdict (`services.judging`).

Checks need no LLM, so they are recomputed whenever the person's speaker labels change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Integer, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.analysis.fragment_checks import check_attribution, check_verbatim
from mmos_core.core.vectors import Embed
from mmos_core.models import Fragment, FragmentCheck, JudgeVerdict, Source, SourceChunk
from mmos_core.services.speakers import person_labels_of, turns_of, validate_person_labels

__all__ = [
    "CHECKS_RULE",
    "SUPPORT_BASELINE_THRESHOLD",
    "FragmentChecks",
    "check_fragments",
    "checks_for",
    "set_person_labels",
]

#: Version of the check rules, stored with each row (`fragment_checks.rule_version`).
CHECKS_RULE = "checks-v1"
#: Cosine of insight vs quote + context at or above which the embedding baseline calls an insight
#: supported; docs/quality.md reports how often it agrees with the judge and with reviewers.
SUPPORT_BASELINE_THRESHOLD = 0.40


@dataclass(frozen=True)
class FragmentChecks:
    """A fragment's checks and its latest judge verdict, as Review, Comparison and exports show them."""

    fragment_id: int
    verbatim: str
    verbatim_similarity: float | None
    diff: list | None
    attribution: str
    support_baseline: float | None
    judge_support: str | None = None
    judge_model: str | None = None
    judge_category: str | None = None
    category_agrees: bool | None = None
    judge_reason: str | None = None
    judge_status: str | None = None

    @property
    def support(self) -> float | None:
        """Support 0-1: the judge's (yes 1, partly 0.5, no 0) when judged, else the baseline's 1/0."""
        if self.judge_support is not None:
            return {"yes": 1.0, "partly": 0.5, "no": 0.0}[self.judge_support]
        if self.support_baseline is None:
            return None
        return 1.0 if self.support_baseline >= SUPPORT_BASELINE_THRESHOLD else 0.0


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


def check_fragments(
    *, session: Session, fragment_ids: Sequence[int], embed: Embed | None = None, attribution_only: bool = False
) -> int:
    """Compute and store the checks of `fragment_ids` (replacing earlier rows). Does not commit.

    Args:
        embed: texts → (n, 384) unit vectors, for the support baseline; without it the baseline keeps
            its stored value (or stays None).
        attribution_only: recompute attribution only (after the person's labels changed).
    Returns:
        The number of fragments checked.
    """
    if not fragment_ids:
        return 0
    fragments = list(session.scalars(select(Fragment).where(Fragment.id.in_(list(fragment_ids))).order_by(Fragment.id)))
    existing = {c.fragment_id: c for c in session.scalars(select(FragmentCheck).where(FragmentCheck.fragment_id.in_(list(fragment_ids))))}
    sources: dict[int, tuple[Source, list, list[str]]] = {}
    baseline: dict[int, float] = {}
    if embed is not None and not attribution_only:
        todo = [f for f in fragments if f.insight]
        if todo:
            vi = embed([f.insight or "" for f in todo])
            vq = embed([f"{f.content} {f.context or ''}".strip() for f in todo])
            baseline = {f.id: round(max(0.0, _cos(a, b)), 4) for f, a, b in zip(todo, vi, vq, strict=True)}
    rows = []
    for f in fragments:
        if f.source_id not in sources:
            src = session.get(Source, f.source_id)
            sources[f.source_id] = (src, turns_of(src), person_labels_of(src))
        src, turns, persons = sources[f.source_id]
        old = existing.get(f.id)
        if f.fragment_type != "direct_quote" or not (f.content or "").strip():
            verbatim, sim, start, end, diff, attribution = "n/a", None, None, None, None, "n/a"
        elif attribution_only and old is not None:
            verbatim, sim, start, end, diff = old.verbatim, old.verbatim_similarity, old.span_start, old.span_end, old.diff
            attribution = check_attribution(start, end, turns, persons).label if start is not None and end is not None and end > start else "unknown"
        else:
            chunk = session.get(SourceChunk, f.chunk_id) if f.chunk_id else None
            v = check_verbatim(f.content, src.content, hint=(chunk.char_start, chunk.char_end) if chunk else None)
            verbatim, sim, start, end = v.status.value, v.similarity, v.char_start, v.char_end
            diff = [[e.op, e.quote, e.source] for e in v.edits] if v.edits else None
            attribution = (
                check_attribution(start, end, turns, persons).label if start is not None and end is not None and end > start else "unknown"
            )
        support = baseline.get(f.id, float(old.support_baseline) if old is not None and old.support_baseline is not None else None)
        rows.append({
            "fragment_id": f.id, "rule_version": CHECKS_RULE, "verbatim": verbatim, "verbatim_similarity": sim,
            "span_start": start, "span_end": end, "diff": diff, "attribution": attribution, "support_baseline": support,
        })
    stmt = pg_insert(FragmentCheck).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[FragmentCheck.fragment_id],
        set_={c: stmt.excluded[c] for c in ("rule_version", "verbatim", "verbatim_similarity", "span_start", "span_end",
                                            "diff", "attribution", "support_baseline")} | {"checked_at": stmt.excluded.checked_at},
    )
    session.execute(stmt)
    session.flush()
    return len(rows)


def set_person_labels(*, session: Session, source_id: int, labels: Sequence[str]) -> int:
    """Make `labels` the person's speaker labels on a source and re-run the attribution checks of
    its fragments (no LLM call). The caller re-scores the source's quality. Does not commit.

    Returns:
        How many fragments were re-checked.
    Raises:
        LookupError: no such source. ValueError: a label that is not one of the source's speakers.
    """
    source = session.get(Source, source_id)
    if source is None:
        raise LookupError(f"source {source_id} not found")
    source.person_labels = validate_person_labels(source, labels)
    session.flush()
    ids = list(session.scalars(select(Fragment.id).where(Fragment.source_id == source_id)))
    return check_fragments(session=session, fragment_ids=ids, attribution_only=True)


def checks_for(*, session: Session, fragment_ids: Sequence[int]) -> dict[int, FragmentChecks]:
    """The stored checks of `fragment_ids` with each one's latest successful judge verdict."""
    if not fragment_ids:
        return {}
    # one array parameter, not an IN list: psycopg spent seconds building the query text for tens of
    # thousands of ids (the calibration report, a source's fragments in `model_quality`)
    ids = bindparam("ids", [int(i) for i in fragment_ids], type_=ARRAY(Integer))
    verdicts: dict[int, JudgeVerdict] = {}
    for v in session.scalars(
        select(JudgeVerdict).where(JudgeVerdict.fragment_id == any_(ids), JudgeVerdict.status == "ok").order_by(JudgeVerdict.id)
    ):
        verdicts[v.fragment_id] = v  # the latest wins
    out = {}
    for c in session.scalars(select(FragmentCheck).where(FragmentCheck.fragment_id == any_(ids))):
        v = verdicts.get(c.fragment_id)
        out[c.fragment_id] = FragmentChecks(
            fragment_id=c.fragment_id, verbatim=c.verbatim,
            verbatim_similarity=None if c.verbatim_similarity is None else float(c.verbatim_similarity),
            diff=c.diff, attribution=c.attribution,
            support_baseline=None if c.support_baseline is None else float(c.support_baseline),
            judge_support=v.support if v else None, judge_model=v.judge_model if v else None,
            judge_category=v.judge_category if v else None, category_agrees=v.category_agrees if v else None,
            judge_reason=v.reason if v else None, judge_status=v.status if v else None,
        )
    return out

