"""Conversation detectors (docs/conversations.md): contradictions, loops, citations, coherence, health - pure, no services.

Tests that need realistic similarities use the provisioned ONNX embedder (`embedder_or_skip`); the rest use
exact or hand-built vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmos_core.analysis.detectors import (
    Citation,
    CitationCheck,
    ContradictionFinding,
    LoopFinding,
    MessageView,
    coherence_score,
    contradiction_probability,
    detect_contradictions,
    detect_loop,
    extract_citations,
    health_point,
    verify_citation,
)


def msg(i: int, agent: str, text: str, emb: np.ndarray | None = None, role: str = "assistant") -> MessageView:
    return MessageView(id=100 + i, sequence=i, agent=agent, role=role, content=text, embedding=emb)


@pytest.fixture(scope="module")
def emb(embedder_or_skip):
    def build(i: int, agent: str, text: str, role: str = "assistant") -> MessageView:
        return msg(i, agent, text, embedder_or_skip.embed_one(text), role)

    build.embed = embedder_or_skip.embed  # type: ignore[attr-defined]
    return build


# ------------------------------------------------------------------------------------------ contradictions
def test_agent_reversing_its_own_claim_is_flagged_with_both_sentences(emb):
    a = emb(0, "Analyst", "Our test suite is fast. The new caching layer reduces latency for every request.")
    other = emb(1, "Critic", "I am not convinced by the benchmark setup.")
    b = emb(2, "Analyst", "To be honest, the new caching layer does not reduce latency. We should measure again.")
    found = detect_contradictions(b, [a, other], emb.embed)
    assert len(found) == 1
    f = found[0]
    assert (f.message_a_id, f.message_b_id) == (a.id, b.id)  # a = earlier
    assert f.statement_a == "The new caching layer reduces latency for every request."
    assert f.statement_b == "To be honest, the new caching layer does not reduce latency."
    assert f.same_agent is True
    assert 0.5 <= f.probability <= 1.0
    assert f.severity in ("HIGH", "CRITICAL")  # self-contradiction about a near-paraphrase is escalated
    assert "negates" in f.explanation
    assert f.semantic_similarity > 0.8


def test_agreement_and_restatement_are_not_contradictions(emb):
    a = emb(0, "A", "The caching layer reduces latency.")
    b = emb(1, "B", "I agree, caching cuts the latency considerably.")
    c = emb(2, "C", "Python is a good choice for the backend.")
    d = emb(3, "A", "We should adopt Python for the backend.")
    assert detect_contradictions(b, [a], emb.embed) == []
    assert detect_contradictions(d, [c], emb.embed) == []


def test_different_figures_between_agents_are_flagged_and_explained(emb):
    a = emb(0, "Planner", "The migration will cost 5 million dollars.")
    b = emb(1, "Auditor", "The migration will cost 50 million dollars.")
    (f,) = detect_contradictions(b, [a], emb.embed)
    assert f.same_agent is False
    assert "5 million vs 50 million" in f.explanation
    assert "figure" in f.resolution_suggestion
    assert f.probability >= 0.7 and f.severity in ("MEDIUM", "HIGH", "CRITICAL")


def test_unrelated_statements_are_not_paired(emb):
    a = emb(0, "A", "Remote work is good for productivity.")
    b = emb(1, "A", "The weather in Paris is not nice in winter.")
    assert detect_contradictions(b, [a], emb.embed) == []
    assert contradiction_probability(a.content, b.content, a.embedding, b.embedding) < 0.5


def test_probability_is_symmetric_and_higher_for_a_negated_claim(emb):
    x, y, z = (emb(i, "A", t) for i, t in enumerate(
        ["Nuclear power is safe.", "Nuclear power is not safe.", "Nuclear power is a safe option."]
    ))  # fmt: skip
    p_xy = contradiction_probability(x.content, y.content, x.embedding, y.embedding)
    p_yx = contradiction_probability(y.content, x.content, y.embedding, x.embedding)
    p_xz = contradiction_probability(x.content, z.content, x.embedding, z.embedding)
    assert p_xy == pytest.approx(p_yx)
    assert p_xy > p_xz


def test_embed_is_called_once_and_skips_system_tool_and_self():
    calls: list[list[str]] = []

    def fake_embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.tile(np.eye(384, dtype=np.float32)[0], (len(texts), 1))  # all identical: cosine 1

    new = msg(5, "A", "The service is not available in Europe.")
    cands = [
        msg(0, "", "You are a helpful assistant and the service is available in Europe.", role="system"),
        msg(1, "tool", "The service is available in Europe.", role="tool"),
        new,
        msg(2, "B", "The service is available in Europe."),
    ]
    found = detect_contradictions(new, cands, fake_embed)
    assert len(calls) == 1
    assert calls[0] == ["The service is not available in Europe.", "The service is available in Europe."]
    assert [f.message_a_id for f in found] == [102]


def test_sentences_per_message_are_bounded():
    seen: list[int] = []

    def fake_embed(texts: list[str]) -> np.ndarray:
        seen.append(len(texts))
        rng = np.random.default_rng(0)
        v = rng.normal(size=(len(texts), 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    long = " ".join(f"Claim number {i} is about topic {i}." for i in range(50))
    detect_contradictions(msg(3, "A", long), [msg(i, "B", long) for i in range(3)], fake_embed, max_sentences=5)
    assert seen == [5 * 4]


def test_a_worker_embeds_only_sentences_it_has_not_seen_and_ignores_code():
    class CountingEmbedder:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            self.seen += texts
            return np.tile(np.eye(384, dtype=np.float32)[0], (len(texts), 1))

    e = CountingEmbedder()
    old = msg(0, "B", "The service is available in Europe.\n\n```\nassert service is not None\n```")
    first = detect_contradictions(msg(1, "A", "The service is not available in Europe."), [old], e.embed)
    second = detect_contradictions(msg(2, "C", "The service is not available in Asia or Europe."), [old], e.embed)
    assert len(first) == len(second) == 1
    assert e.seen == ["The service is not available in Europe.", "The service is available in Europe.",
                      "The service is not available in Asia or Europe."]  # fmt: skip


# ------------------------------------------------------------------------------------------ loops
def test_agent_repeating_its_argument_three_times_is_a_loop_with_its_count():
    arg = "We must rewrite the whole service in Rust because the current code is too slow to maintain."
    history = [
        msg(0, "Dev", arg),
        msg(1, "Lead", "What about profiling the hot paths first?"),
        msg(2, "Dev", "As I said, we must rewrite the whole service in Rust because the current code is too slow."),
        msg(3, "Lead", "That is a big investment; show me numbers."),
    ]
    new = msg(4, "Dev", "Again: we must rewrite the whole service in Rust because the current code is too slow to maintain.")
    loop = detect_loop(new, history)
    assert isinstance(loop, LoopFinding)
    assert (loop.pattern_size, loop.repetition_count) == (1, 3)
    assert (loop.first_message_id, loop.last_message_id) == (100, 104)
    assert "3 times" in loop.intervention_message and "Dev" in loop.intervention_message
    assert len(loop.pattern_hash) == 32 and 0.5 <= loop.similarity <= 1.0


def test_two_agents_going_round_in_a_cycle_is_a_size_two_loop():
    x = "I think the budget should go to marketing first, since sales are falling this quarter."
    y = "No, the budget should go to engineering first, since the product has too many bugs."
    history = [msg(0, "Host", "Where should the budget go?"), msg(1, "A", x), msg(2, "B", y), msg(3, "A", x)]
    loop = detect_loop(msg(4, "B", y), history)
    assert loop is not None
    assert (loop.pattern_size, loop.repetition_count, loop.first_message_id) == (2, 2, 101)
    assert "2-message exchange between A, B" in loop.intervention_message


def test_one_restatement_is_not_a_loop_and_new_content_is_not_either():
    a = "We should ship the feature on Friday after the final review."
    assert detect_loop(msg(1, "A", a), [msg(0, "A", a)]) is None
    history = [msg(i, "A", f"Point {i}: the {w} module needs its own tests before release.") for i, w in
               enumerate(["parser", "network", "storage", "billing"])]  # fmt: skip
    assert detect_loop(msg(4, "A", "Let us schedule the release meeting for Monday morning."), history) is None


def test_reworded_repetition_is_caught_by_the_embedding_and_keeps_its_hash():
    v = np.zeros(384, dtype=np.float32)
    v[0] = 1.0
    texts = ["Costs are the main risk here.", "The main risk, again, is cost.", "Honestly cost is the biggest risk.",
             "Cost remains the key risk."]  # fmt: skip
    views = [msg(i, "A", t, v) for i, t in enumerate(texts)]
    third = detect_loop(views[2], views[:2])
    fourth = detect_loop(views[3], views[:3])
    assert third is not None and third.repetition_count == 3
    assert fourth is not None and fourth.repetition_count == 4
    no_vectors = [msg(i, "A", t) for i, t in enumerate(texts)]
    assert detect_loop(no_vectors[2], no_vectors[:2]) is None  # wording differs: only the embedding sees it
    same = [msg(i, "A", "Costs are the main risk here.") for i in range(4)]
    assert detect_loop(same[2], same[:2]).pattern_hash == detect_loop(same[3], same[:3]).pattern_hash


# ------------------------------------------------------------------------------------------ citations
def test_url_is_extracted_with_its_span_and_trailing_punctuation_trimmed():
    text = "The figures are at https://example.org/report?id=7. See also [the WHO page](https://who.int/a_(b))."
    url, md = extract_citations(text)
    assert (url.url, url.citation_type) == ("https://example.org/report?id=7", "url")
    assert text[url.start : url.end] == url.text == "https://example.org/report?id=7"
    assert (md.url, md.title) == ("https://who.int/a_(b)", "the WHO page")
    assert text[md.start : md.end] == md.text


def test_quotes_dois_and_references_are_extracted():
    text = ('He wrote “the results do not replicate at all” in doi:10.1000/xyz.123, not "really" - see '
            "(Smith et al., 2020) and Jones and Lee (2019), according to the World Health Organization.")  # fmt: skip
    kinds = [(c.citation_type, c.text) for c in extract_citations(text)]
    assert kinds == [
        ("quote", "the results do not replicate at all"),
        ("doi", "doi:10.1000/xyz.123"),
        ("reference", "(Smith et al., 2020)"),
        ("reference", "Jones and Lee (2019)"),
        ("reference", "the World Health Organization"),
    ]  # "really" is a scare quote, not a citation
    assert all(text[c.start : c.end] == c.text for c in extract_citations(text))


SOURCE = ("interview-3", "Q: What changed? A: Honestly, the biggest change was that the team started writing "
          "tests before code, and our release cadence doubled within a year.")  # fmt: skip


def _quote(text: str) -> Citation:
    (c,) = [c for c in extract_citations(f'She said "{text}".') if c.citation_type == "quote"]
    return c


def test_a_fake_quote_is_never_verified():
    fake = _quote("the team abandoned testing and shipped faster than ever")
    assert verify_citation(fake, [SOURCE]) == CitationCheck(False, "not_found", 0.0, None)
    assert verify_citation(fake, []) == CitationCheck(None, "unverifiable", 0.0, None)


def test_a_real_quote_is_verified_exactly_or_fuzzily_with_its_source():
    exact = verify_citation(_quote("the team started writing tests before code"), [("other", "nothing"), SOURCE])
    assert (exact.verified, exact.method, exact.confidence, exact.matched_label) == (True, "exact_quote", 1.0, "interview-3")
    fuzzy = verify_citation(_quote("the team started writting test before code"), [SOURCE])
    assert (fuzzy.verified, fuzzy.method, fuzzy.matched_label) == (True, "fuzzy_quote", "interview-3")
    assert 0.85 <= fuzzy.confidence < 1.0


def test_urls_and_references_are_only_verified_when_found():
    (url,) = extract_citations("Source: https://example.org/known-report")
    known = [("Known report (https://example.org/known-report)", "text")]
    assert verify_citation(url, known).method == "known_url" and verify_citation(url, known).verified is True
    (other,) = extract_citations("Source: https://elsewhere.net/x")
    assert verify_citation(other, known).verified is None  # cannot be checked offline: unknown, not verified
    (ref,) = extract_citations("This is well established (Smith et al., 2020).")
    assert verify_citation(ref, [("Smith 2020", "Smith, J. (2020). Testing at scale.")]).verified is True
    assert verify_citation(ref, [("Brown 2018", "Brown, K. (2018). Other work.")]).verified is False


# ------------------------------------------------------------------------------------------ coherence
def test_on_topic_reply_scores_higher_than_an_off_topic_one(emb):
    q = emb(0, "Host", "How should we reduce the cloud bill for our analytics cluster?")
    good = emb(1, "A", "Move the analytics cluster to spot instances and shut it down at night to cut the bill.")
    bad = emb(1, "A", "My favourite pasta recipe uses fresh basil, garlic and a lot of olive oil.")
    assert coherence_score(good, [q]) >= 70
    assert coherence_score(bad, [q]) <= 20
    assert coherence_score(q, []) == 100.0  # the opener sets the topic
    assert coherence_score(msg(1, "A", "   "), [q]) == 0.0


def test_coherence_without_embeddings_uses_word_overlap():
    q = msg(0, "Host", "How should we reduce the cloud bill for the analytics cluster?")
    good = msg(1, "A", "Reduce the cloud bill: shrink the analytics cluster.")
    bad = msg(1, "A", "Pasta needs basil and garlic.")
    assert coherence_score(good, [q]) > coherence_score(bad, [q]) == 0.0


# ------------------------------------------------------------------------------------------ health
def _contra(severity: str, newer_message: int = 2) -> ContradictionFinding:
    return ContradictionFinding(1, newer_message, "a", "b", 0.9, severity, 0.9, True, "", "")


def _loop(count: int, size: int = 1) -> LoopFinding:
    return LoopFinding("h", size, count, 1, 2, 0.9, "")


def test_healthy_conversation_scores_100_and_needs_no_intervention():
    p = health_point(coherence_scores=[100, 90, 95], open_contradictions=[], loops=[], citation_checks=[], message_count=3)
    assert p.coherence_score == 95.0 and p.contradiction_score == p.loop_score == p.citation_score == 100.0
    assert p.health_score == pytest.approx(0.30 * 95 + 70) and not p.requires_intervention and p.reasons == []


def test_critical_contradiction_drops_health_and_flips_intervention():
    base = dict(coherence_scores=[100], loops=[], citation_checks=[], message_count=10)
    high = health_point(open_contradictions=[_contra("HIGH")], **base)
    crit = health_point(open_contradictions=[_contra("CRITICAL")], **base)
    assert high.contradiction_score == 75.0 and not high.requires_intervention
    assert crit.contradiction_score == 55.0 and crit.health_score == pytest.approx(100 - 0.30 * 45)
    assert crit.requires_intervention and any("CRITICAL" in r for r in crit.reasons)


def test_loop_threshold_and_health_threshold_flip_intervention():
    base = dict(coherence_scores=[100], open_contradictions=[], citation_checks=[], message_count=12)
    three = health_point(loops=[_loop(3)], **base)
    four = health_point(loops=[_loop(4)], **base)
    assert three.loop_score == 60.0 and not three.requires_intervention
    assert four.loop_score == 40.0 and four.requires_intervention  # 4 repetitions = H.INTERVENTION_LOOP_REPEATS
    # health just above / below INTERVENTION_HEALTH (60) with every component >= 40: contradiction 40
    # (5 MEDIUM), loop 60 (3 repetitions), citation 100; coherence moves health by 0.30 per point
    around = dict(open_contradictions=[_contra("MEDIUM", m) for m in range(2, 7)], loops=[_loop(3)], citation_checks=[],
                  message_count=20)
    above = health_point(coherence_scores=[61], **around)
    below = health_point(coherence_scores=[59], **around)
    assert above.health_score == pytest.approx(60.3) and not above.requires_intervention
    assert below.health_score == pytest.approx(59.7) and below.requires_intervention
    assert "health 59.7 is below 60" in below.reasons[0]


def test_a_statement_conflicting_with_several_earlier_ones_is_charged_once():
    one_statement = [ContradictionFinding(a, 9, f"earlier {a}", "the newest claim", 0.9, "HIGH", 0.9, False, "", "")
                     for a in (1, 2, 3)]
    p = health_point(coherence_scores=[], open_contradictions=one_statement, loops=[], citation_checks=[], message_count=9)
    assert p.contradiction_score == 75.0  # one HIGH (25), not three


def test_unverified_citations_lower_the_citation_score():
    checks = [CitationCheck(True, "exact_quote", 1.0, "s"), CitationCheck(None, "unverifiable", 0.0, None),
              CitationCheck(False, "not_found", 0.0, None)]  # fmt: skip
    p = health_point(coherence_scores=[], open_contradictions=[], loops=[], citation_checks=checks, message_count=3)
    assert p.citation_score == pytest.approx(100 * (1.0 + 0.7 + 0.0) / 3, abs=0.01)
    with pytest.raises(ValueError, match="message_count"):
        health_point(coherence_scores=[], open_contradictions=[], loops=[], citation_checks=[], message_count=-1)
