"""A cheap fingerprint of the data the quality figures are computed from (docs/quality.md).

Pages cache expensive read-only reports (pooled quality per model, the sweet spot, cascade replay,
cross-batch QA, calibration) keyed on `data_version`: one query of small aggregates that changes
whenever a row those reports read is added, reviewed, judged, checked or deleted, so a rerun with
unchanged data reuses the cached figures and any change recomputes them (bench/README.md, page timings).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import (
    AsiInference,
    ExtractionCall,
    Fragment,
    FragmentCheck,
    FragmentEdit,
    FragmentRelationship,
    JudgeVerdict,
    ModelPerformance,
    ProcessingBatch,
    ReviewVerdict,
    Source,
    SourceProcessing,
    UserFeedback,
)


def data_version(*, session: Session) -> tuple:
    """Aggregates that move with every change quality, replay, QA and calibration can see, in one query.

    Fragments: count, max id and how many are verified / rejected (index-only scans of the primary key
    and `ix_fragments_review`; a max over `verified_at` would read the whole table, ~75 ms at 100,000);
    a reviewer's verdict also upserts or deletes their `review_verdicts` row (services/review/verdicts.py),
    so its count and latest `updated_at` catch a verify and an un-verify between two reruns. Then edits,
    relationships, checks, judge verdicts, feedback, grounding audit rows, calls, batches (count,
    completed ones, latest completion, total cost), their source links, sources and model_performance rows.
    """
    def scalar(col, *where):
        return select(col).where(*where).scalar_subquery()

    row = session.execute(select(
        scalar(func.count(Fragment.id)), scalar(func.max(Fragment.id)),
        scalar(func.count(), Fragment.verified.is_(True)), scalar(func.count(), Fragment.rejected.is_(True)),
        scalar(func.max(FragmentEdit.id)), scalar(func.count(FragmentRelationship.id)),
        scalar(func.max(FragmentRelationship.id)), scalar(func.count(FragmentCheck.fragment_id)),
        scalar(func.max(JudgeVerdict.id)), scalar(func.count(ReviewVerdict.id)), scalar(func.max(ReviewVerdict.updated_at)),
        scalar(func.count(UserFeedback.id)), scalar(func.max(UserFeedback.id)), scalar(func.max(AsiInference.id)),
        scalar(func.max(ExtractionCall.id)), scalar(func.count(ProcessingBatch.id)),
        scalar(func.count(), ProcessingBatch.batch_status == "completed"),
        scalar(func.max(ProcessingBatch.completed_at)), scalar(func.sum(ProcessingBatch.estimated_cost_usd)),
        scalar(func.count(SourceProcessing.id)), scalar(func.count(Source.id)), scalar(func.max(Source.id)),
        scalar(func.max(ModelPerformance.id)),
    )).one()
    return tuple(str(v) for v in row)
