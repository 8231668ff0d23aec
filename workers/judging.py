"""RQ job: the LLM support judge over one completed batch (`jobs.catalog.JUDGE_BATCH`).

Each call reserves its worst-case cost against the daily budget first and settles it with the verdict,
like an extraction call (docs/quality.md, "Budgets that hold"). A malformed or failed verdict is stored
as such; while retries are left the job fails at the end so RQ tries those fragments again, and the last
attempt keeps what it got. Publication never waits for this job.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rq import get_current_job
from sqlalchemy import select

from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.llm.catalog import price_snapshot
from mmos_core.llm.extraction import ProviderError
from mmos_core.llm.judge import JUDGE_MAX_TOKENS, JudgeResult, judge_fragment, judge_messages
from mmos_core.llm.rate_limits import ProviderLimits, RateLimited
from mmos_core.models import SourceProcessing
from mmos_core.services.budget_guard import BudgetExceeded, release, reserve_with_wait, settle, worst_case_call_cost
from mmos_core.services.judging import fragments_to_judge, judge_inputs, judge_model_for, store_verdict
from mmos_core.services.quality import recompute_source

log = logging.getLogger(__name__)


class JudgingIncomplete(RuntimeError):
    """Some verdicts were malformed or failed; RQ retries the job for those fragments."""


def run_judging(batch_id: int) -> dict[str, Any]:
    """Judge the batch's fragments that have no `ok` verdict yet, then re-score its source.

    Returns:
        {"batch_id", "judge_model", "judged", "failed"} or {"skipped": reason}.
    Raises:
        JudgingIncomplete: some verdicts failed and the job has retries left.
        BudgetExceeded: the daily budget cannot cover the next judge call.
    """
    spec = judge_model_for()
    if spec is None:
        return {"skipped": "judging is off or no judge model is available"}
    prices = price_snapshot(spec)
    settings = get_settings()
    limits = ProviderLimits.for_model(model_name=spec.name, provider=spec.provider, settings=settings)
    with session_scope() as session:
        todo = fragments_to_judge(session=session, batch_id=batch_id, judge_model=spec.name)
    judged = failed = 0
    for fragment_id in todo:
        with session_scope() as session:
            inputs = judge_inputs(session=session, fragment_id=fragment_id)
        messages = judge_messages(quote=inputs.quote, context=inputs.context, insight=inputs.insight,
                                  person=inputs.person, source_passage=inputs.source_passage)
        worst = worst_case_call_cost(spec=spec, prices=prices, messages=messages, max_tokens=JUDGE_MAX_TOKENS)
        tokens = limits.request_tokens(litellm_model=spec.litellm_model, messages=messages, max_tokens=JUDGE_MAX_TOKENS)
        waited = 0.0
        while True:
            # the judge draws on the same per-minute windows as extraction (docs/throughput.md)
            waited += limits.wait_for_room(tokens)
            reservation = reserve_with_wait(session_factory=session_scope, amount_usd=worst, model_name=spec.name,
                                            batch_id=batch_id)
            try:
                result = judge_fragment(spec=spec, prices=prices, quote=inputs.quote, context=inputs.context,
                                        insight=inputs.insight, category=inputs.category, person=inputs.person,
                                        source_passage=inputs.source_passage, limits=None if limits.unlimited else limits)
            except RateLimited as exc:
                with session_scope() as session:
                    release(session=session, reservation=reservation)
                pause = min(max(exc.retry_after_s or 1.0, 0.5), 60.0)
                if waited + pause > settings.llm_rate_limit_max_wait_s:
                    result = JudgeResult.from_provider_error(
                        ProviderError(f"{spec.name}: rate limited for over {settings.llm_rate_limit_max_wait_s} s",
                                      retryable=True, attempts=exc.attempts, duration_ms=exc.duration_ms),
                        judge_model=spec.name)
                    reservation = None  # already released
                    break
                time.sleep(pause)
                waited += pause
                continue
            except ProviderError as exc:
                result = JudgeResult.from_provider_error(exc, judge_model=spec.name)
            except BaseException:
                with session_scope() as session:
                    release(session=session, reservation=reservation)
                raise
            break
        with session_scope() as session:
            store_verdict(session=session, fragment_id=fragment_id, result=result)
            settle(session=session, reservation=reservation, cost_usd=result.cost_usd)
        if result.status.value == "ok":
            judged += 1
        else:
            failed += 1
            log.warning("judge %s on fragment %s: %s (%s)", spec.name, fragment_id, result.status.value, result.error)
    with session_scope() as session:
        for source_id in session.scalars(select(SourceProcessing.source_id).where(SourceProcessing.batch_id == batch_id)):
            recompute_source(session=session, source_id=source_id)
    job = get_current_job()
    if failed and job is not None and (job.retries_left or 0) > 0:
        raise JudgingIncomplete(f"{failed} of {len(todo)} verdicts malformed or failed; retrying those")
    return {"batch_id": batch_id, "judge_model": spec.name, "judged": judged, "failed": failed}


__all__ = ["BudgetExceeded", "JudgingIncomplete", "run_judging"]
