"""`mmos conversations ...`: import, run and analyse multi-agent conversations.

    mmos conversations import FILE [--line N ...] [--now]   JSON / JSONL / "Agent: message" text ('-' = stdin)
    mmos conversations list                                 conversations with health and open findings
    mmos conversations show ID                              health curve, contradictions, loops, failure labels
    mmos conversations analyze ID [--force] [--now]         (re)run the detectors, in order
    mmos conversations search QUERY [--conversation ID]     semantic search across messages
    mmos conversations similar MESSAGE_ID                   the nearest messages of a message
    mmos conversations debate --topic T --agent NAME=MODEL ... [--rounds N] [--now]
    mmos conversations delete ID

`--now` runs the job in this process instead of enqueueing it for `mmos worker`.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mmos_core.core.domain import ConversationStatus

app = typer.Typer(no_args_is_help=True, help="Multi-agent conversations: import, run, analyse (the conversations design).")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A .json / .jsonl file, a .txt of 'Agent: message' lines, or '-' (stdin, text).")],
    title: Annotated[str | None, typer.Option(help="Title for pasted text (stdin or .txt).")] = None,
    line: Annotated[list[int] | None, typer.Option("--line", help="Import only these conversations of the file (1-based; repeatable).")] = None,
    analyze: Annotated[bool, typer.Option(help="Analyse after import.")] = True,
    now: Annotated[bool, typer.Option("--now", help="Analyse in this process instead of enqueueing a job.")] = False,
) -> None:
    """Import conversations in one transaction; refuses bad input with the reason (nothing half-written)."""
    from mmos_core.core import db
    from mmos_core.core.config import get_settings
    from mmos_core.services import conversations as svc
    from mmos_core.text.conversation_import import (
        ConversationImportError,
        parse_conversation_file,
        parse_pasted_conversation,
    )

    s = get_settings()
    limits = {"max_messages": s.conversation_max_messages, "max_message_chars": s.conversation_max_message_chars}
    try:
        if str(path) == "-":
            parsed = [parse_pasted_conversation(sys.stdin.read(), title=title or "Pasted conversation",
                                                max_bytes=s.conversation_max_import_bytes, **limits)]
        else:
            if not path.is_file():
                _fail(f"No such file: {path}")
            if path.stat().st_size > s.conversation_max_import_bytes:
                _fail(f"Refused: {path.name} is {path.stat().st_size / 1e6:.1f} MB, over the limit of "
                      f"{s.conversation_max_import_bytes / 1e6:.1f} MB (MMOS_CONVERSATION_MAX_IMPORT_BYTES).")
            parsed = parse_conversation_file(path.name, path.read_bytes(), max_bytes=s.conversation_max_import_bytes, **limits)
            if title and len(parsed) == 1:
                parsed = [dataclasses.replace(parsed[0], title=title)]
    except ConversationImportError as exc:
        _fail(f"Refused: {exc}")
    if line:
        bad = [n for n in line if not 1 <= n <= len(parsed)]
        if bad:
            _fail(f"--line {bad[0]} is out of range: the file holds {len(parsed)} conversation(s).")
        parsed = [parsed[n - 1] for n in line]
    from mmos_core.cli.progress import bars

    total = sum(len(p.messages) for p in parsed)
    with bars() as progress:
        ids: list[int] = []
        with db.session_scope() as session:  # one transaction; one call per conversation for the bar
            progress("import (messages)", 0, total)
            for p in parsed:
                ids += svc.import_conversations(session=session, parsed=[p])
                progress("import (messages)", sum(len(q.messages) for q in parsed[: len(ids)]), total)
            if not analyze:
                for cid in ids:
                    svc.set_status(session=session, conversation_id=cid, status=ConversationStatus.idle.value)
        for cid, p in zip(ids, parsed, strict=True):
            progress.log(f"conversation {cid}: {len(p.messages)} messages  {p.title[:90]}")
        if analyze:
            sizes = {cid: len(p.messages) for cid, p in zip(ids, parsed, strict=True)}
            _analyze(ids, force=False, now=now, progress=progress if now else None, sizes=sizes)


def _analyze(ids: list[int], *, force: bool, now: bool, progress=None, sizes: dict[int, int] | None = None) -> None:
    """Analyse (`now`) or enqueue the analysis of each conversation. With `progress` (a
    `cli.progress.BarReporter`) and `sizes` (conversation id -> messages) an in-process run draws
    "analyse (messages)": messages analysed of all the conversations' messages."""
    from mmos_core.services import conversations as svc

    echo = progress.log if progress is not None else typer.echo
    before = 0
    for cid in ids:
        if now:
            from workers.conversations import analyze_conversation

            with _analysis_bar(progress, cid, before, sizes or {}):
                out = analyze_conversation(cid, force=force)
            before += (sizes or {}).get(cid, 0)
            echo(f"conversation {cid}: analysed {out.get('analyzed', 0)} messages "
                 f"(p50 {_ms(out.get('p50_ms'))}, p95 {_ms(out.get('p95_ms'))} per message)" if "skipped" not in out
                 else f"conversation {cid}: skipped: {out['skipped']}")
        else:
            job = svc.enqueue_analysis(cid, force=force)
            echo(f"conversation {cid}: analysis queued as {job} (run `mmos worker`)")


