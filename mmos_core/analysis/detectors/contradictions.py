"""Contradiction detection between conversation messages (docs/conversations.md).

No licence-clean NLI model can be obtained offline (see /work/shared/docs/offline-models.md), so the
classifier is a documented method on our own embedder:

1. Each message is split into sentences (`text.split_sentences`); every sentence of the new message is
   paired with every sentence of each candidate message, and a pair is kept when the cosine of their
   all-MiniLM-L6-v2 vectors is at least `CANDIDATE_MIN_COSINE` (statements about different things cannot
   contradict each other). The caller picks the candidate messages from the vector index, so the work
   is O(k) in the k candidates, never all pairs.
2. For a pair, `pair_features` computes the features in `FEATURE_NAMES` (cosine, content-word overlap,
   negation / antonym / number / modality / quantifier / sentiment mismatch and their products with
   the cosine).
3. `contradiction_probability` = logistic(`COEFFICIENTS` · features + `INTERCEPT`), a logistic regression
   fitted by `bench/prosecco.py --fit` on the train split of ProSeCCo (self-contradictions in real
   debates, CC BY-SA 4.0); the held-out figures are in docs/conversations.md.
4. The gate: a pair is reported only when its probability is >= `REPORT_THRESHOLD` (0.6) AND at least one
   explicit conflict cue fires (negation mismatch, antonym, different numbers, certain vs hedged, all vs
   some, opposite sentiment). Why: in ProSeCCo every pair is a same-speaker pair on one topic and half are
   contradictions, so the fit learns "similar => contradiction"; among the nearest neighbours in a real
   conversation most similar pairs are agreements and restatements, which the gate keeps out.

Severity comes from the probability (`SEVERITY_THRESHOLDS`), raised one level when the same agent
contradicts itself with near-paraphrase statements (see `_severity`).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmos_core.analysis.detectors.text import content_words, jaccard, split_sentences, words
from mmos_core.analysis.detectors.types import Embed, MessageView

__all__ = [
    "CANDIDATE_MIN_COSINE",
    "COEFFICIENTS",
    "FEATURE_NAMES",
    "INTERCEPT",
    "REPORT_THRESHOLD",
    "SEVERITY_THRESHOLDS",
    "ContradictionFinding",
    "contradiction_probability",
    "detect_contradictions",
    "has_conflict_cue",
    "pair_features",
]

# ---------------------------------------------------------------------------------------------- lexicons
# Small closed-class word lists (English). They are features, not rules: the regression decides how much
# each one counts.
NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot hardly barely nowhere".split()
)
_ANTONYM_PAIRS = """
good bad | better worse | best worst | right wrong | true false | correct incorrect | safe unsafe | safe dangerous
increase decrease | increased decreased | increasing decreasing | rise fall | rising falling | rose fell | up down
more less | more fewer | most least | higher lower | high low | greater smaller | larger smaller | large small
big small | bigger smaller | many few | always never | all none | everyone nobody | everything nothing
possible impossible | likely unlikely | agree disagree | support oppose | supported opposed | accept reject
allow forbid | allow ban | allowed banned | legal illegal | win lose | won lost | winning losing | success failure
succeed fail | succeeded failed | strong weak | stronger weaker | rich poor | richer poorer | cheap expensive
cheaper dearer | fast slow | faster slower | early late | earlier later | before after | open closed | open close
start stop | started stopped | begin end | include exclude | included excluded | present absent | same different
similar different | yes no | positive negative | optimistic pessimistic | benefit harm | help hurt | helps hurts
easy hard | easy difficult | simple complex | simple complicated | efficient inefficient | effective ineffective
necessary unnecessary | important unimportant | relevant irrelevant | fair unfair | honest dishonest | clear unclear
valid invalid | sufficient insufficient | adequate inadequate | enough insufficient
love hate | like dislike | praise criticise | praise criticize | applaud criticise | applaud criticize | approve disapprove
gain loss | profit loss | surplus deficit | growth decline | grow shrink | expand reduce | raise cut | add remove
accurate inaccurate | reliable unreliable | secure insecure | stable unstable | certain uncertain | known unknown
public private | guilty innocent | alive dead | full empty | first last | maximum minimum | inside outside
"""
ANTONYMS: dict[str, frozenset[str]] = {}
for _pair in _ANTONYM_PAIRS.replace("\n", "|").split("|"):
    if not _pair.strip():
        continue
    _x, _y = _pair.split()
    ANTONYMS.setdefault(_x, frozenset())
    ANTONYMS.setdefault(_y, frozenset())
    ANTONYMS[_x] |= {_y}
    ANTONYMS[_y] |= {_x}
CERTAIN = frozenset("will must always definitely certainly clearly surely undoubtedly guaranteed proven obviously".split())
HEDGED = frozenset("may might could perhaps possibly maybe probably unlikely likely uncertain unclear sometimes".split())
UNIVERSAL = frozenset("all every everyone everybody everything always each entire whole".split())
PARTIAL = frozenset("some few several many most often sometimes occasionally partly partially".split())
POSITIVE = frozenset(
    """good great excellent better best benefit beneficial help helps helpful support supports welcome welcomed applaud
    applauded praise success successful right correct fair agree improve improved improvement positive safe effective
    works working strong win proud happy glad important necessary""".split()
)
NEGATIVE = frozenset(
    """bad terrible awful worse worst harm harmful hurt hurts oppose against criticise criticize criticism unfair wrong
    incorrect fail failed failure failing disagree problem problems negative dangerous unsafe ineffective broken weak
    lose lost scandal disaster shame ashamed poor unnecessary mistake crisis""".split()
)
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*%?$")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "half": "0.5", "twice": "2", "double": "2",
}  # fmt: skip

# ---------------------------------------------------------------------------------------------- the model
FEATURE_NAMES: tuple[str, ...] = (
    "cosine",  # cosine of the two statements' embeddings, in [-1, 1]
    "overlap",  # Jaccard of content words (stop words and negations removed), [0, 1]
    "negation_mismatch",  # 1 when exactly one statement is negated (odd number of negations), else 0
    "negation_mismatch_x_cosine",  # negation_mismatch * max(cosine, 0): "X" vs "not X" about the same thing
    "number_mismatch",  # 1 when each states a figure (<= MAX_FIGURES of them) the other does not
    "number_mismatch_x_cosine",
    # Each of these fires on under 3 % of ProSeCCo pairs, too rare to fit one weight each, so they share one:
    # antonym (a word of one statement has its antonym in the other), sentiment flip (net positive vs net
    # negative evaluation), modality (certain vs hedged), quantifier (all/always vs some/often).
    "opposition",
    "opposition_x_cosine",
    "length_gap",  # |log((words_a + 1) / (words_b + 1))|
)
CUE_FEATURES = frozenset(
    {"negation_mismatch", "negation_mismatch_x_cosine", "number_mismatch", "number_mismatch_x_cosine", "opposition",
     "opposition_x_cosine"}
)  # fmt: skip
"""Features constrained to non-negative weights in the fit: a conflict cue never lowers the probability."""

# Fitted by `python bench/prosecco.py --fit`: logistic regression (numpy Newton-IRLS, L2 penalty 1.0 on the
# weights, cue weights constrained >= 0 by an active set) on the train split of ProSeCCo (speakers shuffled
# with seed 20261121; 70 % of speakers, 957 pairs), on the context-resolved propositions, which read like
# the self-contained sentences of LLM turns. Held-out figures: docs/conversations.md. Do not edit by hand.
COEFFICIENTS: tuple[float, ...] = (
    1.8153,  # cosine
    0.1732,  # overlap
    0.3152,  # negation_mismatch
    0.1538,  # negation_mismatch_x_cosine
    0.4087,  # number_mismatch
    0.3349,  # number_mismatch_x_cosine
    0.0000,  # opposition (came out negative on ProSeCCo: constrained to 0; it still opens the gate)
    0.0000,  # opposition_x_cosine
    0.0670,  # length_gap
)
INTERCEPT: float = -1.0678

CANDIDATE_MIN_COSINE = 0.5
"""Sentence pairs below this cosine are not classified (different topics); see docs/conversations.md.
Raised from 0.35 after real multi-agent logs: at 0.35 most flagged pairs were unrelated sentences."""
STRONG_CUES = ("negation", "antonym", "number")
"""Cues that open the reporting gate. Sentiment, modality and quantifier shifts still feed the regression
but no longer open the gate alone: in Who&When logs they fired on most pairs of ordinary replies."""
REPORT_THRESHOLD = 0.6
"""A pair is reported when its probability is at least this (and a cue fires). Above the regression's
natural 0.5 because contradictions are far rarer among a conversation's nearest neighbours than in
ProSeCCo (52 %): on its held-out propositions the gated detector has precision 0.73 at 0.6 vs 0.66 at 0.5."""
SEVERITY_THRESHOLDS: tuple[tuple[float, str], ...] = ((0.9, "CRITICAL"), (0.8, "HIGH"), (0.7, "MEDIUM"), (0.0, "LOW"))
"""Probability lower bounds of each severity, highest first."""
_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class ContradictionFinding:
    """Two statements in two messages that conflict; `a` is the earlier message, `b` the newer.

    Attributes:
        message_a_id, message_b_id: `messages.id` of the earlier and the newer message.
        statement_a, statement_b: the two sentences that conflict, verbatim from the messages.
        probability: classifier probability 0..1 (`contradiction_probability`).
        severity: "LOW" | "MEDIUM" | "HIGH" | "CRITICAL" (`SEVERITY_THRESHOLDS`, see `_severity`).
        semantic_similarity: cosine of the two statements' embeddings.
        same_agent: both messages come from the same (non-empty) agent name.
        explanation: which features fired, in words.
        resolution_suggestion: a sentence a moderator can send to the agents.
    """

    message_a_id: int
    message_b_id: int
    statement_a: str
    statement_b: str
    probability: float
    severity: str
    semantic_similarity: float
    same_agent: bool
    explanation: str
    resolution_suggestion: str


MAX_FIGURES = 4
NUMBER_MIN_OVERLAP = 0.25
"""Content-word Jaccard two statements need before different figures count as a conflict."""
"""A statement with more distinct numbers than this is a list or table, not a claim about one quantity."""
_SCALES = {"hundred": 100.0, "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "bn": 1e9, "billion": 1e9, "trillion": 1e12}


def _numbers(tokens: list[str]) -> dict[float, str]:
    """Quantities stated in a token list: value -> how it was written ("5 million" -> 5e6: "5 million")."""
    out: dict[float, str] = {}
    for i, t in enumerate(tokens):
        if _NUMBER.match(t):
            raw = t.rstrip("%").replace(",", "")
            try:
                value = float(raw)
            except ValueError:  # "1.2.3" (a version number) is not a quantity
                continue
        elif t in _NUMBER_WORDS and not (t == "one" and i + 1 < len(tokens) and tokens[i + 1] == "of"):
            value = float(_NUMBER_WORDS[t])
        else:
            continue
        if t in _SCALES:  # a bare "million" after a digit is handled with that digit
            continue
        written = t
        if i + 1 < len(tokens) and tokens[i + 1] in _SCALES:
            value *= _SCALES[tokens[i + 1]]
            written = f"{t} {tokens[i + 1]}"
        out.setdefault(value, written)
    return out


def _sentiment(tokens: list[str]) -> int:
    """Net sentiment sign: +1 / -1 / 0; a negation within the 3 preceding words flips a sentiment word."""
    score = 0
    for i, t in enumerate(tokens):
        s = 1 if t in POSITIVE else -1 if t in NEGATIVE else 0
        if s and any(w in NEGATIONS for w in tokens[max(0, i - 3) : i]):
            s = -s
        score += s
    return (score > 0) - (score < 0)


def _lexical(text: str) -> dict:
    tokens = words(_ENUMERATOR.sub("", text, count=1))
    token_set = set(tokens)
    return {
        "tokens": tokens,
        "set": token_set,
        "content": content_words(text),
        "negated": sum(t in NEGATIONS for t in tokens) % 2 == 1,
        "numbers": _numbers(tokens),
        "certain": bool(token_set & CERTAIN),
        "hedged": bool(token_set & HEDGED),
        "universal": bool(token_set & UNIVERSAL),
        "partial": bool(token_set & PARTIAL),
        "sentiment": _sentiment(tokens),
    }


def _antonym_hit(a: dict, b: dict) -> tuple[str, str] | None:
    for w in a["set"]:
        for ant in ANTONYMS.get(w, ()):
            if ant in b["set"] and ant not in a["set"] and w not in b["set"]:
                return w, ant
    return None


def pair_features(a: str, b: str, cosine: float) -> np.ndarray:
    """The feature vector of one statement pair, in the order of `FEATURE_NAMES`.

    Args:
        a, b: the two statements (sentences); order does not matter (every feature is symmetric).
        cosine: cosine similarity of their embeddings (dot product of the unit vectors).

    Returns:
        float64 array of shape (len(FEATURE_NAMES),).
    """
    la, lb = _lexical(a), _lexical(b)
    return _features(la, lb, cosine)


def _cues(la: dict, lb: dict) -> dict[str, bool]:
    """Which conflict cues fire between two analysed statements."""
    return {
        "negation": la["negated"] != lb["negated"],
        "antonym": _antonym_hit(la, lb) is not None,
        # each side states a figure the other does not, neither is a list of figures (> MAX_FIGURES), and
        # they share enough content words to be about the same quantity (NUMBER_MIN_OVERLAP)
        "number": jaccard(la["content"], lb["content"]) >= NUMBER_MIN_OVERLAP
        and 0 < len(la["numbers"]) <= MAX_FIGURES
        and 0 < len(lb["numbers"]) <= MAX_FIGURES
        and bool(set(la["numbers"]) - set(lb["numbers"]))
        and bool(set(lb["numbers"]) - set(la["numbers"])),
        "modality": (la["certain"] and lb["hedged"] and not lb["certain"])
        or (lb["certain"] and la["hedged"] and not la["certain"]),
        "quantifier": (la["universal"] and lb["partial"] and not lb["universal"])
        or (lb["universal"] and la["partial"] and not la["universal"]),
        "sentiment": la["sentiment"] * lb["sentiment"] < 0,
    }


def _features(la: dict, lb: dict, cosine: float) -> np.ndarray:
    pos = max(float(cosine), 0.0)
    cues = _cues(la, lb)
    neg = float(cues["negation"])
    num = float(cues["number"])
    opp = float(cues["antonym"] or cues["sentiment"] or cues["modality"] or cues["quantifier"])
    gap = abs(math.log((len(la["tokens"]) + 1) / (len(lb["tokens"]) + 1)))
    return np.array(
        [float(cosine), jaccard(la["content"], lb["content"]), neg, neg * pos, num, num * pos, opp, opp * pos, gap],
        dtype=np.float64,
    )


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _probability(features: np.ndarray) -> float:
    return _logistic(float(np.dot(np.asarray(COEFFICIENTS), features)) + INTERCEPT)


def contradiction_probability(a: str, b: str, emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Probability (0..1) that statements `a` and `b` contradict each other.

    Args:
        a, b: two statements (one sentence each works best; whole messages are accepted).
        emb_a, emb_b: their (384,) unit embeddings from our all-MiniLM-L6-v2 embedder.

    Returns:
        logistic(`COEFFICIENTS` · `pair_features(a, b, cos)` + `INTERCEPT`); symmetric in (a, b).
        Measured on ProSeCCo's held-out split: see docs/conversations.md (it is a weak signal on subtle
        debate self-contradictions, strong only on explicit negations/antonyms of the same claim).
    """
    cosine = float(np.dot(np.asarray(emb_a, dtype=np.float32), np.asarray(emb_b, dtype=np.float32)))
    return _probability(pair_features(a, b, cosine))


