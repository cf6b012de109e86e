"""The offline HTML evaluation report: every section in the meeting's order, charts inline as SVG,
Indonesian words instead of codes, the call list, the DQ section and the map."""

from __future__ import annotations

import json
import os
import re
import time
from html.parser import HTMLParser

import duckdb
import pytest

from kolab_pipeline import evaluation, labels, report
from kolab_pipeline.config import WORKERS_ENV, Settings
from kolab_pipeline.report import context
from tests.support.evaluation import MALICIOUS_NAMES, seed

SECTIONS = ["ringkasan", "indikator", "peringkat", "tren", "tindak-lanjut", "capaian", "kontribusi",
            "peta", "kualitas-data"]
CHARTS = ["grafik-tren", "grafik-kontribusi", "grafik-capaian-kia", "grafik-capaian-imunisasi",
          "grafik-capaian-ptm", "grafik-capaian-tb"]
# Codes that must never reach a reader outside a "kode" cell.
CODES = re.compile(r"\b(on_time|late|missing|pending|klinik_pratama|tpmd|puskesmas_network|"
                   r"kia_k1|imun_dpt1|imun_dpt3|outlier_\w+|related_indicators|consistency_over_time|"
                   r"negative_dropout|month|ytd|UTC|kabkota)\b")


class Collect(HTMLParser):
    """Ids, links, tags and the reader-facing text (outside `.kode` and `<code>`)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, tuple[str, dict]] = {}
        self.links: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.inside: dict[str, list[str]] = {}
        self._stack: list[tuple[str, bool, str | None]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids[a["id"]] = (tag, a)
        for attr in ("src", "href"):
            if attr in a:
                self.links.append((tag, attr, a[attr] or ""))
        code = tag == "code" or "kode" in (a.get("class") or "").split()
        hidden = code or (bool(self._stack) and self._stack[-1][1])
        self._stack.append((tag, hidden, a.get("id")))
        if tag in ("meta", "br", "img", "link"):
            self._stack.pop()

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not (self._stack and self._stack[-1][1]) and self.lasttag != "style":
            self.text.append(data)
        for _, _, ident in self._stack:
            if ident:
                self.inside.setdefault(ident, []).append(data)


@pytest.fixture
def built(con: duckdb.DuckDBPyConnection, settings: Settings) -> duckdb.DuckDBPyConnection:
    seed(con)
    # ytd network contribution for the chart: copy the month rows as ytd
    con.execute("INSERT INTO indicators.network_contribution "
                "SELECT unit_level, unit_code, period, 'ytd',"
                " program, data_element, jenis_faskes, volume, total, share_pct"
                " FROM indicators.network_contribution")
    evaluation.build_all(con, settings, ["2025-01", "2025-02"])
    return con


def parse(path) -> tuple[Collect, str]:
    html = path.read_text(encoding="utf-8")
    doc = Collect()
    doc.feed(html)
    return doc, html


def test_report_renders_offline_with_every_section(built, settings):
    # KP01 (the malicious name) has not reported this month: it is on the call list
    built.execute("UPDATE evaluation.followup SET latest_status = 'missing' "
                  "WHERE kode_faskes = 'KP01'")
    start = time.perf_counter()
    paths = report.render_reports(built, settings, ["2025-02"])
    elapsed = time.perf_counter() - start
    assert paths == [settings.paths.reports / "36.72" / "2025-02.html"]
    doc, html = parse(paths[0])
    sections = [i for i, (tag, _) in doc.ids.items() if tag == "section"]
    assert sections == SECTIONS  # the meeting's order
    for cid in CHARTS:  # a drawn chart, or a note that there is nothing to draw (IMUN: no ytd)
        assert f'id="{cid}"><svg' in html or f'id="{cid}"><p class="kosong">' in html, cid
    for cid in ("grafik-tren", "grafik-kontribusi", "grafik-capaian-kia"):
        assert f'id="{cid}"><svg' in html, cid
    # nothing external: in-page anchors, no script, no stylesheet link, no image to fetch
    assert all(v.startswith("#") for _, _, v in doc.links), doc.links
    assert not {"script", "link", "img", "iframe", "object"} & set(doc.tags)
    assert 'name="viewport"' in html
    text = " ".join(doc.text)
    # Indonesian numbers: kab/kota kelengkapan 12 / 14 × 100 = 85.7 %
    assert "85,7 %" in text and "85.7" not in text
    # time in the kab/kota's zone (Banten: WIB), never UTC
    assert re.search(r"Dibuat \d+ \w+ \d{4} pukul \d\d\.\d\d WIB", text)
    # no internal code in what people read
    assert not CODES.findall(text), sorted(set(CODES.findall(text)))
    for word in ("Belum lapor bulan ini", "Klinik Pratama", "TPMD (praktik mandiri dokter)",
                 "Cakupan kunjungan ibu hamil K1", "Pencilan ekstrem"):
        assert word in text, word
    # the malicious name is escaped text, not markup
    assert MALICIOUS_NAMES[0] in text and '=HYPERLINK("http' not in html
    assert elapsed < 15, elapsed


def test_key_indicators_and_ranking_judge_through_one_rule(built, settings):
    ctx = report.build_context(built, settings, "36.72", "2025-02")
    k1 = next(r for r in ctx["indicators"] if r["kode"] == "KIA_K1")
    # kab/kota ytd 10.0 % against a PWS line of 95 × 2/12 = 15.8 %: attainment 63.2 %, not met
    assert (k1["kumulatif"], k1["pws"], k1["pencapaian"], k1["cls"]) == (
        "10,0 %", "15,8 %", "63,2 %", "buruk")
    assert k1["nama"] == "Cakupan kunjungan ibu hamil K1 (dilaporkan FKTP)"  # issue 17.6
    ranking = ctx["ranking"]
    # P0002 4/4 = 100 % ranks above P0001 8/10 = 80 %; completeness judged against 90 %
    assert [r["kode"] for r in ranking] == ["P0002", "P0001"]
    assert ranking[0]["cls_c"] == "baik" and ranking[1]["cls_c"] == "buruk"
    # change since January: P0002 3/4 = 75 % → 100 % (+25 points), P0001 90 % → 80 %
    assert ranking[0]["perubahan"] == "+25,0 poin" and ranking[1]["perubahan"] == "−10,0 poin"
    cards = {c["label"]: c for c in ctx["cards"]}
    assert cards["Kelengkapan laporan"]["cls"] == "buruk"          # 85.7 < 90
    assert cards["Ketepatan waktu"]["value"] == "64,3 %"           # 9 / 14


def test_call_list_first_then_chronic_then_late_counts(built, settings):
    built.execute("UPDATE reference.facility SET telepon = '0254-123456' "
                  "WHERE kode_faskes = 'DR01'")
    built.execute("UPDATE evaluation.followup SET latest_status = 'missing'")
    built.execute("UPDATE evaluation.followup SET consecutive_missing = 1 "
                  "WHERE kode_faskes = 'KP01'")
    ctx = report.build_context(built, settings, "36.72", "2025-02")
    calls = ctx["calls"]
    # KP01 missed this month only → call now; DR01 missed 2 months running → chronic, with phone
    assert [r["kode"] for g in calls["belum"] for r in g["rows"]] == ["KP01"]
    [chronic] = [r for g in calls["kronis"] for r in g["rows"]]
    assert (chronic["kode"], chronic["berturut"], chronic["telepon"]) == ("DR01", 2, "0254-123456")
    assert chronic["formulir"] == "TBC" and chronic["jenis"] == "TPMD (praktik mandiri dokter)"
    assert calls["telepon"] is True
    path = report.render_report(built, settings, "36.72", "2025-02")
    assert "0254-123456" in path.read_text(encoding="utf-8")


def test_dq_section_shows_every_method_and_level_and_says_what_is_left_out(built, settings,
                                                                            monkeypatch):
    built.execute("INSERT INTO indicators.dq_flag VALUES ('kecamatan', '36.72.01', '2025-02', "
                  "'kia_k1', 'consistency_over_time', 300, 1.5, 0.33, 200, 'x')")
    ctx = report.build_context(built, settings, "36.72", "2025-02")
    dq = ctx["dq"]
    methods = {r["kode"] for r in dq["matrix"]}
    assert methods == set(labels.codes("dq_method"))               # zeros included
    assert dq["levels"] == ["Faskes", "Jejaring puskesmas", "Kecamatan", "Kabupaten/kota"]
    assert dq["total"] == 3 and dq["hidden"] == 0
    assert [f["tingkat"] for f in dq["findings"]] == ["Tinggi", "Sedang", "Rendah"]
    kec = dq["findings"][-1]
    assert kec["unit"] == "Kecamatan Cilegon" and "1,50 kali" in kec["keterangan"]
    monkeypatch.setattr(context, "DQ_LIST_LIMIT", 2)
    path = report.render_report(built, settings, "36.72", "2025-02")
    doc, html = parse(path)
    text = " ".join(doc.text)
    assert "Ditampilkan 2 dari 3 temuan" in text and "evaluasi_36.72_2025-02.xlsx" in text
    assert '<a href="../../exports/evaluasi_36.72_2025-02.xlsx">' in html


def test_map_from_a_boundary_file(built, settings):
    path = report.render_report(built, settings, "36.72", "2025-02")
    doc, _ = parse(path)
    assert "batas_wilayah.geojson" in "".join(doc.inside["peta"])  # how to add it
    square = [[106.0, -6.0], [106.1, -6.0], [106.1, -6.1], [106.0, -6.1], [106.0, -6.0]]
    shifted = [[x + 0.1, y] for x, y in square]
    features = [
        {"type": "Feature", "properties": {"kode": "36.72.01", "nama": "Cilegon"},
         "geometry": {"type": "Polygon", "coordinates": [square]}},
        {"type": "Feature", "properties": {"KDCPUM": "367202", "WADMKC": "Ciwandan"},
         "geometry": {"type": "Polygon", "coordinates": [shifted]}},
        {"type": "Feature", "properties": {"kode": "32.01.01", "nama": "elsewhere"},
         "geometry": {"type": "Polygon", "coordinates": [square]}}]
    built.execute("UPDATE evaluation.key_indicator SET value = 20, target = 95, pws_target = 15.8"
                  " WHERE unit_level = 'kecamatan' AND unit_code = '36.72.01'"
                  " AND period = '2025-02'"
                  " AND period_type = 'ytd' AND indicator_code = 'KIA_K1'")
    settings.paths.registry.mkdir(parents=True, exist_ok=True)
    (settings.paths.registry / "batas_wilayah.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    doc, html = parse(report.render_report(built, settings, "36.72", "2025-02"))
    peta = "".join(doc.inside["grafik-peta"])
    svg = html.split('id="grafik-peta">', 1)[1].split("</svg>", 1)[0]
    assert svg.count("<path") >= 4  # two areas in each of the two maps
    assert "Kelengkapan laporan Februari 2025" in peta
    assert "Cakupan kunjungan ibu hamil K1" in peta
    # kecamatan 36.72.01 has 8 of 10 reports (80 %): below the 90 % line
    assert "80 s.d. < 90 %" in peta and "Memenuhi target" in peta  # 20 ≥ 15.8


def test_report_without_indicator_data_still_has_every_section(con, settings):
    seed(con)
    con.execute("DELETE FROM indicators.indicator_value")
    con.execute("DELETE FROM indicators.network_contribution")
    evaluation.build_all(con, settings, ["2025-02"])
    doc, _ = parse(report.render_report(con, settings, "36.72", "2025-02"))
    for cid in CHARTS:
        assert cid in doc.ids, cid
    assert "Indikator belum dihitung" in " ".join(doc.text)


def test_reports_render_the_same_in_worker_processes(built, settings, monkeypatch):
    """Two reports (two months) rendered by two spawned processes: the same files as in this
    process, bar the generation time (and the chart ids' counter)."""
    monkeypatch.setattr(report, "MIN_PARALLEL", 1)   # two reports are enough to use processes
    parallel = report._render_parallel
    calls: list[int] = []

    def spy(todo, n):
        calls.append(n)
        return parallel(todo, n)

    monkeypatch.setattr(report, "_render_parallel", spy)

    def render(workers: str) -> list[str]:
        monkeypatch.setenv(WORKERS_ENV, workers)
        for p in settings.paths.reports.rglob("*.html"):   # else left as is (inputs unchanged)
            p.unlink()
        paths = report.render_reports(built, settings, ["2025-01", "2025-02"])
        assert [p.name for p in paths] == ["2025-01.html", "2025-02.html"]
        text = [re.sub(r"Dibuat [^<]*", "", p.read_text(encoding="utf-8")) for p in paths]
        return [re.sub(r'id="g\d+-', 'id="g-', t) for t in text]

    assert render("2") == render("1")
    assert calls == [2]   # "2": two processes; "1": this process


def test_unchanged_report_is_not_rendered_again(built, settings):
    """Issue 20: a report whose data, settings and code did not change is left as it is (its
    "Dibuat" time included); a change of what it shows renders it again."""
    [path] = report.render_reports(built, settings, ["2025-02"])
    first = path.read_text(encoding="utf-8")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert report.render_reports(built, settings, ["2025-02"]) == [path]
    assert path.stat().st_mtime_ns == 1_000_000_000 and path.read_text(encoding="utf-8") == first
    built.execute("UPDATE evaluation.scorecard SET nama_puskesmas = 'Puskesmas Baru Sekali' "
                  "WHERE period = '2025-02'")
    assert report.render_reports(built, settings, ["2025-02"]) == [path]
    assert path.stat().st_mtime_ns != 1_000_000_000
    assert "Puskesmas Baru Sekali" in path.read_text(encoding="utf-8")


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


def test_indonesian_formatting():
    assert labels.number(1234.5, 1) == "1.234,5"
    assert labels.percent(97.24) == "97,2 %"
    assert labels.signed(-1.04) == "−1,0 poin" and labels.signed(2) == "+2,0 poin"
    assert labels.period_label("2026-10") == "Oktober 2026"
    assert labels.zone_abbrev("Asia/Makassar") == "WITA"
    assert labels.label("status", "pending") == "Belum jatuh tempo"
