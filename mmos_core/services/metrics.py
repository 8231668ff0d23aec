"""Prometheus metrics of the workbench, computed at each scrape from PostgreSQL and Redis (docs/deploy.md, "Metrics").

Nothing is counted in process memory: every figure is read from the tables the pages read (batches, fragments,
`extraction_calls`, the daily budget) and from RQ in Redis, so any number of UI / worker processes agree and a
restart loses nothing. `mmos prometheus serve` exposes `build_registry()` over HTTP; Grafana's dashboard is
`deploy/grafana/mmos-dashboard.json`.

Series (labels in braces; money in USD, durations in seconds, days are UTC):

* `mmos_batches{model,status}` — processing batches per model and status (pending, processing, completed, failed);
* `mmos_fragments{model}` — published fragments per model of their batch;
* `mmos_llm_calls_total{model,status}` — extraction LLM calls (ok, malformed, provider_error), one per chunk attempt;
* `mmos_llm_call_errors_total{model}` — calls whose status is not ok;
* `mmos_llm_call_duration_seconds{model}` — histogram of call durations (`_bucket`, `_sum`, `_count`);
* `mmos_llm_tokens_total{model,direction}` — input / output tokens from the providers' usage;
* `mmos_llm_cost_usd_total{model}` — USD recorded on the calls (litellm's price map, frozen per batch);
* `mmos_rq_queue_depth{queue}` — jobs waiting in each RQ queue (high, default, low);
* `mmos_rq_jobs{queue,state}` — jobs in RQ's started / scheduled / deferred / failed / finished registries;
* `mmos_rq_workers{state}` — registered RQ workers (all, busy);
* `mmos_budget_spent_today_usd`, `mmos_budget_held_today_usd` — today's recorded spend and still-held reservations;
* `mmos_budget_daily_limit_usd`, `mmos_budget_used_ratio` — the daily cap and (spent + held) / cap, only when a cap is set;
* `mmos_up{component}` — 1 when postgres / redis answered this scrape, 0 when not (their series are then absent);
* `mmos_scrape_duration_seconds` — time this scrape took.

`*_total` series are counters derived from table totals: deleting batches lowers them, which Prometheus reads as
a counter reset.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.core.domain import RQ_QUEUES
from mmos_core.models import ExtractionCall, Fragment, ProcessingBatch
from mmos_core.services.budget_guard import held_today
from mmos_core.services.budgets import get_budget, spent_on_day

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the LLM call duration histogram: local models take 1-60 s per chunk, cloud ones 1-20 s.
DURATION_BUCKETS_S: tuple[float, ...] = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
RQ_STATES = ("started", "scheduled", "deferred", "failed", "finished")


@dataclass
class DatabaseFigures:
    """What PostgreSQL says at one instant. Keys are model names (the batch's `model_name`)."""

    batches: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, status) → batches
    fragments: dict[str, int] = field(default_factory=dict)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, call status) → calls
    duration_buckets: dict[str, list[int]] = field(default_factory=dict)  # model → cumulative counts per bucket
    duration_sum_s: dict[str, float] = field(default_factory=dict)
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, "input" | "output") → tokens
    cost_usd: dict[str, float] = field(default_factory=dict)
    spent_today_usd: float = 0.0
    held_today_usd: float = 0.0
    daily_limit_usd: float | None = None


@dataclass
class RedisFigures:
    """What RQ in Redis says at one instant."""

    queue_depth: dict[str, int] = field(default_factory=dict)
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, state) → jobs
    workers: int = 0
    busy_workers: int = 0