def _severity(probability: float, same_agent: bool, cosine: float) -> str:
    """Severity by probability; one level higher when an agent contradicts itself about the same claim.

    An agent reversing its own near-paraphrase claim (cosine >= 0.8) is the case users care most about
    (it undermines everything else that agent said), so it is escalated one level — up to HIGH only:
    CRITICAL stays reserved for probability >= 0.9, because in real agent logs the same-agent
    near-paraphrases at 0.8 were mostly state updates ("the viewport shows 8 %" then "41 %").
    """
    level = next(name for bound, name in SEVERITY_THRESHOLDS if probability >= bound)
    if same_agent and cosine >= 0.8 and level != "CRITICAL":
        level = _SEVERITIES[min(_SEVERITIES.index(level) + 1, _SEVERITIES.index("HIGH"))]
    return level


def _explain(la: dict, lb: dict, cosine: float) -> tuple[str, str]:
    cues = _cues(la, lb)
    reasons = []
    if cues["negation"]:
        reasons.append("one statement negates what the other asserts")
    hit = _antonym_hit(la, lb) or _antonym_hit(lb, la)
    if hit:
        reasons.append(f"opposite terms ('{hit[0]}' vs '{hit[1]}')")
    if cues["number"]:
        only_a = [w for v, w in sorted(la["numbers"].items()) if v not in lb["numbers"]]
        only_b = [w for v, w in sorted(lb["numbers"].items()) if v not in la["numbers"]]
        reasons.append(f"different figures ({', '.join(only_a) or '-'} vs {', '.join(only_b) or '-'})")
    if cues["modality"]:
        reasons.append("one is stated as certain, the other as only possible")
    if cues["quantifier"]:
        reasons.append("one generalises (all/always), the other qualifies (some/often)")
    if cues["sentiment"]:
        reasons.append("opposite evaluation (positive vs negative)")
    explanation = f"Statements about the same subject (cosine {cosine:.2f}) that disagree: " + "; ".join(reasons) + "."
    if cues["number"]:
        fix = "Ask the agents to state the source of each figure and agree on one value."
    elif cues["modality"] or cues["quantifier"]:
        fix = "Ask the agents how certain or how general the claim is, and under which conditions it holds."
    else:
        fix = "Ask the agents which statement they stand by, or under which conditions each one holds."
    return explanation, fix


