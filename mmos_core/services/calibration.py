"""How well the automatic checks agree with reviewers, and how well reviewers agree with each other
(docs/quality.md, "Calibration of the checks" and "Reviewer agreement").

`calibration` pairs every fragment that has a reviewer's verdict with its stored checks and judge verdict
and hands them to `analysis.calibration.calibration_report`; `reviewer_agreement` computes Cohen's kappa
for each pair of reviewers on the fragments both judged (overall, and per reject reason as a yes/no
dimension); `reviewer_progress` counts each reviewer's verdicts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.analysis.calibration import (
    ATTRIBUTION_SCORES,
    PASS_THRESHOLDS,
    REJECT_REASONS,
    CalibrationReport,
    CalibrationRow,
    Estimate,
    calibration_report,
    cohen_kappa,
)
from mmos_core.analysis.quality_score import WEIGHTS
from mmos_core.core.config import get_settings
from mmos_core.models import Fragment, ReviewVerdict, Source, User
from mmos_core.services.checks import SUPPORT_BASELINE_THRESHOLD, FragmentChecks, checks_for
from mmos_core.services.data_version import per_source, source_versions

__all__ = ["KappaRow", "ReviewerProgress", "calibration", "fragment_score", "reviewer_agreement", "reviewer_progress"]


def fragment_score(fragment_type: str, c: FragmentChecks | None) -> float | None:
    """A fragment's own 0-10 score under the batch rule's grounding and support weights: 10 × (w_G·g + w_S·s) /
    (w_G + w_S), g = 1 when a direct quote is exact and the person's (paraphrases: not scored here, g omitted).
    None when neither part is known."""
    if c is None:
        return None
    parts: list[tuple[float, float]] = []
    if fragment_type == "direct_quote" and c.verbatim != "n/a":
        parts.append((WEIGHTS["grounding"], 1.0 if c.verbatim == "exact" and c.attribution == "person" else 0.0))
    if c.support is not None:
        parts.append((WEIGHTS["support"], c.support))
    if not parts:
        return None
    return round(10 * sum(w * v for w, v in parts) / sum(w for w, _ in parts), 2)


def _attribution_kind(label: str) -> str | None:
    if label in ("n/a", "unknown"):
        return None
    return label.split(":", 1)[0]


def _calibration_rows(session: Session, source_id: int) -> tuple[CalibrationRow, ...]:
    """The `CalibrationRow` of every fragment of the source with a verdict."""
    reviewed = session.execute(
        select(Fragment.id, Fragment.fragment_type, Fragment.verified, Fragment.rejected, Fragment.reject_reason)
        .where(Fragment.source_id == source_id, (Fragment.verified.is_(True)) | (Fragment.rejected.is_(True)))
        .order_by(Fragment.id)
    ).all()
    checks = checks_for(session=session, fragment_ids=[r.id for r in reviewed])
    rows = []
    for r in reviewed:
        c = checks.get(r.id)
        verdict = "rejected" if r.rejected else "verified"
        reason = r.reject_reason if verdict == "rejected" and r.reject_reason in REJECT_REASONS else None
        quote = c is not None and c.verbatim != "n/a"
        rows.append(CalibrationRow(
            verdict=verdict, reject_reason=reason,
            verbatim=(c.verbatim == "exact") if quote else None,
            attribution=_attribution_kind(c.attribution) if quote else None,
            support_score={"yes": 1.0, "partly": 0.5, "no": 0.0}.get(c.judge_support) if c and c.judge_support else None,
            category_agrees=c.category_agrees if c else None,
            composite=fragment_score(r.fragment_type, c),
            support_baseline=c.support_baseline if c else None,
        ))
    return tuple(rows)


def calibration(*, session: Session, source_ids: Sequence[int] | None = None, min_verdicts: int | None = None) -> CalibrationReport:
    """The calibration report over every fragment with a verdict (optionally of some sources).

    Rows: verdict and reject reason from the fragment; verbatim (exact → pass), attribution kind, the judge's
    support score, the embedding support baseline, the judge's category agreement, and `fragment_score`.
    """
    min_verdicts = min_verdicts or get_settings().calibration_min_verdicts
    ids = list(dict.fromkeys(source_ids)) if source_ids is not None else list(session.scalars(select(Source.id).order_by(Source.id)))
    versions = source_versions(session=session)
    rows: list[CalibrationRow] = []
    for sid in ids:  # each source's rows are read once per fingerprint of the source (services.data_version)
        def compute(sid=sid):
            return _calibration_rows(session, sid)
        rows += per_source("calibration", sid, versions[sid], None, compute) if sid in versions else compute()
    thresholds = dict(PASS_THRESHOLDS) | {"support_baseline": SUPPORT_BASELINE_THRESHOLD}
    return calibration_report(rows, min_verdicts, attribution_scores=ATTRIBUTION_SCORES, thresholds=thresholds)


@dataclass(frozen=True)
class KappaRow:
    """Cohen's kappa of two reviewers on one dimension ('verdict' or a reject reason as yes/no), with the
    number of fragments both judged; `kappa.value` is None when it is undefined (one category only)."""

    reviewer_a: str
    reviewer_b: str
    dimension: str
    n: int
    kappa: Estimate


def reviewer_agreement(*, session: Session) -> list[KappaRow]:
    """Cohen's kappa (sklearn, bootstrap interval) per reviewer pair on the fragments both judged: on the
    verdict, and on each reject reason as its own yes/no dimension (rejected for that reason or not)."""
    rows = session.execute(
        select(User.username, ReviewVerdict.fragment_id, ReviewVerdict.verdict, ReviewVerdict.reason)
        .join(User, User.id == ReviewVerdict.user_id)
    ).all()
    by_user: dict[str, dict[int, tuple[str, str | None]]] = defaultdict(dict)
    for name, fid, verdict, reason in rows:
        by_user[name][fid] = (verdict, reason)
    out = []
    for a, b in combinations(sorted(by_user), 2):
        common = sorted(set(by_user[a]) & set(by_user[b]))
        if not common:
            continue
        va = [by_user[a][f] for f in common]
        vb = [by_user[b][f] for f in common]
        out.append(KappaRow(a, b, "verdict", len(common), cohen_kappa([v for v, _ in va], [v for v, _ in vb])))
        for reason in REJECT_REASONS:
            ya = [v == "rejected" and r == reason for v, r in va]
            yb = [v == "rejected" and r == reason for v, r in vb]
            if any(ya) or any(yb):
                out.append(KappaRow(a, b, reason, len(common), cohen_kappa(ya, yb)))
    return out


@dataclass(frozen=True)
class ReviewerProgress:
    """One reviewer's own verdicts: how many, verified, rejected."""

    reviewer: str
    verdicts: int
    verified: int
    rejected: int


def reviewer_progress(*, session: Session) -> list[ReviewerProgress]:
    """Verdicts per reviewer (their own rows in `review_verdicts`), most first."""
    rows = session.execute(
        select(
            User.username,
            func.count(),
            func.count().filter(ReviewVerdict.verdict == "verified"),
            func.count().filter(ReviewVerdict.verdict == "rejected"),
        )
        .join(User, User.id == ReviewVerdict.user_id)
        .group_by(User.username)
        .order_by(func.count().desc(), User.username)
    ).all()
    return [ReviewerProgress(name, int(n), int(v), int(r)) for name, n, v, r in rows]
