"""`mmos ingest`, `mmos extract`, `mmos compare`: a source from intake to comparison."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mmos_core.cli.common import fail
from mmos_core.core.config import get_settings

app = typer.Typer()


# --- intake / extraction / comparison -------------------------------------------------------------


def _print_progress(done: int, total: int) -> None:
    """`parse_upload`'s progress: pages (PDF) or chapters (EPUB) converted, on stderr."""
    if total > 1:
        typer.echo(f"\rconverting {done:,}/{total:,}", err=True, nl=done >= total)


@app.command()
def ingest(
    path: Annotated[
        Path, typer.Argument(help="A .txt, .md, .srt, .vtt, .pdf, .docx, .html or .epub file; '-' reads pasted text from stdin.")
    ],
    title: Annotated[str, typer.Option(help="Title of the source.")],
    source_type: Annotated[str, typer.Option("--type", help="interview, podcast, speech, letter, book, article, social_media")] = "book",
    quality: Annotated[str, typer.Option(help="primary, secondary or tertiary")] = "primary",
    priority: Annotated[str, typer.Option(help="CRITICAL, VERY_HIGH, HIGH, MEDIUM or LOW")] = "HIGH",
    person: Annotated[str | None, typer.Option(help="Who the source is about.")] = None,
    url: Annotated[str | None, typer.Option()] = None,
    date: Annotated[str | None, typer.Option(help="Source date, YYYY-MM-DD.")] = None,
    max_words: Annotated[int | None, typer.Option(help="Keep only the first N words (whole paragraphs).")] = None,
) -> None:
    """Add a source. Refuses empty, binary, wrongly encoded and over-limit input with the reason.

    PDF, DOCX, HTML and EPUB files are converted to text first (docs/intake.md); a PDF's pages
    become locations ("p. 12, ¶48") and a long one prints its progress on stderr.
    """
    from mmos_core.core import db
    from mmos_core.services.sources import DuplicateSourceError, create_source
    from mmos_core.text.documents import DOCUMENT_EXTENSIONS
    from mmos_core.text.intake import IntakeError, first_words, parse_pasted, parse_upload

    s = get_settings()
    try:
        if str(path) == "-":
            parsed = parse_pasted(sys.stdin.read(), max_bytes=s.max_source_bytes)
            filename = None
        else:
            if not path.is_file():
                fail(f"No such file: {path}")
            size = path.stat().st_size
            is_document = path.suffix.lower() in DOCUMENT_EXTENSIONS
            limit, var = (s.max_document_bytes, "MMOS_MAX_DOCUMENT_BYTES") if is_document else (s.max_source_bytes, "MMOS_MAX_SOURCE_BYTES")
            if size > limit:
                # Refused before reading a huge file into memory.
                fail(f"Refused: the file is {size / 1e6:.1f} MB, over the limit of {limit / 1e6:.1f} MB ({var}).")
            parsed = parse_upload(
                path.name,
                path.read_bytes(),
                max_bytes=s.max_source_bytes,
                max_document_bytes=s.max_document_bytes,
                max_pages=s.max_document_pages,
                progress=_print_progress if is_document else None,
            )
            for warning in parsed.warnings:
                typer.echo(f"warning: {warning}", err=True)
            filename = path.name
        if max_words:
            parsed = first_words(parsed, max_words)
        with db.session_scope() as session:
            source = create_source(
                session=session,
                parsed=parsed,
                title=title,
                source_type=source_type,
                quality=quality,
                extraction_priority=priority,
                person=person,
                url=url,
                source_date=dt.date.fromisoformat(date) if date else None,
                original_filename=filename,
                created_by=os.environ.get("USER"),
            )
            chunks = len(source.chunks)
            typer.echo(
                f"source {source.id} {source.source_code}: {source.word_count:,} words, {chunks} chunks"
            )
    except IntakeError as exc:
        fail(f"Refused: {exc}")
    except (DuplicateSourceError, ValueError) as exc:
        fail(str(exc))


@app.command()
def extract(
    source_id: int,
    model: Annotated[list[str], typer.Option("--model", "-m", help="Model name; repeat for several.")],
    wait: Annotated[bool, typer.Option(help="Show a progress bar per batch (chunks, cost) until every batch finishes.")] = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="Print the cost estimate and queue nothing.")] = False,
) -> None:
    """Queue a source for one or more models (one batch and one RQ job each)."""
    from mmos_core.core import db
    from mmos_core.llm.catalog import UnknownModelError
    from mmos_core.services.batches import enqueue_batches, queue_extraction

    if estimate:
        from mmos_core.services.estimate import estimate_for_source

        try:
            with db.session_scope() as session:
                rows = estimate_for_source(session=session, source_id=source_id, model_names=model)
        except (LookupError, UnknownModelError) as exc:
            fail(str(exc))
        for name, e in rows:
            typer.echo(
                f"{name}: {e.input_tokens} input tokens, <= {e.max_output_tokens_total} output tokens, "
                f"${e.expected_usd_low} to ${e.worst_case_usd}"
            )
        return

    try:
        with db.session_scope() as session:
            jobs = queue_extraction(
                session=session, source_id=source_id, model_names=model, processor_name=os.environ.get("USER")
            )
            enqueue_batches(jobs, session=session)
    except (LookupError, UnknownModelError, ValueError) as exc:
        fail(str(exc))
    for j in jobs:
        typer.echo(f"batch {j.batch_id} queued on '{j.rq_queue}' as {j.rq_job_id}")
    if wait:
        _wait_for([j.batch_id for j in jobs])