def database_figures(*, session: Session, today: dt.date | None = None) -> DatabaseFigures:
    """Read every PostgreSQL figure of the module docstring in the caller's transaction (read only).

    Args:
        today: the UTC day the budget figures are for; defaults to today.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    out = DatabaseFigures()
    for model, status, n in session.execute(
        select(ProcessingBatch.model_name, ProcessingBatch.batch_status, func.count())
        .group_by(ProcessingBatch.model_name, ProcessingBatch.batch_status)
    ):
        out.batches[(model, status)] = int(n)
    for model, n in session.execute(
        select(ProcessingBatch.model_name, func.count(Fragment.id))
        .join(Fragment, Fragment.batch_id == ProcessingBatch.id)
        .group_by(ProcessingBatch.model_name)
    ):
        out.fragments[model] = int(n)
    bucket_cols = [func.count().filter(ExtractionCall.duration_ms <= int(le * 1000)) for le in DURATION_BUCKETS_S]
    per_model = (
        select(
            ProcessingBatch.model_name,
            func.count(),
            func.coalesce(func.sum(ExtractionCall.duration_ms), 0),
            func.coalesce(func.sum(ExtractionCall.input_tokens), 0),
            func.coalesce(func.sum(ExtractionCall.output_tokens), 0),
            func.coalesce(func.sum(ExtractionCall.cost_usd), 0),
            *bucket_cols,
        )
        .join(ProcessingBatch, ProcessingBatch.id == ExtractionCall.batch_id)
        .group_by(ProcessingBatch.model_name)
    )
    for model, n, dur_ms, tin, tout, cost, *buckets in session.execute(per_model):
        out.duration_buckets[model] = [int(b) for b in buckets] + [int(n)]  # the last bucket is +Inf
        out.duration_sum_s[model] = float(dur_ms) / 1000.0
        out.tokens[(model, "input")] = int(tin)
        out.tokens[(model, "output")] = int(tout)
        out.cost_usd[model] = float(cost)
    status_count = select(ProcessingBatch.model_name, ExtractionCall.status, func.count()).join(
        ProcessingBatch, ProcessingBatch.id == ExtractionCall.batch_id
    ).group_by(ProcessingBatch.model_name, ExtractionCall.status)
    for model, status, n in session.execute(status_count):
        out.calls[(model, status)] = int(n)
    out.spent_today_usd = float(spent_on_day(session=session, day=today))
    out.held_today_usd = float(held_today(session=session, day=today))
    limit = get_budget(session=session).daily_limit_usd
    out.daily_limit_usd = None if limit is None else float(limit)
    return out


def redis_figures(*, connection) -> RedisFigures:
    """Read the RQ figures of the module docstring from `connection` (a `redis.Redis`)."""
    from rq import Queue, Worker

    out = RedisFigures()
    for name in RQ_QUEUES:
        q = Queue(name, connection=connection)
        out.queue_depth[name] = q.count
        registries = {
            "started": q.started_job_registry, "scheduled": q.scheduled_job_registry, "deferred": q.deferred_job_registry,
            "failed": q.failed_job_registry, "finished": q.finished_job_registry,
        }
        for state in RQ_STATES:
            out.jobs[(name, state)] = registries[state].count
    workers = Worker.all(connection=connection)
    out.workers = len(workers)
    out.busy_workers = sum(1 for w in workers if w.get_state() == "busy")
    return out


# --- the Prometheus collector ----------------------------------------------------------------------


def _errors(calls: dict[tuple[str, str], int]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for (model, status), n in calls.items():
        errors[model] = errors.get(model, 0) + (n if status != "ok" else 0)
    return errors


def _labelled(family: type, name: str, doc: str, labels: list[str], values: dict) -> Metric:
    """One metric family with a sample per key of `values` (a label value, or a tuple of them), sorted."""
    metric = family(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        metric.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return metric


def database_metrics(db: DatabaseFigures) -> Iterator[Metric]:
    """The PostgreSQL series of the module docstring, from figures already read."""
    yield _labelled(GaugeMetricFamily, "mmos_batches", "Processing batches per model and status.", ["model", "status"], db.batches)
    yield _labelled(GaugeMetricFamily, "mmos_fragments", "Published fragments per model of their batch.", ["model"], db.fragments)
    yield _labelled(CounterMetricFamily, "mmos_llm_calls", "Extraction LLM calls per model and outcome.", ["model", "status"], db.calls)
    yield _labelled(CounterMetricFamily, "mmos_llm_call_errors", "Extraction LLM calls that did not return a valid answer.",
                    ["model"], _errors(db.calls))
    h = HistogramMetricFamily("mmos_llm_call_duration_seconds", "Duration of extraction LLM calls.", labels=["model"])
    bounds = [floatToGoString(b) for b in DURATION_BUCKETS_S] + ["+Inf"]  # "1.0", as client libraries write `le`
    for model, counts in sorted(db.duration_buckets.items()):
        h.add_metric([model], list(zip(bounds, counts)), sum_value=db.duration_sum_s[model])
    yield h
    yield _labelled(CounterMetricFamily, "mmos_llm_tokens", "Tokens of extraction LLM calls (providers' usage).",
                    ["model", "direction"], db.tokens)
    yield _labelled(CounterMetricFamily, "mmos_llm_cost_usd", "USD recorded on extraction LLM calls.", ["model"], db.cost_usd)
    yield GaugeMetricFamily("mmos_budget_spent_today_usd", "USD recorded on LLM calls today (UTC).", value=db.spent_today_usd)
    yield GaugeMetricFamily("mmos_budget_held_today_usd", "USD held by open budget reservations today (UTC).", value=db.held_today_usd)
    if db.daily_limit_usd is not None:
        yield GaugeMetricFamily("mmos_budget_daily_limit_usd", "The daily budget cap in USD.", value=db.daily_limit_usd)
        used = (db.spent_today_usd + db.held_today_usd) / db.daily_limit_usd if db.daily_limit_usd > 0 else float("inf")
        yield GaugeMetricFamily("mmos_budget_used_ratio", "(Spent + held) / daily cap, today (UTC).", value=used)


def redis_metrics(rq: RedisFigures) -> Iterator[Metric]:
    """The RQ series of the module docstring, from figures already read."""
    g = GaugeMetricFamily("mmos_rq_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"])
    for name, n in rq.queue_depth.items():
        g.add_metric([name], n)
    yield g
    g = GaugeMetricFamily("mmos_rq_jobs", "Jobs in each RQ queue's registries.", labels=["queue", "state"])
    for (name, state), n in rq.jobs.items():
        g.add_metric([name, state], n)
    yield g
    g = GaugeMetricFamily("mmos_rq_workers", "Registered RQ workers (all; busy).", labels=["state"])
    g.add_metric(["all"], rq.workers)
    g.add_metric(["busy"], rq.busy_workers)
    yield g


class WorkbenchCollector(Collector):
    """Reads the figures at each scrape. A component that fails is reported as `mmos_up{component} 0` and
    logged; the other component's series are still served."""

    def __init__(self, session_scope: Callable[[], AbstractContextManager[Session]], redis_connection: Callable[[], object]):
        self._session_scope = session_scope
        self._redis = redis_connection

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("mmos_up", "Whether a component answered this scrape.", labels=["component"])
        out: list[Metric] = []
        try:
            with self._session_scope() as session:
                out.extend(database_metrics(database_figures(session=session)))
            up.add_metric(["postgres"], 1)
        except Exception as exc:
            log.warning("metrics: PostgreSQL figures unavailable: %s", exc)
            up.add_metric(["postgres"], 0)
        try:
            out.extend(redis_metrics(redis_figures(connection=self._redis())))
            up.add_metric(["redis"], 1)
        except Exception as exc:
            log.warning("metrics: Redis figures unavailable: %s", exc)
            up.add_metric(["redis"], 0)
        yield from out
        yield up
        yield GaugeMetricFamily("mmos_scrape_duration_seconds", "Time this scrape took.", value=time.perf_counter() - started)

    def describe(self) -> Iterable[Metric]:
        return []  # series depend on the data; never collect at registration


def build_registry(
    *,
    session_scope: Callable[[], AbstractContextManager[Session]] | None = None,
    redis_connection: Callable[[], object] | None = None,
) -> CollectorRegistry:
    """A registry holding only the workbench collector (no process / platform series of the exporter itself).

    Args:
        session_scope: opens a transaction per scrape; defaults to `core.db.session_scope` (nothing is written).
        redis_connection: returns the Redis connection; defaults to `core.redis.get_redis`.
    """
    if session_scope is None:
        from mmos_core.core.db import session_scope as default_scope

        session_scope = default_scope
    if redis_connection is None:
        from mmos_core.core.redis import get_redis

        redis_connection = get_redis
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkbenchCollector(session_scope, redis_connection))
    return registry


__all__ = [
    "DURATION_BUCKETS_S", "DatabaseFigures", "RedisFigures", "WorkbenchCollector", "build_registry", "database_figures",
    "database_metrics", "redis_figures", "redis_metrics",
]