def has_conflict_cue(a: str, b: str) -> bool:
    """True when at least one explicit conflict cue fires between two statements (the reporting gate).

    Gate cues (`STRONG_CUES`): negation mismatch, antonym, different figures about the same quantity.
    """
    cues = _cues(_lexical(a), _lexical(b))
    return any(cues[k] for k in STRONG_CUES)


SENTENCE_CACHE_SIZE = 4096
"""Sentence vectors kept per embedder (LRU, ~6 MB): a worker re-sees the same candidate sentences after
every message, so only the new message's sentences are embedded in a running conversation."""
_cache_lock = threading.Lock()
_cache: dict[int, tuple[object, OrderedDict[str, np.ndarray]]] = {}


def _embed_cached(embed: Embed, texts: list[str]) -> np.ndarray:
    """`embed(texts)` through an LRU cache of sentence vectors, when `embed` is a bound method (e.g.
    `Embedder.embed`: one model per object, so a text always gets the same vector). Plain functions are
    called directly (no safe identity to key on). One `embed` call for the texts not cached."""
    owner = getattr(embed, "__self__", None)
    if owner is None:
        return np.asarray(embed(texts), dtype=np.float32)
    with _cache_lock:
        _, lru = _cache.setdefault(id(owner), (owner, OrderedDict()))  # holding `owner` keeps its id unique
        hits = {t: lru[t] for t in texts if t in lru}
        for t in hits:
            lru.move_to_end(t)
    missing = list(dict.fromkeys(t for t in texts if t not in hits))
    if missing:
        vecs = np.asarray(embed(missing), dtype=np.float32)
        with _cache_lock:
            for t, v in zip(missing, vecs, strict=True):
                hits[t] = lru[t] = v
            while len(lru) > SENTENCE_CACHE_SIZE:
                lru.popitem(last=False)
    return np.stack([hits[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.S)


MIN_CLAIM_WORDS, MAX_CLAIM_WORDS = 3, 60
"""Sentences outside this word range are not claims (labels; pasted pages, tables)."""


_ENUMERATOR = re.compile(r"^\s*(?:[#>*\-•]+\s*)*(?:(?:step|phase|part|stage)\s+)?\d{1,2}[.):]\s+", re.I)
"""A list or step number opening a sentence ("1. ", "### Step 2: "): not a figure the sentence claims."""
_HEADING = re.compile(r"^\s*#{1,6}\s|:\s*$|^\s*(?:[\-*•]\s*)?(?:\d{1,2}[.)]\s*)?\*\*[^*]+\*\*:?\s*$")
"""Markdown headings, lines ending in a colon, and bold-only list labels: titles, not claims."""


def _is_claim(sentence: str) -> bool:
    """A sentence that can carry a claim: 3-60 words, at least half of its visible characters letters
    (JSON, tables, numbered lists of dates and URLs fail), not a bare key/value line, not a heading
    or a list label (`_HEADING`) — real agent logs are full of "1. **Search for X**:" plans."""
    if _HEADING.search(sentence):
        return False
    n = len(sentence.split())
    if not MIN_CLAIM_WORDS <= n <= MAX_CLAIM_WORDS:
        return False
    visible = [ch for ch in sentence if not ch.isspace()]
    if sum(ch.isalpha() for ch in visible) < 0.5 * len(visible):
        return False
    return not re.match(r"^[\[{\]}]|^\"[\w-]+\"\s*:", sentence)


def _claims(text: str, max_sentences: int) -> list[str]:
    """The sentences of a message that can carry a claim (`_is_claim`), fenced code blocks blanked first;
    the first `max_sentences` of them."""
    sentences = split_sentences(_CODE_BLOCK.sub("\n\n", text), max_sentences=4 * max_sentences)
    return [s for _, _, s in sentences if _is_claim(s)][:max_sentences]


def detect_contradictions(
    new: MessageView,
    candidates: Sequence[MessageView],
    embed: Embed,
    *,
    threshold: float = REPORT_THRESHOLD,
    min_cosine: float = CANDIDATE_MIN_COSINE,
    max_sentences: int = 12,
) -> list[ContradictionFinding]:
    """Contradictions between the new message and earlier candidate messages.

    Args:
        new: the newest message.
        candidates: earlier messages the caller picked from the vector index (k nearest) - never all pairs.
            Candidates with the same id as `new`, empty content, or role "system"/"tool" are skipped.
        embed: texts -> (n, 384) unit vectors; called at most once per call, with the sentences of `new` and
            the candidates that are not cached yet (`SENTENCE_CACHE_SIZE`; cached only for bound methods
            such as `Embedder.embed`).
        threshold: report pairs whose probability is >= this (default `REPORT_THRESHOLD`).
        min_cosine: sentence pairs below this cosine are not classified (default `CANDIDATE_MIN_COSINE`).
        max_sentences: sentences per message considered (the first ones); bounds the cost at
            O(k * max_sentences^2) dot products and (k + 1) * max_sentences embeddings.

    Returns:
        At most one finding per candidate message (its most probable sentence pair), sorted by
        probability, highest first. Empty when nothing reaches `threshold`.
    """
    if new.role in ("system", "tool") or not new.content.strip():
        return []
    usable = [
        c for c in candidates if c.id != new.id and c.role not in ("system", "tool") and c.content.strip()
    ]
    if not usable:
        return []
    new_sents = _claims(new.content, max_sentences)
    cand_sents = [_claims(c.content, max_sentences) for c in usable]
    texts = new_sents + [s for group in cand_sents for s in group]
    if not new_sents or len(texts) == len(new_sents):
        return []
    vectors = _embed_cached(embed, texts)
    new_vecs = vectors[: len(new_sents)]
    new_lex = [_lexical(s) for s in new_sents]
    findings: list[ContradictionFinding] = []
    offset = len(new_sents)
    for cand, sents in zip(usable, cand_sents, strict=True):
        cvecs = vectors[offset : offset + len(sents)]
        offset += len(sents)
        if not sents:
            continue
        sims = cvecs @ new_vecs.T  # (len(sents), len(new_sents))
        best: tuple[float, int, int, np.ndarray, dict] | None = None
        for i, j in zip(*np.nonzero(sims >= min_cosine), strict=True):
            lc = _lexical(sents[i])
            cues = _cues(lc, new_lex[j])
            if not any(cues[k] for k in STRONG_CUES):
                continue  # the gate: no explicit conflict cue, no finding (see module docstring)
            f = _features(lc, new_lex[j], float(sims[i, j]))
            p = _probability(f)
            if best is None or p > best[0]:
                best = (p, int(i), int(j), f, lc)
        if best is None or best[0] < threshold:
            continue
        p, i, j, f, lc = best
        same_agent = bool(cand.agent) and cand.agent == new.agent
        explanation, fix = _explain(lc, new_lex[j], float(f[0]))
        earlier, newer = (cand, new) if cand.sequence <= new.sequence else (new, cand)
        sa, sb = (sents[i], new_sents[j]) if earlier is cand else (new_sents[j], sents[i])
        findings.append(
            ContradictionFinding(
                message_a_id=earlier.id,
                message_b_id=newer.id,
                statement_a=sa,
                statement_b=sb,
                probability=round(p, 4),
                severity=_severity(p, same_agent, float(f[0])),
                semantic_similarity=round(float(f[0]), 4),
                same_agent=same_agent,
                explanation=explanation,
                resolution_suggestion=fix,
            )
        )
    findings.sort(key=lambda x: x.probability, reverse=True)
    return findings

