"""`parse_upload` with documents (docs/intake.md): PDF, DOCX, HTML and EPUB become source text with
the original file's SHA-256, pages and headings; refusals keep their one sentence; PDF chunks and
quotes are labelled with pages."""

from __future__ import annotations

import hashlib

import pytest
from document_support import WEB_PAGE, book_pdf, encrypted_pdf, epub_book, page_marker, scanned_pdf, word_file

from mmos_core.text.chunking import chunk_text, page_label
from mmos_core.text.intake import IntakeError, document_metadata, first_words, parse_upload
from mmos_core.text.locate import locate_quote

LIMIT = 5_000_000


def refused(name: str, data: bytes, **kw) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        parse_upload(name, data, max_bytes=kw.pop("max_bytes", LIMIT), **kw)
    return info.value


def test_pdf_becomes_text_with_pages_headings_and_the_original_digest():
    data = book_pdf(3)
    calls: list[tuple[int, int]] = []
    src = parse_upload("beetles.pdf", data, max_bytes=LIMIT, progress=lambda d, t: calls.append((d, t)))
    assert src.content_format == "pdf" and src.cues is None
    assert src.original_sha256 == hashlib.sha256(data).hexdigest()
    assert [p for _, p in src.pages] == [1, 2, 3]
    assert src.headings[0][2] == "Beetles at Cambridge" and src.title == "Beetles at Cambridge"
    assert src.word_count == len(src.text.split())
    for page in (1, 2, 3):
        at = src.text.index(page_marker(page))
        assert page_label(src.pages, at, at + 10) == f"p. {page}"
    assert calls and calls[-1][0] == calls[-1][1] == 3
    meta = document_metadata(src)
    assert meta["format"] == "pdf" and meta["original_sha256"] == src.original_sha256
    assert meta["pages"] == [list(p) for p in src.pages] and meta["headings"][0][2] == "Beetles at Cambridge"


def test_docx_html_and_epub_convert_without_pages():
    docx_src = parse_upload("opinion.docx", word_file(), max_bytes=LIMIT)
    assert docx_src.content_format == "docx" and docx_src.pages == ()
    assert "The court rejected the claim." in docx_src.text and docx_src.title == "Opinion of the Court"

    html_src = parse_upload("down-house.HTML", WEB_PAGE, max_bytes=LIMIT)
    assert html_src.content_format == "html" and "sandwalk" in html_src.text
    assert "NAV-NOISE" not in html_src.text and "FOOTER-NOISE" not in html_src.text

    epub_src = parse_upload("beagle.epub", epub_book(), max_bytes=LIMIT)
    assert epub_src.content_format == "epub" and epub_src.title == "The Voyage of the Beagle"
    assert epub_src.text.index("Plymouth") < epub_src.text.index("delightfully")
    for src in (docx_src, html_src, epub_src):
        assert len(src.original_sha256) == 64 and document_metadata(src)["pages"] == []


def test_text_files_keep_no_document_metadata():
    src = parse_upload("notes.txt", b"Plain words.", max_bytes=LIMIT)
    assert src.original_sha256 is None and document_metadata(src) == {}


@pytest.mark.parametrize(
    ("name", "make", "reason", "words"),
    [
        ("scan.pdf", scanned_pdf, "scanned", "OCR"),
        ("locked.pdf", lambda: encrypted_pdf(book_pdf(1)), "encrypted", "password"),
        ("broken.pdf", lambda: book_pdf(2)[:400], "corrupt", "damaged"),
        ("fake.pdf", lambda: b"plain words, not a PDF", "corrupt", "not a valid PDF"),
        ("old.docx", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted", "Word"),
    ],
)
def test_document_refusals_keep_their_one_sentence(name, make, reason, words):
    err = refused(name, make())
    assert err.reason == reason and words in str(err)
    assert str(err).count(". ") <= 1 and name in str(err)


def test_document_limits_bytes_pages_and_converted_text():
    data = book_pdf(3)
    assert refused("b.pdf", data, max_document_bytes=1000).reason == "too_large"
    err = refused("b.pdf", data, max_pages=2)
    assert err.reason == "too_large" and "3 pages" in str(err)
    # the converted text must still fit the text limit
    small = parse_upload("b.pdf", data, max_bytes=LIMIT)
    err = refused("b.pdf", data, max_bytes=len(small.text) // 2, max_document_bytes=LIMIT)
    assert err.reason == "too_large" and "text of “b.pdf”" in str(err)


def test_unknown_extension_lists_documents_too():
    err = refused("notes.odt", b"words")
    assert err.reason == "format"
    for ext in (".txt", ".srt", ".pdf", ".docx", ".html", ".epub"):
        assert ext in str(err)


def test_pdf_chunks_and_quotes_are_labelled_with_pages():
    src = parse_upload("beetles.pdf", book_pdf(4), max_bytes=LIMIT)
    chunks = chunk_text(src.text, pages=src.pages, target_chars=400, max_chars=800)
    assert len(chunks) > 2
    assert chunks[0].location_label.startswith("p. 1, ¶1")
    for c in chunks:
        assert c.location_label.startswith(("p. ", "pp. ")) and ", ¶" in c.location_label
    whole = chunk_text(src.text, pages=src.pages, target_chars=100_000, max_chars=200_000)
    assert len(whole) == 1 and whole[0].location_label.startswith("pp. 1–4, ¶1–")
    # without pages, the labels are as before
    assert chunk_text(src.text, target_chars=400, max_chars=800)[0].location_label.startswith("¶1")

    quote = page_marker(3)
    loc = locate_quote(src.text, quote, pages=src.pages)
    assert loc is not None and loc.label.startswith("p. 3, ¶") and ", chars " in loc.label
    # pages as stored in Source.metadata_ (JSON lists) work the same
    assert locate_quote(src.text, quote, pages=document_metadata(src)["pages"]).label == loc.label
    assert not locate_quote(src.text, quote).label.startswith("p.")


def test_first_words_keeps_the_pages_of_the_kept_text_and_the_digest():
    src = parse_upload("beetles.pdf", book_pdf(4), max_bytes=LIMIT)
    cut = first_words(src, 60)
    assert cut.original_sha256 == src.original_sha256 and cut.content_format == "pdf"
    assert cut.pages and all(start < len(cut.text) for start, _ in cut.pages)
    assert len(cut.pages) < len(src.pages)


def test_page_label_spans_and_errors():
    pages = [[0, 1], [100, 2], [250, 3]]
    assert page_label(pages, 0, 50) == "p. 1"
    assert page_label(pages, 90, 100) == "p. 1"  # the end offset is exclusive
    assert page_label(pages, 90, 120) == "pp. 1–2"
    assert page_label(pages, 300, 301) == "p. 3"
    with pytest.raises(ValueError):
        page_label([], 0, 1)
