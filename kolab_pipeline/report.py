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
`indicators.dq_flag`).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import matplotlib
from PIL import Image, ImageDraw, ImageFont

from kolab_pipeline.config import Settings, add_months
from kolab_pipeline.exports import drop_scope, month_scope, scoped
from kolab_pipeline.indicators import load_catalogue

# the big tables a report reads, staged per month (see exports.month_scope)
REPORT_SCOPED = {"evaluation.followup": "as_of_period", "evaluation.key_indicator": "period",
                 "indicators.network_contribution": "period", "indicators.dq_flag": "period"}
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


def _encode(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _text_w(text: str, size: int = LABEL_PX) -> int:
    return int(_font(size).getlength(text))


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
        draw.text((x + 17, y), label, fill=INK, font=_font(size))
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
            draw.text((sx(t) - _text_w(label) / 2, y_axis1 + 4), label, fill=INK, font=_font())
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
            draw.text((x0 + (panel_w - _text_w(t)) / 2, 3), t, fill=INK, font=_font())
        if panel.get("xlabel"):
            xl = _fit(panel["xlabel"], panel_w)
            draw.text((x0 + (panel_w - _text_w(xl)) / 2, y_axis1 + 20), xl, fill=INK, font=_font())
    for i, name in enumerate(labels):
        t = _fit(name, label_w - 8)
        draw.text((label_w - 6 - _text_w(t), top + i * ROW_H + (ROW_H - LABEL_PX) / 2 - 1), t, fill=INK, font=_font())
    if legend:
        _legend(draw, width - 14, height - 18, legend)
    return _encode(img)


def _empty(text: str = "Belum ada data") -> str:
    img = Image.new("RGB", (432, 86), "white")
    draw = ImageDraw.Draw(img)
    draw.text(((432 - _text_w(text, 14)) / 2, 34), text, fill=MUTED, font=_font(14))
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


def chart_heatmap(codes: list[str], names: list[str], months: list[str],
                  grid: dict[tuple[str, str], float | None]) -> str:
    if not codes:
        return _empty()
    cmap = matplotlib.colormaps["RdYlGn"]
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
        draw.text((label_w - 6 - _text_w(t), y + (ROW_H - LABEL_PX) / 2 - 1), t, fill=INK, font=_font())
        for j, m in enumerate(months):
            v = grid.get((c, m))
            x = label_w + j * cell_w
            colour = (235, 235, 235) if v is None else tuple(int(255 * ch) for ch in cmap(max(0.0, min(v, 100.0)) / 100)[:3])
            draw.rectangle([x, y, x + cell_w - 1, y + ROW_H - 1], fill=colour)
            if show_text and v is not None:
                label = f"{v:.0f}"
                draw.text((x + (cell_w - _text_w(label, 10)) / 2, y + 5), label, fill=INK, font=_font(10))
    for j, m in enumerate(months):
        label = BULAN[int(m[5:7]) - 1][:3]
        draw.text((label_w + j * cell_w + (cell_w - _text_w(label)) / 2, top + ROW_H * len(codes) + 5),
                  label, fill=INK, font=_font())
    # colour bar 0..100
    bx, by0, by1 = label_w + cell_w * len(months) + 14, top, top + ROW_H * len(codes)
    span = max(by1 - by0, 1)
    for k in range(span):
        r, g, b, _ = cmap(1 - k / span)
        draw.line([(bx, by0 + k), (bx + 12, by0 + k)], fill=(int(255 * r), int(255 * g), int(255 * b)))
    for v, yy in ((100, by0), (50, by0 + span / 2), (0, by1 - LABEL_PX)):
        draw.text((bx + 16, yy), str(v), fill=INK, font=_font(10))
    draw.text((bx + 16, by1 + 5), "Kelengkapan (%)", fill=INK, font=_font(9))
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

def report_path(settings: Settings, kode_kabkota: str, period: str) -> Path:
    return settings.paths.reports / kode_kabkota / f"{period}.html"


def build_context(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str, scope: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the template shows. `scope` (`exports.month_scope`) points the queries at the
    month's rows staged once per month instead of the whole tables (same results)."""
    th = settings.config.thresholds

    def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | dict) -> list[dict[str, Any]]:
        return _query_rows(con, scoped(sql, scope), params)

    params = {"kab": kode_kabkota, "p": period}
    nets = _rows(con, """
        SELECT s.*, y.completeness_pct AS ytd_completeness
        FROM evaluation.scorecard s
        LEFT JOIN evaluation.scorecard y ON y.kode_jejaring = s.kode_jejaring AND y.period = s.period
             AND y.period_type = 'ytd'
        WHERE s.kode_kabkota = $kab AND s.period = $p AND s.period_type = 'month'
        ORDER BY s.nama_puskesmas, s.kode_jejaring""", params)
    kab = {r["period_type"]: r for r in _rows(con, """
        SELECT * FROM evaluation.wilayah_scorecard
        WHERE unit_level = 'kabkota' AND unit_code = $kab AND period = $p""", params)}
    nama_kab = con.execute("SELECT any_value(nama) FROM reference.wilayah WHERE kode = ?",
                           [kode_kabkota]).fetchone()[0] or kode_kabkota
    month = kab.get("month", {})
    cards = [
        {"label": "Kelengkapan", "value": _pct(month.get("completeness_pct")),
         "note": f"{month.get('received') or 0} dari {month.get('expected') or 0} laporan"},
        {"label": "Ketepatan waktu", "value": _pct(month.get("timeliness_pct")),
         "note": f"{month.get('on_time') or 0} laporan tepat waktu"},
        {"label": "Kelengkapan s.d. bulan ini", "value": _pct(kab.get("ytd", {}).get("completeness_pct")),
         "note": "Januari s.d. periode"},
        {"label": "Perlu tindak lanjut", "value": str(month.get("n_followup") or 0), "note": "faskes × formulir"},
        {"label": "Kontribusi jejaring", "value": _pct(month.get("network_share_pct")), "note": "volume layanan"},
    ]

    def cls(v: float | None, limit: float) -> str:
        return "" if v is None else ("baik" if v >= limit else "buruk")

    network_rows = [{
        "nama": n["nama_puskesmas"] or n["kode_jejaring"],
        "completeness": _pct(n["completeness_pct"]), "timeliness": _pct(n["timeliness_pct"]),
        "cls_c": cls(n["completeness_pct"], th.completeness_pct),
        "cls_t": cls(n["timeliness_pct"], th.timeliness_pct),
        "pkm": _pct(n["pkm_completeness_pct"]), "klinik": _pct(n["klinik_completeness_pct"]),
        "tpmd": _pct(n["tpmd_completeness_pct"]), "ytd": _pct(n["ytd_completeness"]),
        "n_vf": n["n_validation_flags"], "n_q": n["n_quarantined_rows"], "n_dq": n["n_dq_flags"],
    } for n in nets]

    # heatmap: Jan..period of the year, per network
    months = [add_months(f"{period[:4]}-01", i) for i in range(int(period[5:7]))]
    grid = {(r["kode_jejaring"], r["period"]): r["completeness_pct"] for r in _rows(con, """
        SELECT kode_jejaring, period, completeness_pct FROM evaluation.scorecard
        WHERE kode_kabkota = $kab AND period_type = 'month' AND period BETWEEN $ys AND $p""",
        {**params, "ys": months[0]})}
    codes = [n["kode_jejaring"] for n in nets]
    names = [n["nama_puskesmas"] or n["kode_jejaring"] for n in nets]

    followup: dict[str, dict[str, Any]] = {}
    for r in _rows(con, """
            SELECT * FROM evaluation.followup WHERE kode_kabkota = $kab AND as_of_period = $p
            ORDER BY nama_puskesmas_induk, consecutive_missing DESC, kode_faskes, form""", params):
        key = r["kode_puskesmas_induk"] or "-"
        followup.setdefault(key, {"nama": r["nama_puskesmas_induk"] or key, "rows": []})["rows"].append(r)

    ki = _rows(con, """
        SELECT k.indicator_code, k.program, k.display_order, k.unit_code, k.value, k.target,
               k.pws_target, coalesce(f.nama_faskes, k.unit_code) AS nama
        FROM evaluation.key_indicator k
        LEFT JOIN reference.facility f ON f.kode_faskes = k.unit_code
        WHERE k.unit_level = 'puskesmas_network' AND k.period = $p AND k.period_type = 'ytd'
          AND k.kode_kabkota = $kab
        ORDER BY k.display_order, nama""", params)
    programs: list[dict[str, Any]] = []
    for code in settings.config.evaluation.key_indicators:
        rows = [r for r in ki if r["indicator_code"] == code]
        prog = rows[0]["program"] if rows and rows[0]["program"] else code.split("_")[0]
        entry = next((p for p in programs if p["program"] == prog), None)
        if entry is None:
            entry = {"program": prog, "label": PROGRAM_LABELS.get(prog, prog),
                     "slug": prog.lower().replace(" ", "-"), "indicators": []}
            programs.append(entry)
        entry["indicators"].append((code, rows))
    for entry in programs:
        entry["chart"] = chart_program(entry["indicators"])

    contrib = _rows(con, """
        SELECT unit_code, jenis_faskes,
               100.0 * volume / nullif(sum(volume) OVER (PARTITION BY unit_code), 0) AS share
        FROM (SELECT unit_code, jenis_faskes, sum(volume) AS volume
              FROM indicators.network_contribution
              WHERE unit_level = 'puskesmas_network' AND period = $p AND period_type = 'ytd'
                AND unit_code IN (SELECT kode_faskes FROM reference.facility WHERE kode_kabkota = $kab)
              GROUP BY unit_code, jenis_faskes)""", params)
    shares: dict[str, dict[str, float]] = {}
    for r in contrib:
        shares.setdefault(r["unit_code"], {})[r["jenis_faskes"]] = r["share"] or 0.0
    c_codes = [c for c in codes if c in shares]
    dq_messages = _rows(con, """
        SELECT coalesce(f.nama_faskes, d.unit_code) AS nama, d.subject, d.method, d.message
        FROM indicators.dq_flag d
        LEFT JOIN reference.facility f ON f.kode_faskes = d.unit_code
        WHERE d.period = $p AND (f.kode_kabkota = $kab OR (d.unit_level = 'kabkota' AND d.unit_code = $kab))
        ORDER BY d.method, nama LIMIT 100""", params)

    return {
        "kode_kabkota": kode_kabkota, "nama_kabkota": nama_kab, "period_label": period_label(period),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threshold_c": f"{th.completeness_pct:g}", "threshold_t": f"{th.timeliness_pct:g}",
        "cards": cards, "networks": network_rows, "followup": list(followup.values()),
        "programs": programs, "dq_messages": dq_messages,
        "charts": {
            "kepatuhan": chart_compliance(nets, th.completeness_pct, th.timeliness_pct),
            "heatmap": chart_heatmap(codes, names, months, grid),
            "kontribusi": chart_contribution([names[codes.index(c)] for c in c_codes],
                                              [shares[c] for c in c_codes]),
        },
    }


def render_report(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str, scope: dict[str, str] | None = None) -> Path:
    """Render and write the report of one kab/kota × month (temp file + rename)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.get_template("report.html.j2").render(**build_context(con, settings, kode_kabkota, period, scope))
    path = report_path(settings, kode_kabkota, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_reports(con: duckdb.DuckDBPyConnection, settings: Settings,
                   periods: Sequence[str]) -> list[Path]:
    """Every kab/kota with a scorecard in each period."""
    out = []
    for p in periods:
        kabs = [r[0] for r in con.execute(
            "SELECT DISTINCT kode_kabkota FROM evaluation.scorecard WHERE period = ? "
            "AND kode_kabkota IS NOT NULL ORDER BY 1", [p]).fetchall()]
        if not kabs:
            continue
        scope = month_scope(con, p, REPORT_SCOPED)
        try:
            out += [render_report(con, settings, k, p, scope) for k in kabs]
        finally:
            drop_scope(con, scope)
    return out
