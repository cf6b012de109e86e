"""The offline page of a GX suite run (data_quality/validation_page.py), opened as people open it:
headless Chromium from disk, no network. It must fetch nothing (GX Data Docs fetch bootstrap,
jQuery and Font Awesome from CDNs and, offline, show blank pass/fail icons) and show pass/fail
per expectation as visible words and symbols, with the counts observed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_quality import gx_runner, gx_suites, validation_page
from tests.support import chromium

TS = datetime(2025, 4, 3, tzinfo=UTC)

STATUS_JS = """
[...document.querySelectorAll('#harapan tbody tr')].map(tr => {
  const cell = tr.querySelector('td.status'), box = cell.getBoundingClientRect();
  return {cls: tr.className, text: cell.innerText.trim(), what: tr.cells[2].innerText.trim(),
          bad: tr.cells[6].innerText.trim(), bg: getComputedStyle(cell).backgroundColor,
          visible: box.width > 0 && box.height > 0};
})
"""


@pytest.fixture
def bad_run(tmp_path: Path) -> gx_runner.FrameValidation:
    import pandas as pd

    frame = pd.DataFrame({
        "raw_row_id": ["f1::2", "f1::3", "f2::2"], "file_id": ["f1", "f1", "f2"],
        "source_kind": ["file", "file", "dhis2"], "row_number": [2, 3, -4],  # -4: below 1
        "received_at": [TS, TS, TS],
    })
    return gx_runner.validate_frame(frame, gx_suites.raw_submission_row(),
                                    docs_dir=tmp_path / "data_docs" / "raw_submission_row",
                                    table="raw.submission_row", table_rows=3,
                                    zone="Asia/Makassar")


def test_page_is_written_linked_and_in_indonesian(bad_run: gx_runner.FrameValidation,
                                                  tmp_path: Path):
    page = bad_run.page
    assert page == tmp_path / "data_docs" / "raw_submission_row" / validation_page.PAGE_NAME
    text = page.read_text(encoding="utf-8")
    # 7 expectations, 1 failed: row_number ≥ 1 (one row of three, 33,33 %)
    assert "TIDAK LULUS" in text and "6 dari 7 harapan terpenuhi, 1 gagal" in text
    assert "Nilai kolom row_number paling kecil 1" in text and "33,33" in text
    assert "WITA" in text  # the time in the zone given (Balikpapan)
    assert "<script" not in text and "http" not in text.split("</style>")[0]
    index = (tmp_path / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert 'href="raw_submission_row/validasi.html"' in index
    assert 'href="raw_submission_row/index.html"' in index
    md = gx_runner.to_check_result(bad_run).metadata
    assert md["validation_page"].value == str(page)
    assert "Nilai kolom row_number paling kecil 1" in md["expectations"].value


@pytest.mark.skipif(chromium.find_browser() is None,
                    reason="Chromium not installed (make test installs it)")
def test_page_offline_in_chromium_shows_pass_and_fail(bad_run: gx_runner.FrameValidation):
    with chromium.browser_page() as page:
        page.viewport(1280, 900)
        page.open(bad_run.page.resolve().as_uri())
        rows = page.evaluate(STATUS_JS)
        summary = page.evaluate("document.querySelector('.hasil').innerText")
        assert not page.requests, page.requests  # nothing fetched from any network
    assert len(rows) == 7
    failed = [r for r in rows if r["cls"] == "failed"]
    passed = [r for r in rows if r["cls"] == "passed"]
    assert len(failed) == 1 and len(passed) == 6
    assert failed[0]["text"] == "✗ Gagal" and failed[0]["bad"] == "1"
    assert failed[0]["what"] == "Nilai kolom row_number paling kecil 1"
    assert all(r["text"] == "✓ Lulus" and r["bad"] == "0" for r in passed)
    assert all(r["visible"] for r in rows)
    # pass and fail are coloured differently (green / red background), not only by a glyph
    assert failed[0]["bg"] != passed[0]["bg"]
    assert summary.startswith("✗") and "TIDAK LULUS" in summary
