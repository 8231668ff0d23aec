"""`mmos quality ...`: measured quality, the sweet spot, strategies, cascade replay, cross-batch QA (docs/quality.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Measured quality, sweet spot, optimizer runs, cascade replay.")


def _fmt(x, nd=2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _iv(iv) -> str:
    return "-" if iv is None else f"[{iv[0]:.2f}, {iv[1]:.2f}]"


@app.command()
def recompute(
    source: Annotated[list[int] | None, typer.Option("--source", "-s", help="Source id; repeat (default: all).")] = None,
    embed: Annotated[bool, typer.Option(help="Compute missing paraphrase grounding with the embedder.")] = True,
) -> None:
    """Re-score every completed batch (after reviews changed, or after an upgrade) into model_performance."""
    from sqlalchemy import select

    from mmos_core.core import db
    from mmos_core.models import Source
    from mmos_core.services.quality import recompute_source

    embedder = None
    if embed:
        from mmos_core.services.model_registry import cached_registry_embedder

        embedder = cached_registry_embedder().embed
    with db.session_scope() as session:
        ids = source or list(session.scalars(select(Source.id).order_by(Source.id)))
        for sid in ids:
            for q in recompute_source(session=session, source_id=sid, embed=embedder):
                typer.echo(f"source {sid} batch {q.batch_id} {q.model_name}: quality {_fmt(q.score.score)} "
                           f"[{_fmt(q.score.low)}, {_fmt(q.score.high)}] reference={q.reference_kind or '-'}")


@app.command()
def report(
    source_type: Annotated[str | None, typer.Option(help="Only sources of this type.")] = None,
    source: Annotated[list[int] | None, typer.Option("--source", "-s", help="Source id; repeat.")] = None,
    category: Annotated[str | None, typer.Option(help="Only fragments of this category.")] = None,
) -> None:
    """Per-model quality pooled over completed batches: score with 95% interval and its components."""
    from mmos_core.core import db
    from mmos_core.services.model_quality import model_quality

    with db.session_scope() as session:
        rows = model_quality(session=session, source_ids=source, source_type=source_type, category=category)
    typer.echo(f"{'model':32} {'batches':>7} {'frags':>5} {'quality':>7} {'95% interval':>14} {'grounded':>8} "
               f"{'ground. 95%':>14} {'F1':>5} {'F1 95%':>14} {'human':>5} {'n_h':>4} {'usd/frag':>10} {'s/frag':>7}")
    for r in rows:
        s = r.score
        typer.echo(
            f"{r.model_name:32} {r.batches:>7} {r.fragments:>5} {_fmt(s.score):>7} {_iv(None if s.low is None else (s.low, s.high)):>14} "
            f"{_fmt(s.grounding, 3):>8} {_iv(s.grounding_interval):>14} {_fmt(s.agreement_f1, 3):>5} {_iv(s.agreement_interval):>14} "
            f"{_fmt(s.human, 2):>5} {s.counts.human_n:>4} {_fmt(r.cost_per_fragment, 6):>10} {_fmt(r.seconds_per_fragment, 1):>7}"
        )


@app.command("sweet-spot")
def sweet_spot(
    threshold: Annotated[list[float] | None, typer.Option("--threshold", "-t", help="0-10; repeat (default: per source type).")] = None,
    budget: Annotated[float | None, typer.Option(help="USD per fragment.")] = None,
    metric: Annotated[str, typer.Option(help="usd or seconds (model time per fragment).")] = "usd",
    source_type: Annotated[str | None, typer.Option(help="Scope: a source type.")] = None,
    source: Annotated[int | None, typer.Option(help="Scope: one source.")] = None,
    category: Annotated[str | None, typer.Option(help="Scope: one fragment category.")] = None,
) -> None:
    """The cheapest model whose quality lower bound reaches each threshold, and the saving vs the baseline."""
    from mmos_core.core import db
    from mmos_core.services.optimizer import find_sweet_spot

    with db.session_scope() as session:
        for t in threshold or [None]:
            spot = find_sweet_spot(session=session, source_id=source, source_type=source_type, category=category,
                                   quality_threshold=t, budget_per_fragment=budget, cost_metric=metric)
            saving = "-" if spot.saving_pct is None else f"{spot.saving_pct:g}% ({metric})"
            typer.echo(f"threshold {spot.quality_threshold:g}: {spot.model_name or 'no model qualifies'}; "
                       f"baseline {spot.baseline_model}; saving {saving}")
            for c in spot.candidates:
                typer.echo(f"    {c.model_name:32} quality {_fmt(c.quality.score)} low {_fmt(c.quality.low)} "
                           f"usd/frag {_fmt(c.cost_per_fragment, 6)} s/frag {_fmt(c.seconds_per_fragment, 1)}  {c.reason}")


@app.command()
def replay(
    model: Annotated[list[str], typer.Option("--model", "-m", help="Model; repeat (≥ 2).")],
    metric: Annotated[str, typer.Option(help="usd or seconds.")] = "seconds",
    price: Annotated[list[str] | None, typer.Option(help="Hypothetical MODEL=IN,OUT in USD per 1M tokens; repeat.")] = None,
    source: Annotated[list[int] | None, typer.Option("--source", "-s", help="Source id; repeat.")] = None,
    plot: Annotated[str | None, typer.Option(help="Also write the cost-quality plot to this .html file.")] = None,
) -> None:
    """Replay 'cheap model first, escalate when grounding < x' cascades from stored batches (no new call)."""
    from mmos_core.core import db
    from mmos_core.services.replay import replay_cascades, replay_table

    prices = {}
    for p in price or []:
        name, _, values = p.partition("=")
        a, _, b = values.partition(",")
        prices[name] = (float(a), float(b))
    with db.session_scope() as session:
        try:
            result = replay_cascades(session=session, models=model, source_ids=source, cost_metric=metric, prices=prices or None)
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    rows = replay_table(result)
    cost_key = next(k for k in rows[0] if k.startswith("cost_"))
    typer.echo(f"{result.chunks} chunks of sources {result.sources}; cost = {cost_key}"
               + (" (hypothetical prices)" if result.hypothetical_prices else ""))
    for r in rows:
        typer.echo(f"  {'*' if r['on_hull'] else ' '} {r['policy']:50} {cost_key} {r[cost_key]:>10} quality {_fmt(r['quality'])} "
                   f"[{_fmt(r['quality_low'])}, {_fmt(r['quality_high'])}] grounded {_fmt(r['grounding'], 3)} escalated {r['escalated_share']:.2f}")
    typer.echo("  * = on the cost-quality hull")
    if plot:
        import pandas as pd
        import plotly.express as px
        import plotly.graph_objects as go

        df = pd.DataFrame(rows)
        fig = px.scatter(df, x=cost_key, y="quality", text="policy", color="on_hull",
                         title=f"Cascade replay: {', '.join(result.models)}")
        hull = df[df["on_hull"]].sort_values(cost_key)
        fig.add_trace(go.Scatter(x=hull[cost_key], y=hull["quality"], mode="lines", name="hull"))
        fig.write_html(plot)
        typer.echo(f"plot written to {plot}")


@app.command()
def optimize(
    source: Annotated[list[int], typer.Argument(help="Source ids.")],
    strategy: Annotated[str, typer.Option(help="progressive, aggressive or conservative.")] = "progressive",
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Ladder; repeat (default: all available).")] = None,
    threshold: Annotated[float | None, typer.Option(help="0-10 (default: per source type).")] = None,
    budget: Annotated[float | None, typer.Option(help="USD per fragment.")] = None,
    sample: Annotated[int, typer.Option(help="Chunks per progressive sample.")] = 3,
    wait: Annotated[bool, typer.Option(help="Print each decision until the runs finish.")] = False,
) -> None:
    """Start the optimizer design's process_batch(source_ids, strategy) as optimization runs on the queue."""
    from mmos_core.core import db
    from mmos_core.llm.catalog import UnknownModelError
    from mmos_core.models import OptimizationRun
    from mmos_core.services.batches import enqueue_batches
    from mmos_core.services.optimizer import process_batch

    try:
        with db.session_scope() as session:
            runs, jobs = process_batch(session=session, source_ids=source, strategy=strategy, models=model,
                                       quality_threshold=threshold, budget_per_fragment=budget, sample_chunks=sample)
            run_ids = [r.id for r in runs]
            enqueue_batches(jobs, session=session)
    except (ValueError, LookupError, UnknownModelError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"runs {run_ids} started; batches {[j.batch_id for j in jobs]} queued")
    seen: dict[int, int] = {}
    while wait:
        with db.session_scope() as session:
            runs = [session.get(OptimizationRun, i) for i in run_ids]
            for r in runs:
                for d in r.decisions[seen.get(r.id, 0):]:
                    typer.echo(f"run {r.id}: {d['action']} {d['model']} — {d['reason']}")
                seen[r.id] = len(r.decisions)
            if all(r.status in ("completed", "failed") for r in runs):
                break
        time.sleep(5)


