"""The offline evaluation report `KOLAB_HOME/reports/<kode_kabkota>/<YYYY-MM>.html` for the Dinkes
evaluation meeting (rapat evaluasi), in Indonesian.

One self-contained HTML file: CSS inline, charts as base64 PNG `data:` URIs, no script and nothing
fetched from a network — it opens on a laptop without internet.

Charts are drawn directly with Pillow (bars, lines, text in matplotlib's bundled DejaVu Sans font,
the RdYlGn colour map for the heatmap). Why not matplotlib figures: a national run renders one
report per kab/kota × month (486 × 12 = 5,832 reports, 7 charts each) and matplotlib's text layout
cost 0.3–1.6 s per chart — hours for a year; Pillow draws the same chart in a few milliseconds. Text from the
data (facility names) is HTML-escaped by Jinja2 autoescape.

Sections (element ids, used by the tests): `ringkasan`, `kepatuhan` (`grafik-kepatuhan`),
`heatmap` (`grafik-heatmap`), `tindak-lanjut`, `capaian` (`grafik-capaian-<program>`),
`kontribusi` (`grafik-kontribusi`), `kualitas-data`.

Reads only evaluation / indicator tables (`evaluation.scorecard`, `evaluation.wilayah_scorecard`,
`evaluation.key_indicator`, `evaluation.followup`, `indicators.network_contribution`,
`indicators.dq_flag`, plus names from `reference.wilayah` / `reference.facility`).

Speed (national: 486 reports per month): one query per table for all kab/kota of the month, then
drawing + templating in `KOLAB_WORKERS` forked processes from plain data; PNGs in palette mode
when lossless; glyph masks, text widths, colours and the compiled template cached per process.
Before, a national month took 83 s (0.17 s per report; profile: PNG encoding 25 %, FreeType
text 18 %, per-kab/kota queries 17 %, re-compiling the template per report 12 %).
"""

from __future__ import annotations

import base64
import io
import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kolab_pipeline.calendar import add_months
from kolab_pipeline.config import Settings, document_workers
from kolab_pipeline.indicators import load_catalogue

TEMPLATES = Path(__file__).parent / "templates_html"
BULAN = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
         "Oktober", "November", "Desember"]
PROGRAM_LABELS = {"KIA": "Kesehatan Ibu dan Anak (KIA)", "Imunisasi": "Imunisasi",
                  "PTM": "Penyakit Tidak Menular (PTM)", "TB": "Tuberkulosis (TB)"}
JENIS_LABELS = {"puskesmas": "Puskesmas", "klinik_pratama": "Klinik Pratama", "tpmd": "TPMD"}
DPI = 72
FONT_FILE = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
ROW_H = 22          # px per category row (bars)
LABEL_PX = 11       # tick label font size
INK, GRID, MUTED = (34, 34, 34), (225, 225, 225), (102, 102, 102)


def period_label(period: str) -> str:
    return f"{BULAN[int(period[5:7]) - 1]} {period[:4]}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} %".replace(".", ",")


@cache
def _font(size: int = LABEL_PX) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILE), size)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@cache
def _palette_lut() -> np.ndarray:
    """Scratch table packed RGB → palette index (16 MiB, virtual; only touched pages are real)."""
    return np.zeros(1 << 24, np.uint8)


def _to_palette(img: Image.Image) -> Image.Image | None:
    """`img` as an exact ("P", ≤ 256 colours) copy, or None when it has more colours.

    Why: zlib time is proportional to the bytes compressed, and a palette image is one byte per
    pixel instead of three, without PNG's per-row filter search — a 1,900 px tall bar chart encodes
    in ~4 ms instead of ~45 ms and is half the size. Pillow's quantizers are either slow or not
    exact (FASTOCTREE merges near colours), so the mapping is a direct table lookup: every pixel
    keeps its RGB value."""
    colours = img.getcolors(256)
    if colours is None:
        return None
    rgb = sorted(c for _, c in colours)
    lut = _palette_lut()
    lut[np.array([r | g << 8 | b << 16 for r, g, b in rgb], np.uint32)] = np.arange(len(rgb), dtype=np.uint8)
    packed = np.frombuffer(img.tobytes("raw", "RGBX"), "<u4") & 0xFFFFFF          # R | G<<8 | B<<16
    out = Image.frombuffer("P", img.size, lut.take(packed), "raw", "P", 0, 1)
    out.putpalette(bytes(v for c in rgb for v in c))
    return out


