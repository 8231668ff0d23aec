"""Cost of conversation analysis on a 1,000-message conversation built from real text.

    MMOS_DATA_DIR=/tmp/bench-conv python bench/conversations.py [--messages 1000] [--seed 7]

Builds a conversation of three agents speaking real sentences of `$MMOS_SHARED_DIR/data/person_texts`
(Darwin, Franklin, Lincoln), injects exact repeats (an agent says one of its earlier messages again)
and negated restatements (an earlier sentence with "not" inserted after its first auxiliary verb),
imports it (one transaction), then runs the same code as the `analyze_conversation` job and prints:

- ingestion time; analysis time per message (p50 / p95 ms, and per phase: embedding store,
  candidate query, contradictions, loops, citations, coherence, persistence);
- candidate pairs examined (sum over messages of the candidates each one was compared with) against
  all pairs n(n-1)/2;
- the plan PostgreSQL chose for the nearest-earlier-messages query (HNSW index or not);
- how many injected repeats / negations were flagged (recall on the injected items; other flags are
  not labelled, so no precision is claimed).

Runs `alembic upgrade head` first. Point MMOS_DATA_DIR at a scratch folder: it adds a conversation
per run. Prints SKIP and exits 0 when the texts or the embedding model are missing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

# whole sentences: start with a capital right after an end of sentence, 50-300 characters
_SENTENCE = re.compile(r"(?:(?<=[.!?] )|^)[A-Z][^.!?]{50,300}[.!?]")
_AUX = re.compile(r"\b(is|was|are|were|has|had|have|can|could|would|should|will|did|does|do|must|may)\b")
AGENTS = {"darwin_autobiography.txt": "Darwin", "franklin_autobiography.txt": "Franklin",
          "lincoln_speeches_and_letters.txt": "Lincoln"}


def default_texts_dir() -> Path:
    shared = Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return shared / "data" / "person_texts"


def negate(sentence: str) -> str | None:
    """The sentence with "not" after its first auxiliary verb ("was" → "was not"); None when it has none."""
    m = _AUX.search(sentence)
    if m is None or re.match(r"\s+not\b|n't", sentence[m.end():]):
        return None  # already negated: "not not" would be no contradiction
    return sentence[: m.end()] + " not" + sentence[m.end():]


def build(texts_dir: Path, n: int, seed: int, repeat_every: int, negate_every: int):
    """(messages as (agent, text), injected repeats as (orig, copy) indexes, injected negations likewise)."""
    rng = random.Random(seed)
    pools = {}
    for fname, agent in AGENTS.items():
        text = (texts_dir / fname).read_text(encoding="utf-8")
        sentences = _SENTENCE.findall(" ".join(text.split()))
        rng.shuffle(sentences)
        pools[agent] = sentences
    agents = list(AGENTS.values())

    def take(agent: str) -> str:
        # a short text runs out first: its agent then borrows from the fullest pool
        pool = pools[agent] if pools[agent] else max(pools.values(), key=len)
        return pool.pop()

    messages: list[tuple[str, str]] = []
    repeats: list[tuple[int, int]] = []
    negations: list[tuple[int, int]] = []
    for i in range(n):
        agent = agents[i % len(agents)]
        if i and i % repeat_every == 0 and i >= 30:
            orig = rng.randrange(max(0, i - 30), i - 3)
            messages.append((messages[orig][0], messages[orig][1]))
            repeats.append((orig, i))
            continue
        if i and i % negate_every == 0 and i >= 30:
            for _ in range(20):
                orig = rng.randrange(max(0, i - 200), i - 1)
                neg = negate(messages[orig][1])
                if neg and (orig, orig) not in repeats:
                    messages.append((agent, neg))
                    negations.append((orig, i))
                    break
            else:
                messages.append((agent, take(agent)))
            continue
        messages.append((agent, take(agent)))
    return messages, repeats, negations


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat-every", type=int, default=37, help="inject an exact repeat at every Nth message")
    ap.add_argument("--negate-every", type=int, default=41, help="inject a negated earlier sentence at every Nth message")
    ap.add_argument("--texts-dir", type=Path, default=default_texts_dir())
    ap.add_argument("--no-migrate", action="store_true")
    args = ap.parse_args()

    if not all((args.texts_dir / f).is_file() for f in AGENTS):
        print(f"SKIP: {args.texts_dir} lacks {', '.join(AGENTS)}")
        return 0
    from mmos_core.embeddings.embedder import EmbedderUnavailable

    if not args.no_migrate:
        from mmos_core.core.migrate import upgrade

        upgrade("head")
    from sqlalchemy import select, text

    from mmos_core.core.config import get_settings
    from mmos_core.core.db import session_scope
    from mmos_core.models.conversations import ConversationQuality, Message
    from mmos_core.services import conversations as svc
    from mmos_core.text.conversation_import import ParsedConversation, ParsedMessage
    from workers.conversations import analyze_conversation

    try:
        from mmos_core.services.model_registry import cached_registry_embedder

        embedder = cached_registry_embedder()
    except EmbedderUnavailable as exc:
        print(f"SKIP: {exc}")
        return 0

    settings = get_settings()
    messages, repeats, negations = build(args.texts_dir, args.messages, args.seed, args.repeat_every, args.negate_every)
    n = len(messages)
    parsed = ParsedConversation(
        title=f"bench {time.strftime('%Y-%m-%d %H:%M:%S')} ({n} messages, seed {args.seed})", source_format="openai",
        messages=tuple(ParsedMessage(role="assistant", agent_name=a, content=c) for a, c in messages),
    )
    t0 = time.perf_counter()
    with session_scope() as session:
        cid = svc.create_conversation(session=session, parsed=parsed).id
    ingest_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = analyze_conversation(cid)
    analyse_s = time.perf_counter() - t0

    with session_scope() as session:
        points = session.execute(
            select(Message.sequence_number, ConversationQuality.analysis_metadata, ConversationQuality.health_score)
            .join(Message, Message.id == ConversationQuality.message_id)
            .where(ConversationQuality.conversation_id == cid)
            .order_by(Message.sequence_number)
        ).all()
        loops = svc.loop_alerts(session=session, conversation_id=cid, include_closed=True)
        contra = svc.contradiction_alerts(session=session, conversation_id=cid, include_resolved=True)
        last = session.scalars(select(Message).where(Message.conversation_id == cid, Message.sequence_number == n - 1)).one()
        vec = session.scalar(text("SELECT embedding::text FROM message_embeddings WHERE message_id = :m"), {"m": last.id})
        session.execute(text(f"SET LOCAL hnsw.ef_search = {int(settings.conversation_hnsw_ef_search)}"))
        plan = "\n".join(r[0] for r in session.execute(text(
            "EXPLAIN (ANALYZE, COSTS OFF) SELECT message_id FROM message_embeddings WHERE conversation_id = :c "
            "AND sequence_number < :s AND embedding_model = :m ORDER BY embedding <=> CAST(:v AS vector) LIMIT :k"),
            {"c": cid, "s": n - 1, "m": "all-MiniLM-L6-v2", "v": vec, "k": settings.conversation_candidate_k}))

    phases: dict[str, list[float]] = {}
    candidates = 0
    for _, meta, _ in points:
        candidates += int(meta.get("candidates", 0))
        for k, v in (meta.get("timings_ms") or {}).items():
            phases.setdefault(k, []).append(float(v))
    all_pairs = n * (n - 1) // 2
    loop_last = {lp.last_sequence for lp in loops}
    loop_spans = [(lp.first_sequence, lp.last_sequence) for lp in loops]
    repeats_flagged = sum(1 for o, c in repeats if c in loop_last or any(f <= o and c <= l for f, l in loop_spans))
    pairs = {(c.sequence_1, c.sequence_2) for c in contra}
    negations_flagged = sum(1 for o, c in negations if (o, c) in pairs)
    uses_hnsw = "idx_embeddings_vector_hnsw" in plan

    # the job embeds through the Redis cache (a rerun of the bench hits it): time the model itself too
    raw = getattr(embedder, "embedder", embedder)
    t0 = time.perf_counter()
    raw.embed([c for _, c in messages], batch_size=32)
    embed_s = time.perf_counter() - t0

    print(f"conversation {cid}: {n} messages from {', '.join(AGENTS.values())} ({args.texts_dir})")
    print(f"  injected: {len(repeats)} exact repeats, {len(negations)} negated restatements")
    print(f"ingestion (one transaction)          {ingest_s * 1000:8.0f} ms  ({n / ingest_s:,.0f} messages/s)")
    print(f"analysis, whole conversation          {analyse_s:8.1f} s   ({n / analyse_s:.1f} messages/s, embedding included)")
    print(f"embedding all {n} messages, uncached   {embed_s:8.1f} s   ({n / embed_s:.0f} messages/s, ONNX batch 32)")
    print(f"analysis per message (job loop)       p50 {out['p50_ms']:.1f} ms  p95 {out['p95_ms']:.1f} ms")
    for k in ("embed", "candidates", "contradictions", "loops", "citations", "coherence", "persist", "total"):
        if k in phases:
            print(f"  {k:<34s}  p50 {statistics.median(phases[k]):7.2f} ms  p95 {pct(phases[k], 0.95):7.2f} ms")
    print(f"candidate pairs examined              {candidates:,} of n(n-1)/2 = {all_pairs:,} "
          f"({100 * candidates / all_pairs:.2f} %, ≤ {settings.conversation_candidate_k} nearest + "
          f"{settings.conversation_recent_turns} recent per message)")
    print(f"nearest-earlier query uses HNSW index {uses_hnsw}")
    shown = re.sub(r"'\[[-0-9.e, ]+\]'", "'[…384 floats…]'", plan)
    print("  plan: " + " | ".join(line.strip() for line in shown.splitlines()[:6]))
    print(f"flagged: {len(loops)} loops, {len(contra)} contradictions; health at the end {points[-1][2]:.1f}")
    print(f"injected repeats inside a flagged loop  {repeats_flagged}/{len(repeats)}")
    print(f"injected negations flagged as contradiction {negations_flagged}/{len(negations)}")
    print(f"(settings: k={settings.conversation_candidate_k}, recent={settings.conversation_recent_turns}, "
          f"loop window={settings.conversation_loop_window}, ef_search={settings.conversation_hnsw_ef_search}; "
          f"seed {args.seed}; load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
