"""The offline HTML evaluation report renders every section, embeds its charts and fetches nothing."""

from __future__ import annotations

import os
import re
import time
from html.parser import HTMLParser

import duckdb
import pytest

from kolab_pipeline import evaluation, report
from kolab_pipeline.config import WORKERS_ENV, Settings
from tests.support.evaluation import MALICIOUS_NAMES, seed

SECTIONS = ["ringkasan", "kepatuhan", "heatmap", "tindak-lanjut", "capaian", "kontribusi", "kualitas-data"]
CHARTS = ["grafik-kepatuhan", "grafik-heatmap", "grafik-kontribusi", "grafik-capaian-kia",
          "grafik-capaian-imunisasi", "grafik-capaian-ptm", "grafik-capaian-tb"]


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, tuple[str, dict]] = {}
        self.links: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids[a["id"]] = (tag, a)
        for attr in ("src", "href"):
            if attr in a:
                self.links.append((tag, attr, a[attr] or ""))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    # ytd network contribution for the chart: copy the month rows as ytd
    con.execute("INSERT INTO indicators.network_contribution SELECT unit_level, unit_code, period, 'ytd',"
                " program, data_element, jenis_faskes, volume, total, share_pct"
                " FROM indicators.network_contribution")
    evaluation.build_all(con, settings, ["2025-01", "2025-02"])
    return con


def test_report_renders_offline_with_every_section(built, settings):
    start = time.perf_counter()
    paths = report.render_reports(built, settings, ["2025-02"])
    elapsed = time.perf_counter() - start
    assert paths == [settings.paths.reports / "36.72" / "2025-02.html"]
    html = paths[0].read_text(encoding="utf-8")
    doc = Collect()
    doc.feed(html)
    for sid in SECTIONS:
        assert doc.ids.get(sid, ("",))[0] == "section", sid
    for cid in CHARTS:
        tag, attrs = doc.ids[cid]
        assert tag == "img" and attrs["src"].startswith("data:image/png;base64,"), cid
        assert len(attrs["src"]) > 1000, cid  # a real image, not an empty placeholder string
    # nothing external: every src/href is a data: URI or an in-page anchor; no script, no CSS link
    assert doc.links and all(v.startswith(("data:", "#")) for _, _, v in doc.links), doc.links
    assert "script" not in doc.tags and "link" not in doc.tags
    text = " ".join(doc.text)
    # Indonesian labels; kab/kota kelengkapan 12 / 14 × 100 = 85.7 %, shown with a decimal comma
    for label in ("Kelengkapan", "Ketepatan waktu", "Capaian", "Target PWS", "Tindak lanjut", "Kontribusi jejaring"):
        assert label in html, label
    assert "85,7 %" in text
    # follow-up list grouped per puskesmas: both facilities chased by Puskesmas Cilegon
    assert "dr. Ani (DR01)" in text and "2025-01, 2025-02" in text
    # the malicious name is escaped text, not markup
    assert MALICIOUS_NAMES[0] in text and '=HYPERLINK("http' not in html
    assert elapsed < 5, elapsed  # ~0.5 s on the CI machine


def test_report_without_indicator_data_still_has_every_chart(con, settings):
    seed(con)
    con.execute("DELETE FROM indicators.indicator_value")
    con.execute("DELETE FROM indicators.network_contribution")
    evaluation.build_all(con, settings, ["2025-02"])
    doc = Collect()
    doc.feed(report.render_report(con, settings, "36.72", "2025-02").read_text(encoding="utf-8"))
    for cid in CHARTS:
        assert doc.ids[cid][1]["src"].startswith("data:image/png;base64,"), cid


def test_reports_render_the_same_in_worker_processes(built, settings, monkeypatch):
    """Two reports (two months) go through the forked pool; same files as rendering in-process,
    bar the generation timestamp."""
    def render(workers: str) -> list[str]:
        monkeypatch.setenv(WORKERS_ENV, workers)
        paths = report.render_reports(built, settings, ["2025-01", "2025-02"])
        assert [p.name for p in paths] == ["2025-01.html", "2025-02.html"]
        return [re.sub(r"Dibuat: [^<]*", "", p.read_text(encoding="utf-8")) for p in paths]

    assert render("2") == render("1")


def test_workers_setting(monkeypatch):
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert report.workers() == min(2, os.cpu_count() or 1)
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert report.workers() == 3
    monkeypatch.setenv(WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="KOLAB_WORKERS"):
        report.workers()
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ValueError, match="KOLAB_WORKERS"):
        report.workers()