def _encode(img: Image.Image) -> str:
    """Base64 PNG, palette mode when that is lossless (every chart but the heatmap)."""
    buf = io.BytesIO()
    (_to_palette(img) or img).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@cache
def _text_w(text: str, size: int = LABEL_PX) -> int:
    return int(_font(size).getlength(text))


_MASKS: dict[tuple[str, int, float, float, int], tuple[Any, tuple[int, int]]] = {}


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: tuple[int, int, int],
          size: int = LABEL_PX) -> None:
    """`draw.text(xy, text, fill, font=_font(size))`, pixel for pixel, with the glyph mask cached.

    Why: FreeType rendering was the largest drawing cost, and the same strings (facility names,
    ticks, month names) are drawn in up to seven charts per report and across reports. This is
    Pillow's own single-line path (ImageDraw.text: integer position + sub-pixel `start`,
    `getmask2`, `draw_bitmap`), so the result is identical."""
    ink = draw._getink(fill)[0]
    x, y = xy
    start = (math.modf(x)[0], math.modf(y)[0])
    key = (text, size, *start, ink)
    hit = _MASKS.get(key)
    if hit is None:
        if len(_MASKS) > 50_000:      # bound the memory of a national run
            _MASKS.clear()
        hit = _MASKS[key] = _font(size).getmask2(text, draw.fontmode, None, None, None, 0, "la", ink, start,
                                                 stroke_filled=True)
    mask, offset = hit
    draw.draw.draw_bitmap((int(x) + offset[0], int(y) + offset[1]), mask, ink)


