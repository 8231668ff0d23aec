"""Citation extraction and verification (docs/conversations.md).

Extraction (`extract_citations`) finds, with their character spans:

* `url`: `http(s)://...` links, trailing punctuation and unbalanced `)` trimmed; a Markdown link
  `[title](url)` keeps its title. A `doi.org` link is typed `doi`.
* `doi`: bare DOIs (`10.1234/abc.5`), url set to `https://doi.org/<doi>`.
* `quote`: text in double quotes ("..." or “...”) of at least `MIN_QUOTE_WORDS` words (shorter ones
  are scare quotes, not citations).
* `reference`: author-year references, `(Smith et al., 2020)`, `Smith and Jones (2019)`, and
  "according to <Capitalised Title>" (title set).

Invariant: `text == message[start:end]` for every citation.

Verification (`verify_citation`) only ever says True when the cited thing was found in a known text
(a source or fragment the caller passes): quotes through `mmos_core.text.locate.locate_quote` (exact, then
normalised, then fuzzy >= `FUZZY_MIN_SCORE`), titles/authors+year/URLs/DOIs by normalised substring.
With nothing to check against the answer is None ("unverifiable"); a quote or title missing from the
known texts is False ("not_found": not in our sources, which is not proof that it is invented); a URL or
DOI missing from them stays None (the web cannot be reached offline).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mmos_core.text.locate import locate_quote

__all__ = [
    "FUZZY_MIN_SCORE",
    "MIN_QUOTE_WORDS",
    "Citation",
    "CitationCheck",
    "extract_citations",
    "verify_citation",
]

MIN_QUOTE_WORDS = 4
"""Quoted text shorter than this many words is not treated as a citation."""
FUZZY_MIN_SCORE = 85.0
"""rapidfuzz alignment score (0-100) a quote needs in a known text to count as a fuzzy match."""

_MD_LINK = re.compile(r"\[([^\]\n]{1,300})\]\((https?://[^\s()]+(?:\([^\s()]*\)[^\s()]*)*)\)")
_URL = re.compile(r"\bhttps?://[^\s<>\"'\]]+", re.I)
_DOI = re.compile(r"\b(?:doi:\s*)?(10\.\d{4,9}/[^\s\"'<>\]]+)", re.I)
_QUOTE = re.compile(r"\"([^\"\n]{3,2000})\"|\u201c([^\u201d\n]{3,2000})\u201d")
_NAME = r"[A-Z][A-Za-z\u00C0-\u024F'\-]+"
_AUTHOR_YEAR = re.compile(
    rf"\(({_NAME}(?:\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME})?),?\s+((?:19|20)\d{{2}}[a-z]?)\)"
    rf"|\b({_NAME}(?:\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME})?)\s+\(((?:19|20)\d{{2}}[a-z]?)\)"
)
_ACCORDING = re.compile(
    r"\b(?:[Aa]ccording to|[Aa]s (?:reported|stated|published|described) (?:in|by)|[Cc]ited in)\s+"
    r"((?:the\s+)?(?:[A-Z0-9][\w'&\-]*)(?:[ \t]+(?:of|the|and|for|on|in|&|[A-Z][\w'&\-]*))*)"
)
_TRAILING = ".,;:!?'\""
_SMALL_WORDS = {"of", "the", "and", "for", "on", "in", "&"}


@dataclass(frozen=True)
class Citation:
    """A citation found in a message.

    Attributes:
        text: the cited text exactly as in the message (`message[start:end]`).
        url: the link for "url"/"doi" citations, else None.
        title: a Markdown link's title or the source named after "according to", else None.
        citation_type: "url" | "doi" | "quote" | "reference".
        start, end: 0-based character span `[start, end)` in the message.
    """

    text: str
    url: str | None
    title: str | None
    citation_type: str
    start: int
    end: int


@dataclass(frozen=True)
class CitationCheck:
    """Outcome of verifying one citation against known texts.

    Attributes:
        verified: True = found in a known text; False = checked and not found; None = unverifiable
            (nothing to check against, or a URL/DOI we cannot reach). Never True by default.
        method: "exact_quote" | "fuzzy_quote" | "title_match" | "author_year_match" | "known_url" |
            "not_found" | "unverifiable".
        confidence: 0..1 (1.0 for exact, the fuzzy score / 100, 0.0 when unverifiable).
        matched_label: the label of the known text that matched, else None.
    """

    verified: bool | None
    method: str
    confidence: float
    matched_label: str | None


def _trim_url(url: str) -> str:
    while url and url[-1] in _TRAILING:
        url = url[:-1]
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1]
        while url and url[-1] in _TRAILING:
            url = url[:-1]
    return url


def extract_citations(text: str) -> list[Citation]:
    """All citations in a message, sorted by start; spans never overlap (earlier kinds win: Markdown
    links, URLs, DOIs, quotes, references).

    Returns [] for empty text. Never raises on odd input.
    """
    found: list[Citation] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    def add(c: Citation) -> None:
        found.append(c)
        taken.append((c.start, c.end))

    for m in _MD_LINK.finditer(text):
        url = _trim_url(m.group(2))
        kind = "doi" if re.match(r"https?://(dx\.)?doi\.org/", url, re.I) else "url"
        add(Citation(m.group(0), url, m.group(1).strip(), kind, m.start(), m.end()))
    for m in _URL.finditer(text):
        url = _trim_url(m.group(0))
        s, e = m.start(), m.start() + len(url)
        if len(url) > len("https://") and free(s, e):
            kind = "doi" if re.match(r"https?://(dx\.)?doi\.org/", url, re.I) else "url"
            add(Citation(url, url, None, kind, s, e))
    for m in _DOI.finditer(text):
        doi = _trim_url(m.group(1))
        s = m.start()
        e = m.start(1) + len(doi)
        if free(s, e):
            add(Citation(text[s:e], f"https://doi.org/{doi}", None, "doi", s, e))
    for m in _QUOTE.finditer(text):
        g = 1 if m.group(1) is not None else 2
        inner = m.group(g)
        stripped = inner.strip()
        if len(stripped.split()) < MIN_QUOTE_WORDS:
            continue
        s = m.start(g) + (len(inner) - len(inner.lstrip()))
        e = s + len(stripped)
        if free(m.start(), m.end()):
            add(Citation(stripped, None, None, "quote", s, e))
    for m in _AUTHOR_YEAR.finditer(text):
        if free(m.start(), m.end()):
            add(Citation(m.group(0), None, None, "reference", m.start(), m.end()))
    for m in _ACCORDING.finditer(text):
        title = m.group(1)
        words = title.split()
        while words and words[-1].lower() in _SMALL_WORDS:  # "according to the Lancet and" -> "the Lancet"
            words.pop()
        if not words or not any(w[0].isupper() or w[0].isdigit() for w in words):
            continue
        title = " ".join(words)
        s = m.start(1)
        tokens = list(re.finditer(r"\S+", m.group(1)))
        e = s + tokens[len(words) - 1].end()
        if free(s, e):
            add(Citation(text[s:e], None, title, "reference", s, e))
    found.sort(key=lambda c: c.start)
    return found


def _norm(s: str) -> str:
    s = s.lower().replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(re.sub(r"[^\w'./:%-]+", " ", s).split())


def _norm_url(u: str) -> str:
    u = u.lower().strip()
    u = re.sub(r"^https?://(www\.)?", "", u)
    return u.rstrip("/")


def verify_citation(c: Citation, known_texts: Sequence[tuple[str, str]]) -> CitationCheck:
    """Check one citation against known texts (sources and fragments of the workbench).

    Args:
        c: a citation from `extract_citations`.
        known_texts: `(label, text)` pairs; the label (e.g. a source title or fragment code) is returned
            as `matched_label` and is itself searched for titles and URLs.

    Returns:
        A `CitationCheck`; see the module docstring for when it is True / False / None. Cost: one
        `locate_quote` per known text for quotes (exact substring first, fuzzy only when that fails),
        substring tests otherwise.
    """
    known = [(label, text) for label, text in known_texts if (label or text)]
    if not known:
        return CitationCheck(None, "unverifiable", 0.0, None)

    if c.citation_type == "quote":
        best: tuple[float, str] | None = None
        for label, text in known:
            loc = locate_quote(text, c.text, min_score=FUZZY_MIN_SCORE) if text else None
            if loc is not None and (best is None or loc.score > best[0]):
                best = (loc.score, label)
                if loc.score >= 100.0:
                    break
        if best is None:
            return CitationCheck(False, "not_found", 0.0, None)
        if best[0] >= 100.0:
            return CitationCheck(True, "exact_quote", 1.0, best[1])
        return CitationCheck(True, "fuzzy_quote", round(best[0] / 100.0, 4), best[1])

    if c.citation_type in ("url", "doi"):
        target = _norm_url(c.url or c.text)
        for label, text in known:
            if target and (target in _norm_url(label) or target in text.lower()):
                return CitationCheck(True, "known_url", 1.0, label)
        if c.title:
            check = _title_check(c.title, known)
            if check is not None:
                return check
        return CitationCheck(None, "unverifiable", 0.0, None)

    # reference
    if c.title:
        check = _title_check(c.title, known)
        return check if check is not None else CitationCheck(False, "not_found", 0.0, None)
    m = _AUTHOR_YEAR.fullmatch(c.text)
    if m:
        author = (m.group(1) or m.group(3) or "").split()[0]
        year = m.group(2) or m.group(4) or ""
        for label, text in known:
            hay = f"{label}\n{text}"
            if re.search(rf"\b{re.escape(author)}\b", hay) and year[:4] in hay:
                return CitationCheck(True, "author_year_match", 0.8, label)
        return CitationCheck(False, "not_found", 0.0, None)
    return CitationCheck(None, "unverifiable", 0.0, None)


def _title_check(title: str, known: Sequence[tuple[str, str]]) -> CitationCheck | None:
    t = _norm(re.sub(r"^the\s+", "", title, flags=re.I))
    if len(t) < 3:
        return None
    for label, _text in known:
        if t == _norm(re.sub(r"^the\s+", "", label or "", flags=re.I)):
            return CitationCheck(True, "title_match", 1.0, label)
    for label, text in known:
        if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", _norm(label or "")) or re.search(
            rf"(?<!\w){re.escape(t)}(?!\w)", _norm(text[:5000])
        ):
            return CitationCheck(True, "title_match", 0.8, label)
    return None
