"""`mmos catalog ...`: sync the model catalog, recommendations, feedback imports.

    mmos catalog sync                          litellm price map (chat models) + local models → ai_models (idempotent)
    mmos catalog list [--provider P] [--bucket B] [--status S] [--capability C] [--search TEXT]
    mmos catalog recommend CATEGORY [--limit N] [--all]   best models for a task, with 90 % intervals
    mmos catalog refresh                       recompute ai_model_performance_aggregates now
    mmos catalog import-votes PATH             PRD vicuna80 human votes → feedback; prints ranking vs win rates
    mmos catalog logs [--limit N]              the latest ai_logs rows
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Model catalog and recommendations (the catalog design).")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command("sync")
def sync() -> None:
    """Upsert every chat model of litellm's bundled price map and the local models; add seed categories/mappings."""
    from mmos_core.core import db
    from mmos_core.services.catalog.sync import sync_catalog

    with db.session_scope() as session:
        report = sync_catalog(session=session)
    typer.echo(report.summary())


@app.command("list")
def list_(
    provider: Annotated[list[str] | None, typer.Option(help="litellm provider (repeatable).")] = None,
    bucket: Annotated[list[str] | None, typer.Option(help="free, low, medium, high, unknown (repeatable).")] = None,
    status: Annotated[list[str] | None, typer.Option(help="active, deprecated, external (repeatable).")] = None,
    capability: Annotated[list[str] | None, typer.Option(help="Required capability tag (repeatable).")] = None,
    search: Annotated[str | None, typer.Option(help="Substring of the model name.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Catalog models matching the filters, cheapest first (USD per 1M tokens)."""
    from mmos_core.core import db
    from mmos_core.services.catalog.browse import list_models

    with db.session_scope() as session:
        rows, total = list_models(session=session, providers=provider, cost_buckets=bucket, statuses=status,
                                  capabilities=capability, search=search, limit=limit)
    typer.echo(f"{total} models match" + (f" (first {limit})" if total > limit else ""))
    for r in rows:
        price = f"{r.input_per_1m:.3f}/{r.output_per_1m:.3f}" if r.input_per_1m is not None and r.output_per_1m is not None else "—"
        typer.echo(f"{r.model_id:60s} {r.provider:18s} {r.cost_bucket:8s} {r.status:10s} in/out $ {price:>16s} ctx {r.context_window or '—'}")


@app.command("recommend")
def recommend(
    category: Annotated[str, typer.Argument(help="Task category key, e.g. fragment_extraction.")],
    limit: Annotated[int, typer.Option(help="How many models.")] = 5,
    all_: Annotated[bool, typer.Option("--all", help="Include deprecated and deactivated models.")] = False,
) -> None:
    """Best models for a task: posterior mean and 90 % interval from feedback; ranked by the lower bound."""
    from mmos_core.core import db
    from mmos_core.services.catalog.recommend import CatalogError, best_models_for_task

    try:
        with db.session_scope() as session:
            recs = best_models_for_task(session=session, task_category=category, limit=limit, include_inactive=all_)
    except CatalogError as exc:
        _fail(str(exc))
    if not recs:
        typer.echo("No candidate models for this category (no mapping, no feedback).")
    for i, r in enumerate(recs, start=1):
        typer.echo(
            f"{i}. {r.model_id:32s} mean {r.mean:.3f}  90% [{r.low:.3f}, {r.high:.3f}]  "
            f"+{r.likes} -{r.dislikes} ↻{r.regenerates} ★{r.ratings}  {r.cost_bucket} {r.status}"
        )


@app.command("refresh")
def refresh() -> None:
    """Recompute ai_model_performance_aggregates (daily, weekly, monthly, all_time) and derived columns."""
    import time

    from mmos_core.core import db
    from mmos_core.services.catalog.aggregates import refresh_aggregates

    t0 = time.perf_counter()
    with db.session_scope() as session:
        report = refresh_aggregates(session=session)
    typer.echo(f"{report.summary()} in {time.perf_counter() - t0:.2f} s")


@app.command("import-votes")
def import_votes(
    path: Annotated[Path, typer.Argument(help="prd_human_preferences folder or its vicuna80_human_pairwise.jsonl.")],
) -> None:
    """Import the vicuna80 human votes as feedback (idempotent), then print the ranking next to the win rates."""
    from mmos_core.core import db
    from mmos_core.services.catalog.recommend import CatalogError, rank_models
    from mmos_core.services.catalog.votes import CATEGORY, VoteImportError, parse_votes, votes_path, win_rates
    from mmos_core.services.catalog.votes import import_votes as run_import

    try:
        with db.session_scope() as session:
            report = run_import(session=session, path=path)
    except (VoteImportError, CatalogError) as exc:
        _fail(str(exc))
    typer.echo(report.summary())
    votes, _ = parse_votes(votes_path(path).read_text(encoding="utf-8"))
    rates = win_rates(votes)
    with db.session_scope() as session:
        ranked = [r for r in rank_models(session=session, task_category=CATEGORY, include_inactive=True) if r.model_id in rates]
    typer.echo(markdown_ranking(ranked, rates))


def markdown_ranking(ranked, rates) -> str:
    """The evidence table: catalog rank (posterior lower bound), posterior mean + 90 % interval, votes' win rate."""
    by_rate = sorted(rates.values(), key=lambda w: -w.win_rate)
    rate_rank = {w.model_id: i for i, w in enumerate(by_rate, start=1)}
    lines = [
        "| rank | model | posterior mean | 90 % interval | likes / dislikes / tie-ratings | votes | W / L / T | win rate (W + T/2)/N | win-rate rank |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(ranked, start=1):
        w = rates[r.model_id]
        lines.append(
            f"| {i} | {r.model_id} | {r.mean:.3f} | [{r.low:.3f}, {r.high:.3f}] | {r.likes} / {r.dislikes} / {r.ratings} | "
            f"{w.n} | {w.wins} / {w.losses} / {w.ties} | {w.win_rate:.3f} | {rate_rank[r.model_id]} |"
        )
    return "\n".join(lines)


@app.command("logs")
def logs(limit: Annotated[int, typer.Option(help="Rows to print.")] = 20) -> None:
    """The latest ai_logs rows: model, category, selected_by, status, tokens, cost, latency."""
    from mmos_core.core import db
    from mmos_core.services.catalog.ai_logs import recent_logs

    with db.session_scope() as session:
        rows = recent_logs(session=session, limit=limit)
    for r in rows:
        typer.echo(
            f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.model_name:32s} {r.category_key or '—':20s} {r.selected_by:13s} "
            f"{r.status:14s} {r.input_tokens}+{r.output_tokens} tok ${r.cost_usd:.6f} {r.latency_ms or 0} ms"
        )