@cache
def _fit(text: str, width: int, size: int = LABEL_PX) -> str:
    """`text` shortened with … to fit `width` px (long facility names)."""
    if _text_w(text, size) <= width:
        return text
    while text and _text_w(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _vline(draw: ImageDraw.ImageDraw, x: float, y0: int, y1: int, colour: tuple, style: str, width: int) -> None:
    """Vertical line: solid, dashed (`--`) or dotted (`:`)."""
    if style == "-":
        draw.line([(x, y0), (x, y1)], fill=colour, width=width)
        return
    on, off = (6, 4) if style == "--" else (2, 3)
    y = y0
    while y < y1:
        draw.line([(x, y), (x, min(y + on, y1))], fill=colour, width=width)
        y += on + off


def _nice_ticks(xmax: float) -> list[float]:
    """About five round ticks from 0 to ≥ xmax."""
    if xmax <= 0:
        return [0.0, 1.0]
    raw = xmax / 5
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = int(xmax / step + 0.999)
    return [i * step for i in range(n + 1)]


def _fmt_tick(v: float) -> str:
    return f"{v:g}".replace(".", ",")


def _legend(draw: ImageDraw.ImageDraw, x_right: int, y: int, items: list[tuple[str, tuple, str]]) -> None:
    """Legend row right-aligned at `x_right`: (label, colour, kind = box | -- | -)."""
    size = LABEL_PX - 1
    widths = [18 + _text_w(label, size) + 12 for label, _, _ in items]
    x = x_right - sum(widths)
    for (label, colour, kind), w in zip(items, widths, strict=True):
        if kind == "box":
            draw.rectangle([x, y + 2, x + 12, y + 11], fill=colour)
        else:
            for dx in range(0, 14, 5 if kind == "--" else 14):
                draw.line([(x + dx, y + 7), (x + min(dx + (3 if kind == "--" else 14), 14), y + 7)],
                          fill=colour, width=2)
        _text(draw, (x + 17, y), label, INK, size)
        x += w


def _bar_chart(labels: list[str], panels: list[dict[str, Any]], legend: list[tuple[str, tuple, str]],
               panel_w: int = 430, label_w: int | None = None) -> str:
    """Horizontal bar chart, categories top to bottom, one or more panels side by side.

    A panel: `xmax`, optional `title`, `xlabel`, `bars` = [(values, colour, offset, height, lefts)]
    with offset/height in row units (centre = 0, row = 1), `vlines` = [(x, colour, style, width)].
    """
    n = max(len(labels), 1)
    label_w = label_w if label_w is not None else min(max((_text_w(t) for t in labels), default=0) + 10, 260)
    top, bottom = (20 if any(p.get("title") for p in panels) else 8), 40 + (18 if legend else 0)
    width = label_w + len(panels) * (panel_w + 16) + 8
    height = top + n * ROW_H + bottom
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    y_axis0, y_axis1 = top, top + n * ROW_H
    for k, panel in enumerate(panels):
        x0 = label_w + k * (panel_w + 16)
        x1 = x0 + panel_w
        xmax = panel["xmax"] or 1.0

        def sx(v: float, x0: int = x0, xmax: float = xmax) -> float:
            return x0 + max(0.0, min(v, xmax)) / xmax * panel_w

        for t in _nice_ticks(xmax):
            if t > xmax * 1.0001:
                continue
            draw.line([(sx(t), y_axis0), (sx(t), y_axis1)], fill=GRID)
            label = _fmt_tick(t)
            _text(draw, (sx(t) - _text_w(label) / 2, y_axis1 + 4), label, INK)
        for values, colour, offset, h, lefts in panel["bars"]:
            for i, v in enumerate(values):
                if not v:
                    continue
                left = lefts[i] if lefts else 0.0
                yc = top + (i + 0.5 + offset) * ROW_H
                draw.rectangle([sx(left), yc - h * ROW_H / 2, sx(left + v), yc + h * ROW_H / 2 - 1], fill=colour)
        for x, colour, style, w in panel.get("vlines", []):
            if x is not None and 0 <= x <= xmax:
                _vline(draw, sx(x), y_axis0, y_axis1, colour, style, w)
        draw.line([(x0, y_axis0), (x0, y_axis1), (x1, y_axis1)], fill=INK)
        if panel.get("title"):
            t = _fit(panel["title"], panel_w, LABEL_PX)
            _text(draw, (x0 + (panel_w - _text_w(t)) / 2, 3), t, INK)
        if panel.get("xlabel"):
            xl = _fit(panel["xlabel"], panel_w)
            _text(draw, (x0 + (panel_w - _text_w(xl)) / 2, y_axis1 + 20), xl, INK)
    for i, name in enumerate(labels):
        t = _fit(name, label_w - 8)
        _text(draw, (label_w - 6 - _text_w(t), top + i * ROW_H + (ROW_H - LABEL_PX) / 2 - 1), t, INK)
    if legend:
        _legend(draw, width - 14, height - 18, legend)
    return _encode(img)


def _empty(text: str = "Belum ada data") -> str:
    img = Image.new("RGB", (432, 86), "white")
    draw = ImageDraw.Draw(img)
    _text(draw, ((432 - _text_w(text, 14)) / 2, 34), text, MUTED, 14)
    return _encode(img)


def _query_rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | dict) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --- charts ---------------------------------------------------------------------------------------

BLUE, GREEN_L, GREEN_D = _rgb("#2b6cb0"), _rgb("#68d391"), _rgb("#2f855a")


def chart_compliance(nets: list[dict], tc: float, tt: float) -> str:
    if not nets:
        return _empty()
    names = [n["nama_puskesmas"] or n["kode_jejaring"] for n in nets]
    panel = {"xmax": 105.0, "xlabel": "% laporan",
             "bars": [([n["completeness_pct"] or 0 for n in nets], BLUE, -0.2, 0.4, None),
                      ([n["timeliness_pct"] or 0 for n in nets], GREEN_L, 0.2, 0.4, None)],
             "vlines": [(tc, BLUE, "--", 1), (tt, GREEN_D, ":", 1)]}
    return _bar_chart(names, [panel], [("Kelengkapan", BLUE, "box"), ("Ketepatan waktu", GREEN_L, "box")],
                      panel_w=460)


