"""The report as people open it: headless Chromium on a laptop, a phone and on paper (A4 PDF).

Chromium (Debian package `chromium`, installed by `make test` through tests/support/chromium.py)
loads the report from disk; the test asserts it requests nothing from any network, that no table
runs off the page on a laptop or on paper, that on a phone only the table boxes scroll (the page
itself stays phone-wide), and that printing gives an A4 PDF with the sections on their own pages.
"""

from __future__ import annotations

import re

import duckdb
import pytest

from kolab_pipeline import evaluation, report
from kolab_pipeline.config import Settings
from tests.support import chromium
from tests.support.evaluation import seed

pytestmark = pytest.mark.skipif(chromium.find_browser() is None,
                                reason="Chromium not installed (make test installs it)")

# Tables (or their scroll box) wider than the content column, as [section id, excess px].
OVERFLOW_JS = """
(() => {
  const body = document.body, style = getComputedStyle(body);
  const width = body.getBoundingClientRect().right - parseFloat(style.paddingRight);
  const out = [];
  for (const t of document.querySelectorAll('table')) {
    const box = t.closest('.tabel') || t.parentElement;
    const r = box.getBoundingClientRect();
    const cut = box.scrollWidth - box.clientWidth;
    if (r.right > width + 1 || cut > 1)
      out.push([t.closest('section').id, Math.round(Math.max(r.right - width, cut))]);
  }
  return out;
})()
"""
PAGE_WIDTH_JS = "[document.documentElement.scrollWidth, window.innerWidth]"
# A4 minus the report's @page margins (10 mm each side) at 96 px per inch.
A4_CONTENT_PX = round((210 - 20) / 25.4 * 96)


@pytest.fixture
def report_file(con: duckdb.DuckDBPyConnection, settings: Settings):
    seed(con)
    con.execute("UPDATE evaluation.followup SET latest_status = 'missing'")
    evaluation.build_all(con, settings, ["2025-01", "2025-02"])
    return report.render_report(con, settings, "36.72", "2025-02")


def test_report_in_chromium_desktop_phone_and_print(report_file, tmp_path):
    with chromium.browser_page() as page:
        page.viewport(1280, 900)
        page.open(report_file.resolve().as_uri())
        assert page.evaluate("document.querySelectorAll('section').length") == 9
        assert page.evaluate(OVERFLOW_JS) == []
        assert page.evaluate("document.querySelectorAll('.grafik svg').length") >= 2

        page.viewport(390, 844, mobile=True)  # a phone: the page fits, wide tables scroll
        scroll, inner = page.evaluate(PAGE_WIDTH_JS)
        assert scroll <= inner, (scroll, inner)
        assert page.evaluate(
            "[...document.querySelectorAll('.tabel')].every("
            "b => getComputedStyle(b).overflowX === 'auto')")

        page.media("print")  # paper: the print rules at the width of an A4 page
        page.viewport(A4_CONTENT_PX, 1100)
        assert page.evaluate(OVERFLOW_JS) == []
        assert page.evaluate("getComputedStyle(document.querySelector('#indikator')).breakBefore") \
            == "page"
        pdf = page.print_pdf()
        assert not page.requests, page.requests  # nothing fetched, in any of the three
    assert pdf.startswith(b"%PDF")
    (tmp_path / "report.pdf").write_bytes(pdf)
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", pdf))
    assert pages >= 6, pages  # the sections start on their own A4 pages
    boxes = {tuple(round(float(v)) for v in box.split()) for box in
             re.findall(rb"/MediaBox \[([^\]]*)\]", pdf)}
    assert boxes == {(0, 0, 595, 842)}, boxes  # A4 portrait in points
