"""Small text helpers shared by the detectors: sentence split, word tokens, normalised shingles.

Sentences come from the one splitter, `mmos_core.text.sentences` (pysbd), in its ``lines=True`` mode: chat
turns are English prose plus Markdown, logs, lists and tables, which give one statement per line. The
word helpers are plain regular expressions: the detectors run after every message.
"""

from __future__ import annotations

import re

from mmos_core.text.sentences import sentence_spans

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
    """Split a message into sentences with their spans (`mmos_core.text.sentences.sentence_spans`,
    ``lines=True``: blank lines and line breaks end a sentence unless the next line goes on in lower case).

    Fragments shorter than `min_chars` characters are dropped (they carry no claim: "Yes.", "OK!").
    Returns at most `max_sentences` items `(start, end, sentence)` with `text[start:end] == sentence`,
    in order; a text with no sentence boundary is one sentence; `[]` for empty text.
    """
    out: list[tuple[int, int, str]] = []
    for start, end in sentence_spans(text, lines=True):
        if end - start >= min_chars:
            out.append((start, end, text[start:end]))
            if len(out) >= max_sentences:
                break
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