@cache
def _cmap() -> matplotlib.colors.Colormap:
    """RdYlGn, once per process: the registry hands out a fresh copy, whose lookup table is rebuilt
    (~0.3 ms) on its first call."""
    return matplotlib.colormaps["RdYlGn"]


@cache
def _heat_colour(x: float) -> tuple[int, int, int]:
    """RdYlGn at `x` ∈ [0, 1] as 8-bit RGB. Cached: a colormap call costs ~35 µs and the values
    (completeness %, colour-bar steps) repeat across cells, rows and reports."""
    r, g, b, _ = _cmap()(x)
    return int(255 * r), int(255 * g), int(255 * b)


def chart_heatmap(codes: list[str], names: list[str], months: list[str],
                  grid: dict[tuple[str, str], float | None]) -> str:
    if not codes:
        return _empty()
    label_w = min(max(_text_w(t) for t in names) + 10, 260)
    cell_w, top, bottom = 44, 8, 26
    width = label_w + cell_w * len(months) + 90
    height = top + ROW_H * len(codes) + bottom
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    show_text = len(codes) * len(months) <= 120
    for i, c in enumerate(codes):
        y = top + i * ROW_H
        t = _fit(names[i], label_w - 8)
        _text(draw, (label_w - 6 - _text_w(t), y + (ROW_H - LABEL_PX) / 2 - 1), t, INK)
        for j, m in enumerate(months):
            v = grid.get((c, m))
            x = label_w + j * cell_w
            colour = (235, 235, 235) if v is None else _heat_colour(max(0.0, min(v, 100.0)) / 100)
            draw.rectangle([x, y, x + cell_w - 1, y + ROW_H - 1], fill=colour)
            if show_text and v is not None:
                label = f"{v:.0f}"
                _text(draw, (x + (cell_w - _text_w(label, 10)) / 2, y + 5), label, INK, 10)
    for j, m in enumerate(months):
        label = BULAN[int(m[5:7]) - 1][:3]
        _text(draw, (label_w + j * cell_w + (cell_w - _text_w(label)) / 2, top + ROW_H * len(codes) + 5),
              label, INK)
    # colour bar 0..100
    bx, by0, by1 = label_w + cell_w * len(months) + 14, top, top + ROW_H * len(codes)
    span = max(by1 - by0, 1)
    for k in range(span):
        draw.line([(bx, by0 + k), (bx + 12, by0 + k)], fill=_heat_colour(1 - k / span))
    for v, yy in ((100, by0), (50, by0 + span / 2), (0, by1 - LABEL_PX)):
        _text(draw, (bx + 16, yy), str(v), INK, 10)
    _text(draw, (bx + 16, by1 + 5), "Kelengkapan (%)", INK, 9)
    return _encode(img)


@cache
def _indicator_names() -> dict[str, str]:
    return {i.code: i.name_id for i in load_catalogue()}


def _indicator_title(code: str) -> str:
    """Indonesian name of an indicator from the catalogue (charts are read by Dinkes staff)."""
    name = _indicator_names().get(code, code)
    return name if len(name) <= 48 else name[:46] + "…"


def chart_program(indicators: list[tuple[str, list[dict]]]) -> str:
    """One panel per key indicator of a program: ytd value per puskesmas, annual target (dashed)
    and the PWS line (target × m/12, red)."""
    indicators = [(code, rows) for code, rows in indicators if any(r["value"] is not None for r in rows)]
    if not indicators:
        return _empty("Indikator belum dihitung")
    longest = max(indicators, key=lambda item: len(item[1]))[1]
    names = [r["nama"] for r in longest]
    panels = []
    for code, rows in indicators:
        vals = [r["value"] or 0 for r in rows]
        targets = [r["target"] for r in rows if r["target"] is not None]
        pws = [r["pws_target"] for r in rows if r["pws_target"] is not None]
        xmax = max([*vals, *(targets or [0]), *(pws or [0]), 1.0]) * 1.05
        vlines = []
        if targets:
            vlines.append((max(targets), (68, 68, 68), "--", 1))
        if pws:
            vlines.append((max(pws), _rgb("#e53e3e"), "-", 2))
        panels.append({"title": _indicator_title(code), "xmax": xmax, "xlabel": "Capaian (%)",
                       "bars": [(vals, _rgb("#4299e1"), 0.0, 0.8, None)], "vlines": vlines})
    legend = [("Capaian", _rgb("#4299e1"), "box"), ("Target tahunan", (68, 68, 68), "--"),
              ("Target PWS", _rgb("#e53e3e"), "-")]
    return _bar_chart(names, panels, legend, panel_w=260)


