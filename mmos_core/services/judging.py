"""The LLM support judge over published fragments (docs/quality.md, "LLM support judge").

`judge_model_for` picks the judge (settings, else the strongest configured model); `fragments_to_judge`
chooses what a batch still needs judged; `judge_inputs` gathers a fragment's quote, context, insight and
source passage; `store_verdict` keeps one row per (fragment, judge, rubric), replacing a failed attempt.
The calls themselves run in the `JUDGE_BATCH` job (`workers/judging.py`), never in a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mmos_core.core.config import Settings, get_settings
from mmos_core.jobs.catalog import JUDGE_BATCH
from mmos_core.jobs.enqueue import enqueue
from mmos_core.llm.catalog import ModelSpec, available_models
from mmos_core.llm.judge import RUBRIC_VERSION, JudgeResult, choose_judge_model
from mmos_core.models import Fragment, JudgeVerdict, Source, SourceChunk

__all__ = ["JudgeInputs", "enqueue_judging", "fragments_to_judge", "judge_inputs", "judge_model_for", "store_verdict"]


def judge_model_for(settings: Settings | None = None) -> ModelSpec | None:
    """The judge model under `settings` (None: judging is off or no model is available).

    Raises:
        mmos_core.llm.catalog.UnknownModelError: `judge_model` names a model that is not available.
    """
    settings = settings or get_settings()
    return choose_judge_model(
        available_models(settings), enabled=settings.judge_enabled, override=settings.judge_model or None
    )


def enqueue_judging(batch_id: int, *, session: Session | None = None) -> str | None:
    """Queue the judge for a completed batch (when `session` commits, or at once); None when judging is off."""
    if not get_settings().judge_enabled:
        return None
    job_id = JUDGE_BATCH.job_id(batch_id)
    enqueue(JUDGE_BATCH, batch_id, job_id=job_id, session=session, description=f"judge batch {batch_id}")
    return job_id


def _spread(ids: list[int], limit: int) -> list[int]:
    """`limit` ids spread evenly over `ids` (all of them when limit is 0 or larger than the list)."""
    if not limit or len(ids) <= limit:
        return ids
    step = len(ids) / limit
    return [ids[int(i * step)] for i in range(limit)]


def fragments_to_judge(*, session: Session, batch_id: int, judge_model: str, limit: int | None = None) -> list[int]:
    """Ids of the batch's fragments (an even sample of `limit`, default `settings.judge_max_fragments`) that
    have no `ok` verdict from `judge_model` under the current rubric; malformed and failed ones are retried."""
    limit = get_settings().judge_max_fragments if limit is None else limit
    ids = list(session.scalars(select(Fragment.id).where(Fragment.batch_id == batch_id).order_by(Fragment.id)))
    done = set(
        session.scalars(
            select(JudgeVerdict.fragment_id).where(
                JudgeVerdict.fragment_id.in_(ids) if ids else JudgeVerdict.id.is_(None),
                JudgeVerdict.judge_model == judge_model,
                JudgeVerdict.rubric_version == RUBRIC_VERSION,
                JudgeVerdict.status == "ok",
            )
        )
    )
    return [i for i in _spread(ids, limit) if i not in done]


@dataclass(frozen=True)
class JudgeInputs:
    """What the judge reads of one fragment: its text fields, the person and the chunk it came from."""

    fragment_id: int
    quote: str
    context: str
    insight: str
    category: str
    person: str | None
    source_passage: str


def judge_inputs(*, session: Session, fragment_id: int) -> JudgeInputs:
    """The judge's inputs for one fragment (the passage is its chunk, or the source's start).

    Raises:
        LookupError: no such fragment.
    """
    f = session.get(Fragment, fragment_id)
    if f is None:
        raise LookupError(f"fragment {fragment_id} not found")
    source = session.get(Source, f.source_id)
    chunk = session.get(SourceChunk, f.chunk_id) if f.chunk_id else None
    passage = source.content[chunk.char_start:chunk.char_end] if chunk else source.content[:4000]
    return JudgeInputs(
        fragment_id=f.id, quote=f.content, context=f.context or "", insight=f.insight or "", category=f.category,
        person=source.person, source_passage=passage,
    )


def store_verdict(*, session: Session, fragment_id: int, result: JudgeResult) -> None:
    """Insert the verdict, or replace an earlier one of the same judge and rubric. Does not commit."""
    values = {
        "fragment_id": fragment_id, "judge_model": result.judge_model, "rubric_version": result.rubric_version,
        "status": result.status.value if hasattr(result.status, "value") else str(result.status),
        "support": result.support, "support_score": None if result.support_score is None else Decimal(str(result.support_score)),
        "judge_category": result.judge_category, "category_agrees": result.category_agrees, "reason": result.reason,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd, "latency_ms": result.latency_ms, "raw_answer": result.raw, "error_message": result.error,
    }
    stmt = pg_insert(JudgeVerdict).values(values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_judge_verdicts_fragment_judge",
        set_={k: stmt.excluded[k] for k in values if k not in ("fragment_id", "judge_model", "rubric_version")},
    )
    session.execute(stmt)