@contextmanager
def _analysis_bar(progress, conversation_id: int, before: int, sizes: dict[int, int], every_s: float = 0.5) -> Iterator[None]:
    """While the block analyses `conversation_id`, a thread re-reads its unanalysed messages every `every_s`
    seconds and moves the "analyse (messages)" bar to `before` + analysed; the bar is full at the end."""
    if progress is None or not sizes:
        yield
        return
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    total, size = sum(sizes.values()), sizes.get(conversation_id, 0)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every_s):
            try:
                with db.session_scope() as session:
                    left = len(svc.pending_message_ids(session=session, conversation_id=conversation_id))
            except Exception:  # the bar is a courtesy: a failed read never stops the analysis
                continue
            progress("analyse (messages)", before + max(0, size - left), total)

    progress("analyse (messages)", before, total)
    thread = threading.Thread(target=poll, name="mmos-analysis-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    progress("analyse (messages)", before + size, total)


def _one_line(text: str, n: int = 100) -> str:
    return " ".join(text.split())[:n]


def _ms(v: float | None) -> str:
    return f"{v:.0f} ms" if v is not None else "—"


@app.command("list")
def list_() -> None:
    """Conversations, newest first: messages analysed, health, open contradictions and loops."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    with db.session_scope() as session:
        rows = svc.list_conversations(session=session)
    if not rows:
        typer.echo("No conversations yet: `mmos conversations import FILE` or `mmos conversations debate`.")
    for r in rows:
        health = f"{r.health:5.1f}" if r.health is not None else "    —"
        flag = " ⚠" if r.requires_intervention else ""
        typer.echo(f"{r.id:5d}  {r.status:9s} {r.analyzed:4d}/{r.messages:<4d} health {health}  "
                   f"contradictions {r.open_contradictions:3d}  loops {r.active_loops:2d}{flag}  {r.title[:70]}")


@app.command()
def show(
    conversation_id: int,
    curve: Annotated[bool, typer.Option(help="Print every health point.")] = True,
    limit: Annotated[int, typer.Option(help="Most contradictions / loops listed (strongest first).")] = 15,
) -> None:
    """Health curve, open contradictions and loops, next to the log's own failure labels."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    with db.session_scope() as session:
        try:
            conv = svc.get_conversation(session=session, conversation_id=conversation_id)
        except svc.ConversationNotFound as exc:
            _fail(str(exc))
        labels = svc.failure_labels(conv)
        series = svc.health_series(session=session, conversation_id=conversation_id)
        contra = svc.contradiction_alerts(session=session, conversation_id=conversation_id, include_resolved=True)
        loops = svc.loop_alerts(session=session, conversation_id=conversation_id, include_closed=True)
        typer.echo(f"conversation {conv.id}: {conv.title}\nstatus {conv.status}, health {conv.current_health_score}, "
                   f"requires intervention: {conv.requires_intervention}")
        if conv.error_message:
            typer.echo(f"error: {conv.error_message}")
    if labels:
        typer.echo(f"log's failure labels: agent {labels.get('mistake_agent')!r}, step {labels.get('mistake_step')}, "
                   f"reason: {labels.get('mistake_reason')}")
    if curve and series:
        typer.echo("health curve (sequence agent: health | coherence contradiction loop citation):")
        for p in series:
            mark = " ⚠" if p["requires_intervention"] else ""
            typer.echo(f"  {p['sequence']:4d} {str(p['agent'])[:22]:22s} {p['health']:5.1f} | {p['coherence']:5.1f} "
                       f"{p['contradiction']:5.1f} {p['loop']:5.1f} {p['citation']:5.1f}{mark}")
    typer.echo(f"{len(contra)} contradiction(s), {len(loops)} loop(s)" + (f"; the {limit} strongest of each:" if max(len(contra), len(loops)) > limit else ":"))
    for c in sorted(contra, key=lambda c: -c.confidence)[:limit]:
        typer.echo(f"contradiction #{c.id} {c.severity} p={c.confidence:.2f}: [{c.sequence_1} {c.agent_1}] "
                   f"{_one_line(c.statement_1)!r} ↔ [{c.sequence_2} {c.agent_2}] {_one_line(c.statement_2)!r}"
                   + (" (resolved)" if c.resolved else ""))
    for lp in sorted(loops, key=lambda lp: -lp.repetition_count)[:limit]:
        typer.echo(f"loop #{lp.id}: {lp.loop_size} message(s) × {lp.repetition_count}, messages {lp.first_sequence}–"
                   f"{lp.last_sequence}, {lp.intervention_status}; intervention: {str(lp.intervention_message)[:120]}")


@app.command()
def analyze(
    conversation_id: int,
    force: Annotated[bool, typer.Option(help="Re-analyse every message, not only new ones.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Run here instead of enqueueing a job.")] = False,
) -> None:
    """Run the detectors on a conversation's messages, in order (idempotent)."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    with db.session_scope() as session:
        try:
            svc.get_conversation(session=session, conversation_id=conversation_id)
        except svc.ConversationNotFound as exc:
            _fail(str(exc))
        if not now:
            svc.set_status(session=session, conversation_id=conversation_id, status=ConversationStatus.queued.value)
    _analyze([conversation_id], force=force, now=now)


@app.command()
def search(
    query: str,
    conversation: Annotated[int | None, typer.Option(help="Only this conversation.")] = None,
    limit: Annotated[int, typer.Option(help="How many messages.")] = 10,
) -> None:
    """Messages nearest in meaning to QUERY (pgvector cosine on the HNSW index)."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc
    with db.session_scope() as session:
        try:
            hits = svc.search_messages(session=session, query=query, conversation_id=conversation, limit=limit)
        except ValueError as exc:
            _fail(str(exc))
    _print_hits(hits)


@app.command()
def similar(
    message_id: int,
    limit: Annotated[int, typer.Option(help="How many messages.")] = 10,
    same_conversation: Annotated[bool, typer.Option(help="Only from the message's own conversation.")] = False,
) -> None:
    """The messages most similar to MESSAGE_ID."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    with db.session_scope() as session:
        try:
            hits = svc.similar_messages(session=session, message_id=message_id, limit=limit, same_conversation=same_conversation)
        except svc.ConversationNotFound as exc:
            _fail(str(exc))
    _print_hits(hits)


def _print_hits(hits) -> None:
    if not hits:
        typer.echo("No embedded messages yet (import and analyse a conversation first).")
    for h in hits:
        text = " ".join(h.content.split())[:110]
        typer.echo(f"{h.similarity:.3f}  conv {h.conversation_id} #{h.sequence} msg {h.message_id} {h.agent or '?'}: {text}")


@app.command()
def debate(
    topic: Annotated[str, typer.Option(help="What the agents discuss.")],
    agent: Annotated[list[str], typer.Option("--agent", help="NAME=MODEL, two or three times (models: `mmos catalog` / local names).")],
    rounds: Annotated[int, typer.Option(help="Rounds; every agent speaks once per round.")] = 3,
    now: Annotated[bool, typer.Option("--now", help="Run here instead of enqueueing a job.")] = False,
) -> None:
    """Start a debate between two or three models; each message is analysed as it arrives."""
    from mmos_core.core import db
    from mmos_core.llm.catalog import UnknownModelError, get_model
    from mmos_core.services import conversations as svc

    agents = []
    for spec in agent:
        name, sep, model = spec.partition("=")
        if not sep or not name.strip() or not model.strip():
            _fail(f"--agent {spec!r}: expected NAME=MODEL, e.g. Alice=qwen2.5-coder-1.5b-instruct")
        try:
            get_model(model.strip())
        except UnknownModelError as exc:
            _fail(str(exc))
        agents.append(svc.DebateAgent(name=name.strip(), model=model.strip()))
    try:
        with db.session_scope() as session:
            conv = svc.create_debate(session=session, topic=topic, agents=agents, rounds=rounds)
            cid = conv.id
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"conversation {cid}: debate of {len(agents)} agents, {rounds} rounds")
    if now:
        from workers.conversations import run_debate

        out = run_debate(cid)
        typer.echo(f"conversation {cid}: {out['messages']} messages; `mmos conversations show {cid}`")
    else:
        typer.echo(f"queued as {svc.enqueue_debate(cid)} (run `mmos worker`; watch the Conversations page)")


@app.command()
def delete(conversation_id: int, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Delete a conversation with its messages, embeddings, health points and findings."""
    from mmos_core.core import db
    from mmos_core.services import conversations as svc

    if not yes:
        typer.confirm(f"Delete conversation {conversation_id} and everything derived from it?", abort=True)
    with db.session_scope() as session:
        try:
            svc.delete_conversation(session=session, conversation_id=conversation_id)
        except svc.ConversationNotFound as exc:
            _fail(str(exc))
    typer.echo(f"conversation {conversation_id} deleted")