def chart_contribution(names: list[str], shares: list[dict[str, float]]) -> str:
    if not names:
        return _empty()
    colours = {"puskesmas": "#2b6cb0", "klinik_pratama": "#ed8936", "tpmd": "#48bb78"}
    jenis_all = sorted({j for s in shares for j in s}, key=lambda j: (j not in colours, j))
    left = [0.0] * len(names)
    bars, legend = [], []
    for jenis in jenis_all:
        vals = [s.get(jenis, 0.0) for s in shares]
        colour = _rgb(colours.get(jenis, "#a0aec0"))
        bars.append((vals, colour, 0.0, 0.8, list(left)))
        legend.append((JENIS_LABELS.get(jenis, jenis), colour, "box"))
        left = [a + b for a, b in zip(left, vals, strict=True)]
    panel = {"xmax": 100.0, "xlabel": "% volume layanan (s.d. bulan ini, semua program)", "bars": bars}
    return _bar_chart(names, [panel], legend, panel_w=460)


# --- the report -----------------------------------------------------------------------------------
#
# Two phases. `extract` reads everything the reports of one month need with ONE query per table
# for all kab/kota (grouped per kab/kota in Python): per-kab/kota queries cost a scan each, ×486
# kab/kota × 8 queries nationally. `_render` then builds the charts and the HTML from that plain
# data without a database, so it can run in worker processes (`KOLAB_WORKERS`).



@dataclass
class ReportData:
    """The rows one kab/kota × month report shows (plain Python values, picklable)."""

    nama_kabkota: str
    nets: list[dict[str, Any]]                     # month scorecard per network (+ ytd completeness)
    wilayah: dict[str, dict[str, Any]]             # kab/kota scorecard by period_type
    grid: dict[tuple[str, str], float | None]      # (kode_jejaring, month) → completeness, Jan..period
    followup: list[dict[str, Any]]
    key_indicators: list[dict[str, Any]]
    contribution: list[dict[str, Any]]             # unit_code, jenis_faskes, share
    dq_messages: list[dict[str, Any]]


@dataclass(frozen=True)
class _Job:
    """One report to render: what a worker needs besides its `ReportData` (no Settings, no DB)."""

    kode_kabkota: str
    period: str
    path: Path
    completeness_pct: float
    timeliness_pct: float
    key_indicators: tuple[str, ...]
    generated_at: str


def report_path(settings: Settings, kode_kabkota: str, period: str) -> Path:
    return settings.paths.reports / kode_kabkota / f"{period}.html"


def _by_kab(rows: list[dict[str, Any]], col: str) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by `col`, the query's order kept within each group (and `col` dropped if private)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = r.pop(col) if col.startswith("_") else r[col]
        out.setdefault(key, []).append(r)
    return out