def _wait_for(batch_ids: list[int], *, poll_s: float = 3.0) -> None:
    """Draw a bar per batch (chunks answered of the batch's chunks, cost so far, status) until every batch
    is completed or failed; re-reads `batch_progress` every `poll_s` seconds."""
    from mmos_core.cli.progress import bars
    from mmos_core.core import db
    from mmos_core.services.batches import batch_progress

    with bars() as progress:
        while True:
            with db.session_scope() as session:
                rows = batch_progress(session=session, batch_ids=batch_ids)
            for p in sorted(rows, key=lambda p: p.batch_id):
                progress(f"batch {p.batch_id} {p.model_name}", p.chunks_done, p.chunks_total,
                         note=f"${p.cost_usd:.4f} {p.status}")
            if all(p.status in ("completed", "failed") for p in rows):
                return
            time.sleep(poll_s)


@app.command()
def compare(
    source_id: int,
    batches: Annotated[str | None, typer.Option(help="Comma-separated batch ids (default: all completed).")] = None,
    show_pairs: Annotated[int, typer.Option(help="Also print this many aligned fragment pairs of the first two batches.")] = 0,
) -> None:
    """Print the per-model comparison of a source's batches."""
    from mmos_core.core import db
    from mmos_core.services.comparison import align_batches, batch_stats, completed_batches

    with db.session_scope() as session:
        ids = [int(b) for b in batches.split(",")] if batches else [b.id for b in completed_batches(session=session, source_id=source_id)]
        if not ids:
            fail(f"Source {source_id} has no completed batches yet.")
        stats = batch_stats(session=session, batch_ids=ids)
        typer.echo(format_comparison(stats))
        if show_pairs and len(ids) >= 2:
            pairs = align_batches(session=session, batch_a=ids[0], batch_b=ids[1])
            matched = sum(1 for p in pairs if p.left and p.right)
            typer.echo(f"\naligned: {matched} matched pairs, "
                       f"{sum(1 for p in pairs if p.left and not p.right)} only in batch {ids[0]}, "
                       f"{sum(1 for p in pairs if p.right and not p.left)} only in batch {ids[1]}")
            for p in pairs[:show_pairs]:
                sim = f"{p.similarity:.2f}" if p.similarity is not None else "  - "
                a = (p.left.content[:70] if p.left else "(none)").replace("\n", " ")
                b = (p.right.content[:70] if p.right else "(none)").replace("\n", " ")
                typer.echo(f"{sim}  A: {a}\n      B: {b}")


def format_comparison(stats) -> str:
    """Fixed-width table of `BatchStats` rows (what `mmos compare` prints)."""
    header = (
        f"{'batch':>5} {'model':<30} {'status':<10} {'frags':>5} {'in_tok':>8} {'out_tok':>8} "
        f"{'cost_usd':>10} {'usd/frag':>10} {'s/frag':>7} {'avg_rel':>7} {'avg_conf':>8} {'quotes':>6} {'located':>7} {'malformed':>9}"
    )
    lines = [header, "-" * len(header)]
    for s in stats:
        lines.append(
            f"{s.batch_id:>5} {s.model_name[:30]:<30} {s.status:<10} {s.fragments:>5} {s.input_tokens:>8} "
            f"{s.output_tokens:>8} {s.cost_usd:>10.6f} "
            f"{(f'{s.cost_per_fragment:.6f}' if s.cost_per_fragment is not None else '-'):>10} "
            f"{(f'{s.seconds_per_fragment:.2f}' if s.seconds_per_fragment is not None else '-'):>7} "
            f"{(f'{s.avg_relevance:.2f}' if s.avg_relevance is not None else '-'):>7} "
            f"{(f'{s.avg_confidence:.3f}' if s.avg_confidence is not None else '-'):>8} "
            f"{(f'{s.direct_quote_share:.0%}' if s.direct_quote_share is not None else '-'):>6} "
            f"{(f'{s.located_share:.0%}' if s.located_share is not None else '-'):>7} "
            f"{s.malformed_responses:>4}/{s.chunks_total:<4}"
        )
    return "\n".join(lines)




@app.command()
def speakers(
    source_id: int,
    person: Annotated[list[str] | None, typer.Option("--person", "-p", help="Set the person's speaker label; repeat for several.")] = None,
) -> None:
    """List a source's speakers with their word counts; `--person LABEL` makes LABEL the person's speaker
    (re-runs the per-fragment checks and the quality score, never the LLM)."""
    from mmos_core.core import db
    from mmos_core.services.person_labels import change_person_labels
    from mmos_core.services.speakers import speaker_summary

    try:
        with db.session_scope() as session:
            if person:
                n = change_person_labels(session=session, source_id=source_id, labels=person)
                typer.echo(f"person's speaker(s) set to {', '.join(person)}; {n} fragment(s) re-checked")
            rows = speaker_summary(session=session, source_id=source_id)
    except (LookupError, ValueError) as exc:
        fail(str(exc))
    for r in rows:
        typer.echo(f"{'*' if r.is_person else ' '} {r.label:40} {r.words:>8,} words")
