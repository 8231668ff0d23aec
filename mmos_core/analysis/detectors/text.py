"""Small text helpers shared by the detectors: sentence split, word tokens, normalised shingles.

Deliberately dependency-free regular expressions: the detectors run after every message, and these
texts are chat turns (English prose, some Markdown), not documents that need a full NLP pipeline.
"""

from __future__ import annotations

import re

# Sentence ends: `.!?;` before a capital/digit; a blank line; a line break unless the next line goes on in
# lower case (hard-wrapped prose). Logs, lists and tables thus give one statement per line.
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|[ \t]*\n\s*(?![a-z])")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*%?|[a-z]+(?:'[a-z]+)?")
_CONTRACTIONS = (
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"n't\b"), " not"),
)

STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from as is are was were be been being am do does did
    have has had having i you he she it we they me him her us them my your his its our their this that these those there
    here what which who whom whose when where why how also just very really quite about into over than too can will would
    shall should could may might must s t d ll re ve m o y im let lets get got going go say said think know yes well
    one like thing things way lot""".split()
)


def normalise(text: str) -> str:
    """Lower-case, straight quotes, contractions expanded (`don't` -> `do not`), whitespace collapsed."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    for pattern, repl in _CONTRACTIONS:
        t = pattern.sub(repl, t)
    return " ".join(t.split())


def words(text: str) -> list[str]:
    """Word tokens of `normalise(text)`: letters (with an inner apostrophe) or numbers (`3.5`, `1,000`, `20%`)."""
    return _WORD.findall(normalise(text))


def content_words(text: str) -> set[str]:
    """`words(text)` minus stop words and negations: what a statement is about."""
    return {w for w in words(text) if w not in STOPWORDS and w not in {"not", "no", "never"} and len(w) > 1}


def split_sentences(text: str, *, min_chars: int = 12, max_sentences: int = 40) -> list[tuple[int, int, str]]:
    """Split a message into sentences with their spans.

    Splits after `.`, `!`, `?`, `;` followed by a capital/digit, at blank lines, and at line breaks unless
    the next line starts in lower case (hard-wrapped prose).
    Fragments shorter than `min_chars` (after stripping) are dropped (they carry no claim: "Yes.", "OK!").
    Returns at most `max_sentences` items `(start, end, sentence)` with `text[start:end] == sentence`,
    in order; a text with no split point is one sentence.
    """
    out: list[tuple[int, int, str]] = []
    pos = 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        piece = text[pos:end]
        stripped = piece.strip()
        if len(stripped) >= min_chars:
            s = pos + (len(piece) - len(piece.lstrip()))
            out.append((s, s + len(stripped), stripped))
            if len(out) >= max_sentences:
                break
        if m is not None:
            pos = m.end()
    return out


def shingles(text: str, n: int = 3) -> set[str]:
    """Word n-grams (default trigrams) of `words(text)`; a text with fewer than n words is one shingle."""
    w = words(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|, 0.0 when both are empty."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)