def extract(con: duckdb.DuckDBPyConnection, period: str, kabs: Sequence[str]) -> dict[str, ReportData]:
    """The data of the reports of `kabs` for `period`, one query per table (see the section note).

    Each query is the per-kab/kota query of the report with the kab/kota filter replaced by a
    `kode_kabkota` column; `ORDER BY` starts with that column, then the report's own order (ties
    broken on a key so that the output is deterministic)."""
    params = {"kabs": list(kabs), "p": period, "ys": f"{period[:4]}-01"}

    def rows(sql: str) -> list[dict[str, Any]]:
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        return _query_rows(con, sql, used)

    nets = _by_kab(rows("""
        SELECT s.*, y.completeness_pct AS ytd_completeness
        FROM evaluation.scorecard s
        LEFT JOIN evaluation.scorecard y ON y.kode_jejaring = s.kode_jejaring AND y.period = s.period
             AND y.period_type = 'ytd'
        WHERE s.period = $p AND s.period_type = 'month' AND list_contains($kabs, s.kode_kabkota)
        ORDER BY s.kode_kabkota, s.nama_puskesmas, s.kode_jejaring"""), "kode_kabkota")
    wilayah = _by_kab(rows("""
        SELECT * FROM evaluation.wilayah_scorecard
        WHERE unit_level = 'kabkota' AND period = $p AND list_contains($kabs, unit_code)"""), "unit_code")
    names = {r["kode"]: r["nama"] for r in rows("""
        SELECT kode, any_value(nama) AS nama FROM reference.wilayah
        WHERE list_contains($kabs, kode) GROUP BY kode""")}
    grid = _by_kab(rows("""
        SELECT kode_kabkota, kode_jejaring, period, completeness_pct FROM evaluation.scorecard
        WHERE period_type = 'month' AND period BETWEEN $ys AND $p AND list_contains($kabs, kode_kabkota)"""),
        "kode_kabkota")
    followup = _by_kab(rows("""
        SELECT kode_kabkota, kode_puskesmas_induk, nama_puskesmas_induk, kode_faskes, nama_faskes,
               jenis_faskes, form, missing_periods, consecutive_missing, months_late, last_received_period
        FROM evaluation.followup WHERE as_of_period = $p AND list_contains($kabs, kode_kabkota)
        ORDER BY kode_kabkota, nama_puskesmas_induk, consecutive_missing DESC, kode_faskes, form"""),
        "kode_kabkota")
    ki = _by_kab(rows("""
        SELECT k.kode_kabkota AS _kab, k.indicator_code, k.program, k.display_order, k.unit_code, k.value,
               k.target, k.pws_target, coalesce(f.nama_faskes, k.unit_code) AS nama
        FROM evaluation.key_indicator k
        LEFT JOIN reference.facility f ON f.kode_faskes = k.unit_code
        WHERE k.unit_level = 'puskesmas_network' AND k.period = $p AND k.period_type = 'ytd'
          AND list_contains($kabs, k.kode_kabkota)
        ORDER BY k.kode_kabkota, k.display_order, nama, k.indicator_code, k.unit_code"""), "_kab")
    # share of each jenis faskes in a network's ytd volume; a network belongs to the kab/kota of its
    # puskesmas in reference.facility
    contrib = _by_kab(rows("""
        SELECT kab AS _kab, unit_code, jenis_faskes,
               100.0 * volume / nullif(sum(volume) OVER (PARTITION BY kab, unit_code), 0) AS share
        FROM (SELECT f.kode_kabkota AS kab, n.unit_code, n.jenis_faskes, sum(n.volume) AS volume
              FROM indicators.network_contribution n
              JOIN (SELECT DISTINCT kode_faskes, kode_kabkota FROM reference.facility
                    WHERE list_contains($kabs, kode_kabkota)) f ON f.kode_faskes = n.unit_code
              WHERE n.unit_level = 'puskesmas_network' AND n.period = $p AND n.period_type = 'ytd'
              GROUP BY ALL)
        ORDER BY kab, unit_code, jenis_faskes"""), "_kab")
    # a flag belongs to the kab/kota of its facility, and a kab/kota-level flag to that kab/kota
    # (once if both); the report lists the first 100 by method, unit name
    dq = _by_kab(rows("""
        WITH d AS (
            SELECT d.unit_level, d.unit_code, d.subject, d.method, d.message, f.kode_kabkota AS fkab,
                   coalesce(f.nama_faskes, d.unit_code) AS nama
            FROM indicators.dq_flag d
            LEFT JOIN reference.facility f ON f.kode_faskes = d.unit_code
            WHERE d.period = $p),
        k AS (
            SELECT fkab AS kab, * FROM d WHERE fkab IS NOT NULL
            UNION ALL
            SELECT unit_code AS kab, * FROM d WHERE unit_level = 'kabkota' AND fkab IS DISTINCT FROM unit_code)
        SELECT kab AS _kab, nama, subject, method, message FROM k
        WHERE list_contains($kabs, kab)
        QUALIFY row_number() OVER (PARTITION BY kab ORDER BY method, nama, subject, message, unit_code) <= 100
        ORDER BY kab, method, nama, subject, message, unit_code"""), "_kab")

    out = {}
    for k in kabs:
        out[k] = ReportData(
            nama_kabkota=names.get(k) or k, nets=nets.get(k, []),
            wilayah={r["period_type"]: r for r in wilayah.get(k, [])},
            grid={(r["kode_jejaring"], r["period"]): r["completeness_pct"] for r in grid.get(k, [])},
            followup=followup.get(k, []), key_indicators=ki.get(k, []),
            contribution=contrib.get(k, []), dq_messages=dq.get(k, []))
    return out


