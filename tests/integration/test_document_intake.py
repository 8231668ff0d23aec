"""Document intake against the real database (docs/intake.md): a generated PDF through `mmos ingest`
end to end (text, original digest, pages, page-labelled chunks), and a second upload of the same
original file refused as a duplicate even when cut to another length."""

from __future__ import annotations

import hashlib

import pytest
from document_support import book_pdf, page_marker, word_file
from sqlalchemy import select
from typer.testing import CliRunner

from mmos_core.cli.app import app
from mmos_core.core.db import session_scope
from mmos_core.models import Source, SourceChunk
from mmos_core.services.sources import DuplicateSourceError, create_source
from mmos_core.text.intake import first_words, parse_upload
from mmos_core.text.locate import locate_quote

pytestmark = pytest.mark.usefixtures("clean_db")
LIMIT = 5_000_000


def _add(parsed, title="Beetles"):
    with session_scope() as s:
        src = create_source(session=s, parsed=parsed, title=title, source_type="book", quality="primary",
                            extraction_priority="HIGH", original_filename="beetles.pdf")
        return src.id, src.source_code


def test_mmos_ingest_pdf_end_to_end(tmp_path):
    data = book_pdf(5)
    path = tmp_path / "beetles.pdf"
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["ingest", str(path), "--title", "Beetles", "--person", "Charles Darwin"])
    assert result.exit_code == 0, result.output
    assert "SRC_BOOK_001" in result.output
    with session_scope() as s:
        src = s.scalar(select(Source))
        chunks = s.scalars(select(SourceChunk).where(SourceChunk.source_id == src.id).order_by(SourceChunk.chunk_index)).all()
        assert src.content_format == "pdf" and src.original_filename == "beetles.pdf"
        assert src.metadata_["original_sha256"] == hashlib.sha256(data).hexdigest()
        assert src.metadata_["format"] == "pdf" and [p for _, p in src.metadata_["pages"]] == [1, 2, 3, 4, 5]
        assert src.metadata_["headings"][0][2] == "Beetles at Cambridge"
        assert page_marker(4) in src.content and "%PDF" not in src.content
        assert chunks and all(c.location_label.startswith(("p. ", "pp. ")) for c in chunks)
        # what the extraction worker does with a quote (services/extraction_run.py reads metadata_["pages"])
        loc = locate_quote(src.content, page_marker(4), pages=src.metadata_["pages"])
        assert loc is not None and loc.label.startswith("p. 4, ¶")

    again = CliRunner().invoke(app, ["ingest", str(path), "--title", "Beetles again"])
    assert again.exit_code != 0 and "already added as SRC_BOOK_001" in again.output


def test_same_original_file_is_a_duplicate_even_when_cut_differently():
    data = book_pdf(4)
    parsed = parse_upload("beetles.pdf", data, max_bytes=LIMIT)
    _, code = _add(first_words(parsed, 80))
    with pytest.raises(DuplicateSourceError) as info:
        _add(parsed, title="Beetles, whole")  # different text, same original file
    assert f"already added as {code}" in str(info.value) and "same original file" in str(info.value)
    # another document is not a duplicate; a text file's metadata stays empty
    other_id, _ = _add(parse_upload("opinion.docx", word_file(), max_bytes=LIMIT), title="Opinion")
    txt_id, _ = _add(parse_upload("notes.txt", b"Some plain notes about beetles.", max_bytes=LIMIT), title="Notes")
    with session_scope() as s:
        assert s.get(Source, other_id).metadata_["format"] == "docx"
        assert s.get(Source, txt_id).metadata_ == {}