@app.command()
def qa(source: Annotated[list[int] | None, typer.Option("--source", "-s", help="Source id; repeat.")] = None) -> None:
    """Cross-batch agreement per model pair (the core design workflow 3) and the largest relevance disagreements."""
    from mmos_core.core import db
    from mmos_core.services.qa import cross_batch_agreement, largest_disagreements

    with db.session_scope() as session:
        for r in cross_batch_agreement(session=session, source_ids=source):
            typer.echo(f"{r.model_a} vs {r.model_b}: {r.matching_fragments} matched ({r.exact_matches} identical) over "
                       f"{r.sources} source(s); mean |relevance diff| {r.avg_relevance_difference}, "
                       f"mean |confidence diff| {r.avg_confidence_difference}")
        for p in largest_disagreements(session=session, source_ids=source, limit=5):
            typer.echo(f"  Δrelevance {p.relevance_diff} (cos {p.similarity:.2f}): {p.model_a}: {p.content_a[:70]!r} | "
                       f"{p.model_b}: {p.content_b[:70]!r}")


@app.command()
def calibration(
    source: Annotated[list[int] | None, typer.Option("--source", "-s", help="Source id; repeat (default: all).")] = None,
) -> None:
    """How each automatic check agrees with reviewers' verdicts (AUROC, accuracy, 95% intervals, n), and
    Cohen's kappa between reviewers who judged the same fragments (docs/quality.md)."""
    from mmos_core.analysis.calibration import format_estimate
    from mmos_core.core import db
    from mmos_core.services.calibration import calibration as report_of
    from mmos_core.services.calibration import reviewer_agreement, reviewer_progress

    with db.session_scope() as session:
        rep = report_of(session=session, source_ids=source)
        kappas = reviewer_agreement(session=session)
        progress = reviewer_progress(session=session)
    typer.echo(f"{rep.n_rows} reviewed fragment(s); figures need {rep.min_verdicts} verdicts per check")
    typer.echo(f"{'check':17} {'target':20} {'n':>5} {'AUROC (95%)':>24} {'accuracy (95%)':>24}")
    for c in rep.checks.values():
        for a in (c.verdict, c.reason):
            if a is None:
                continue
            cal = a.calibrated
            typer.echo(f"{c.check:17} {a.target:20} {a.n:>5} {format_estimate(a.auroc, calibrated=cal):>24} "
                       f"{format_estimate(a.accuracy, calibrated=cal):>24}")
    if progress:
        typer.echo("reviewers: " + ", ".join(f"{p.reviewer} {p.verdicts} ({p.verified} verified, {p.rejected} rejected)" for p in progress))
    for k in kappas:
        typer.echo(f"kappa {k.reviewer_a} vs {k.reviewer_b} on {k.dimension}: {format_estimate(k.kappa)} over {k.n} fragment(s)")
    if not kappas:
        typer.echo("no fragment was judged by two reviewers yet: no agreement figure")
