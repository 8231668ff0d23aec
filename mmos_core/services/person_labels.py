"""Changing whose words are the person's on a source: re-check attribution, then re-score the source.

One entry point for the Sources page, `mmos speakers --person` and any script, so none of them has to know
that both steps belong together (docs/quality.md, "Per-fragment checks"). No LLM call is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from mmos_core.services.checks import set_person_labels
from mmos_core.services.quality import recompute_source

__all__ = ["change_person_labels"]


def change_person_labels(*, session: Session, source_id: int, labels: Sequence[str]) -> int:
    """Make `labels` the person's speaker labels, re-run the attribution checks of the source's fragments and
    re-score its batches (`model_performance`). Does not commit.

    Returns:
        How many fragments were re-checked.
    Raises:
        LookupError: no such source. ValueError: a label that is not one of the source's speakers.
    """
    n = set_person_labels(session=session, source_id=source_id, labels=labels)
    recompute_source(session=session, source_id=source_id)
    return n
