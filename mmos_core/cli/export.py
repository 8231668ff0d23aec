"""`mmos export fragments|preferences`: the fragments of any sources, filtered, as CSV / JSONL / Parquet,
and reviewers' preference pairs as JSONL (docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmos_core.cli.common import fail

app = typer.Typer(no_args_is_help=True, help="Export fragments or reviewers' preference pairs to a file.")

SourceOpt = Annotated[list[str] | None, typer.Option("--source", "-s", help="Source id or code (SRC_BOOK_001); repeat for several; none: all.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="File to write (overwritten).")]


def _source_ids(session, refs: list[str] | None) -> tuple[int, ...]:
    """Ids of sources named by id or code. Exits with a message for an unknown one."""
    from sqlalchemy import select

    from mmos_core.models import Source

    ids: list[int] = []
    for ref in refs or []:
        cond = Source.id == int(ref) if ref.isdigit() else Source.source_code == ref.strip().upper()
        found = session.scalar(select(Source.id).where(cond))
        if found is None:
            fail(f"No source {ref!r}.")
        ids.append(found)
    return tuple(ids)


@app.command()
def fragments(
    out: OutOpt,
    source: SourceOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, jsonl or parquet")] = "csv",
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model name; repeat for several.")] = None,
    category: Annotated[list[str] | None, typer.Option(help="Category; repeat for several.")] = None,
    fragment_type: Annotated[list[str] | None, typer.Option("--type", help="direct_quote, paraphrase or inference; repeatable.")] = None,
    status: Annotated[str | None, typer.Option(help="verified, rejected or pending")] = None,
    min_relevance: Annotated[int | None, typer.Option(help="Lowest relevance kept (1-10).")] = None,
    query: Annotated[str | None, typer.Option(help="Full-text query, as on the Review page.")] = None,
) -> None:
    """Fragments of the sources (all without --source) matching the filters, one row each (`transfer.FRAGMENT_COLUMNS`)."""
    from mmos_core.core import db
    from mmos_core.services.transfer import EXPORT_FORMATS, ExportFilter, export_fragments, table_bytes

    if fmt not in EXPORT_FORMATS:
        fail(f"Unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    with db.session_scope() as session:
        flt = ExportFilter(
            source_ids=_source_ids(session, source), model_names=tuple(model or ()), categories=tuple(category or ()),
            fragment_types=tuple(fragment_type or ()), status=status, relevance_min=min_relevance, query=query,
        )
        try:
            df = export_fragments(session=session, flt=flt)
        except ValueError as exc:
            fail(str(exc))
    out.write_bytes(table_bytes(df, fmt))
    typer.echo(f"{len(df):,} fragments → {out} ({fmt})")


@app.command()
def preferences(
    out: OutOpt,
    source: SourceOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl (the only format of preference pairs)")] = "jsonl",
) -> None:
    """Reviewers' verdicts and feedback as chosen / rejected pairs of one chunk (`services.preferences`), JSONL."""
    from mmos_core.core import db
    from mmos_core.services.preferences import preference_pairs, preference_records
    from mmos_core.services.transfer import records_to_jsonl

    if fmt != "jsonl":
        fail("Preference pairs are written as JSONL only (--format jsonl).")
    with db.session_scope() as session:
        pairs = preference_pairs(session=session, source_ids=_source_ids(session, source))
    out.write_bytes(records_to_jsonl(preference_records(pairs)))
    by = {k: sum(p.pair_source == k for p in pairs) for k in ("verdict", "feedback")}
    typer.echo(f"{len(pairs):,} pairs ({by['verdict']:,} from verdicts, {by['feedback']:,} from feedback) → {out}")