def _job(settings: Settings, kode_kabkota: str, period: str, generated_at: str | None = None) -> _Job:
    th = settings.config.thresholds
    return _Job(kode_kabkota=kode_kabkota, period=period, path=report_path(settings, kode_kabkota, period),
                completeness_pct=th.completeness_pct, timeliness_pct=th.timeliness_pct,
                key_indicators=tuple(settings.config.evaluation.key_indicators),
                generated_at=generated_at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def _context(job: _Job, data: ReportData) -> dict[str, Any]:
    """Everything the template shows, from the extracted data (no database)."""
    period, nets = job.period, data.nets
    month = data.wilayah.get("month", {})
    cards = [
        {"label": "Kelengkapan", "value": _pct(month.get("completeness_pct")),
         "note": f"{month.get('received') or 0} dari {month.get('expected') or 0} laporan"},
        {"label": "Ketepatan waktu", "value": _pct(month.get("timeliness_pct")),
         "note": f"{month.get('on_time') or 0} laporan tepat waktu"},
        {"label": "Kelengkapan s.d. bulan ini", "value": _pct(data.wilayah.get("ytd", {}).get("completeness_pct")),
         "note": "Januari s.d. periode"},
        {"label": "Perlu tindak lanjut", "value": str(month.get("n_followup") or 0), "note": "faskes × formulir"},
        {"label": "Kontribusi jejaring", "value": _pct(month.get("network_share_pct")), "note": "volume layanan"},
    ]

    def cls(v: float | None, limit: float) -> str:
        return "" if v is None else ("baik" if v >= limit else "buruk")

    network_rows = [{
        "nama": n["nama_puskesmas"] or n["kode_jejaring"],
        "completeness": _pct(n["completeness_pct"]), "timeliness": _pct(n["timeliness_pct"]),
        "cls_c": cls(n["completeness_pct"], job.completeness_pct),
        "cls_t": cls(n["timeliness_pct"], job.timeliness_pct),
        "pkm": _pct(n["pkm_completeness_pct"]), "klinik": _pct(n["klinik_completeness_pct"]),
        "tpmd": _pct(n["tpmd_completeness_pct"]), "ytd": _pct(n["ytd_completeness"]),
        "n_vf": n["n_validation_flags"], "n_q": n["n_quarantined_rows"], "n_dq": n["n_dq_flags"],
    } for n in nets]

    # heatmap: Jan..period of the year, per network
    months = [add_months(f"{period[:4]}-01", i) for i in range(int(period[5:7]))]
    codes = [n["kode_jejaring"] for n in nets]
    names = [n["nama_puskesmas"] or n["kode_jejaring"] for n in nets]

    followup: dict[str, dict[str, Any]] = {}
    for r in data.followup:
        key = r["kode_puskesmas_induk"] or "-"
        followup.setdefault(key, {"nama": r["nama_puskesmas_induk"] or key, "rows": []})["rows"].append(r)

    ki_by_code: dict[str, list[dict[str, Any]]] = {}
    for r in data.key_indicators:
        ki_by_code.setdefault(r["indicator_code"], []).append(r)
    programs: list[dict[str, Any]] = []
    for code in job.key_indicators:
        rows = ki_by_code.get(code, [])
        prog = rows[0]["program"] if rows and rows[0]["program"] else code.split("_")[0]
        entry = next((p for p in programs if p["program"] == prog), None)
        if entry is None:
            entry = {"program": prog, "label": PROGRAM_LABELS.get(prog, prog),
                     "slug": prog.lower().replace(" ", "-"), "indicators": []}
            programs.append(entry)
        entry["indicators"].append((code, rows))
    for entry in programs:
        entry["chart"] = chart_program(entry["indicators"])

    shares: dict[str, dict[str, float]] = {}
    for r in data.contribution:
        shares.setdefault(r["unit_code"], {})[r["jenis_faskes"]] = r["share"] or 0.0
    c_codes = [c for c in codes if c in shares]

    return {
        "kode_kabkota": job.kode_kabkota, "nama_kabkota": data.nama_kabkota, "period_label": period_label(period),
        "generated_at": job.generated_at,
        "threshold_c": f"{job.completeness_pct:g}", "threshold_t": f"{job.timeliness_pct:g}",
        "cards": cards, "networks": network_rows, "followup": list(followup.values()),
        "programs": programs, "dq_messages": data.dq_messages,
        "charts": {
            "kepatuhan": chart_compliance(nets, job.completeness_pct, job.timeliness_pct),
            "heatmap": chart_heatmap(codes, names, months, data.grid),
            "kontribusi": chart_contribution([names[codes.index(c)] for c in c_codes],
                                              [shares[c] for c in c_codes]),
        },
    }


def build_context(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str, scope: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the template shows for one kab/kota × month. `scope` is accepted for callers of
    the former per-month staging and ignored: the queries filter by month themselves."""
    del scope
    return _context(_job(settings, kode_kabkota, period), extract(con, period, [kode_kabkota])[kode_kabkota])


@cache
def _template() -> jinja2.Template:
    """The compiled template, once per process (compiling it took ~40 ms, as long as a report)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2")


def _write(path: Path, html: str) -> Path:
    """Write via a temp file + rename: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _render(item: tuple[_Job, ReportData]) -> Path:
    """Render and write one report; runs in a worker process (plain data in, no database)."""
    job, data = item
    return _write(job.path, _template().render(**_context(job, data)))


def render_report(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str, scope: dict[str, str] | None = None) -> Path:
    """Render and write the report of one kab/kota × month (temp file + rename)."""
    del scope
    return _render((_job(settings, kode_kabkota, period), extract(con, period, [kode_kabkota])[kode_kabkota]))


def workers() -> int:
    """Worker processes for rendering (`config.document_workers`, shared with the workbooks)."""
    return document_workers()


def render_reports(con: duckdb.DuckDBPyConnection, settings: Settings,
                   periods: Sequence[str]) -> list[Path]:
    """Every kab/kota with a scorecard in each period, in kab/kota order.

    The data is extracted here, in this process (the only one that touches DuckDB); drawing and
    templating, ~90 % of the time, run in `workers()` processes. They are forked — cheap, and they
    inherit the imported modules — and only get plain data: a DuckDB connection must never be used
    in a forked child. Where fork does not exist (Windows, macOS) the reports render in this process."""
    generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    items: list[tuple[_Job, ReportData]] = []
    for p in periods:
        kabs = [r[0] for r in con.execute(
            "SELECT DISTINCT kode_kabkota FROM evaluation.scorecard WHERE period = ? "
            "AND kode_kabkota IS NOT NULL ORDER BY 1", [p]).fetchall()]
        data = extract(con, p, kabs) if kabs else {}
        items += [(_job(settings, k, p, generated_at), data[k]) for k in kabs]
    n = min(workers(), len(items))
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_render(item) for item in items]
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_render, items, chunksize=max(1, min(16, len(items) // (4 * n)))))
