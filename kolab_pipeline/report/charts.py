"""The report's charts: Vega-Lite specifications rendered to SVG in-process by vl-convert.

Each function returns an `<svg>` element to put inline in the page (no script, no network: the
renderer is told to fetch nothing). Colours that say "meets / does not meet" come from
`judgement.meets` in Python, so the charts, tables and workbooks judge alike. Numbers on axes use
the Indonesian decimal comma; titles are wrapped, never cut; a legend lists only what is drawn.
"""

from __future__ import annotations

import html
import itertools
import re
import textwrap
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import vl_convert as vlc

from kolab_pipeline import labels
from kolab_pipeline.judgement import meets

FORMAT_LOCALE = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["Rp", ""],
                 "minus": "−", "percent": " %"}
# Text is measured with Helvetica/Arial metrics (vl-convert's own, fast), so the page draws it
# in an Arial-metric font (Arial, Liberation Sans); the attribute is dropped from each text element
# and set once by the page's CSS (`.grafik svg`).
FONT = 'Arial, "Liberation Sans", Helvetica, sans-serif'
CONFIG: dict[str, Any] = {
    "font": FONT,
    "aria": False,  # one label on the <svg> instead of one per mark (half the size)
    "background": "white",
    "view": {"stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 11, "labelLimit": 0,
             "titleFontWeight": "normal"},
    "legend": {"orient": "bottom", "labelFontSize": 11, "labelLimit": 0, "titleFontSize": 11,
               "direction": "horizontal", "columns": 4},
    "title": {"anchor": "start", "fontSize": 13, "subtitleFontSize": 11, "subtitleColor": "#555"},
    "header": {"labelFontSize": 11},
}
GREEN, RED, GREY, INK = "#1a9850", "#d73027", "#bdbdbd", "#222222"
# Below-threshold bands of the completeness heatmap and map (points under the threshold).
BANDS = ((10, "#fdae61"), (30, "#f46d43"), (None, "#a50026"))
MEETS_TARGET, BELOW_TARGET, NO_TARGET = "Memenuhi target", "Belum memenuhi target", "Tanpa target"
LINE_TARGET, LINE_PWS = "Target tahunan", "Target PWS s.d. bulan ini"
JENIS_COLOURS = {"puskesmas": "#2b6cb0", "klinik_pratama": "#ed8936", "tpmd": "#48bb78"}
_counter = itertools.count()
_FONT_ATTR = re.compile(r' font-family="[^"]*"')


def new_page() -> None:
    """Number the charts' element ids from 0 again: ids are unique within a page, and a page
    is the same whichever process, and after however many others, it is rendered in."""
    global _counter
    _counter = itertools.count()


def wrap(text: str, width: int = 48) -> list[str]:
    """`text` in lines of at most `width` characters (a title is wrapped, never cut)."""
    return textwrap.wrap(text, width) or [""]


def vega_svg(spec: dict[str, Any]) -> str:
    """The SVG vl-convert draws for a Vega-Lite spec, with the report's config and locale."""
    return vlc.vegalite_to_svg({"config": CONFIG, **spec}, format_locale=FORMAT_LOCALE,
                               allowed_base_urls=[])


def render(spec: dict[str, Any] | str, alt: str) -> str:
    """SVG markup of a Vega-Lite spec (or of the SVG vl-convert drew for one), labelled `alt`;
    element ids made unique in the page."""
    svg = _FONT_ATTR.sub("", spec if isinstance(spec, str) else vega_svg(spec))
    prefix = f"g{next(_counter)}-"
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = svg.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(alt)}" ', 1)


def empty(text: str = "Belum ada data") -> str:
    return f'<p class="kosong">{html.escape(text)}</p>'


# --- completeness against the threshold ----------------------------------------------------------

def completeness_bands(threshold: float) -> list[tuple[str, str]]:
    """(category, colour) from "meets" down, the bands anchored at `threshold`."""
    out = [(f"≥ {labels.number(threshold)} % (memenuhi ambang)", GREEN)]
    upper = threshold
    for gap, colour in BANDS:
        if gap is None:
            out.append((f"< {labels.number(upper)} %", colour))
        else:
            lower = max(threshold - gap, 0)
            out.append((f"{labels.number(lower)} s.d. < {labels.number(upper)} %", colour))
            upper = lower
    return out


def completeness_band(value: float | None, threshold: float) -> str | None:
    """The category of `value` among `completeness_bands(threshold)`; None without a value."""
    ok = meets(value, threshold)
    if ok is None:
        return None
    bands = completeness_bands(threshold)
    if ok:
        return bands[0][0]
    for (gap, _), (name, _) in zip(BANDS, bands[1:], strict=True):
        if gap is None or value >= threshold - gap:  # type: ignore[operator]
            return name
    return bands[-1][0]


def _scale(categories: Sequence[tuple[str, str]], present: set[str]) -> dict[str, Any]:
    """A colour scale of the categories that occur (a legend lists only what is drawn)."""
    kept = [(c, colour) for c, colour in categories if c in present]
    return {"domain": [c for c, _ in kept], "range": [colour for _, colour in kept]}


# The numbers in the heatmap's cells, as Vega draws a centred text mark of CELL_FONT px: a
# "middle" baseline sits 0.3 × the font size below the centre.
CELL_FONT = 10
CELL_LABELS_MAX = 600   # more cells than this: colours only
_RECT_GROUP = '<g class="mark-rect role-mark layer_0_marks"'
_RECT = re.compile(r'<path d="M(-?[\d.]+),(-?[\d.]+)h(-?[\d.]+)v(-?[\d.]+)h')


def _js_number(x: float) -> str:
    """`x` as JavaScript prints a number (21, 21.5)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def cell_number(value: float) -> str:
    """`value` as Vega's ".0f" format prints it: JavaScript's toFixed(0) (a tie rounds away from
    zero, on the float's exact value), the locale's minus, no sign on a rounded zero."""
    n = int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return f"{FORMAT_LOCALE['minus']}{-n}" if n < 0 else str(n)


def _with_cell_labels(svg: str, cells: Sequence[tuple[str, bool]]) -> str | None:
    """`svg` (the heatmap drawn without its text layer) with the cells' numbers added as the
    text layer Vega would draw: one centred label per rect, in the rects' (= the data's) order,
    white on dark cells. None when the rects are not as expected (then Vega draws them).

    Vega measures every text it draws (vl-convert shapes the glyphs: ~0.3 ms a label), and a
    number inside its cell does not move anything else, so the result is the same bytes
    without the cost (`tests/evaluation/test_report_charts.py` compares the two)."""
    start = svg.find(_RECT_GROUP)
    end = svg.find("</g>", start) + len("</g>") if start >= 0 else -1
    rects = _RECT.findall(svg, start, end) if start >= 0 else []
    if not rects or len(rects) != len(cells):
        return None
    font = html.escape(FONT, quote=True)
    texts = []
    for (x, y, w, h), (label, dark) in zip(rects, cells, strict=True):
        cx = float(x) + float(w) / 2
        cy = float(y) + float(h) / 2 + round(0.3 * CELL_FONT)
        texts.append(f'<text text-anchor="middle" transform="translate({_js_number(cx)},'
                     f'{_js_number(cy)})" font-family="{font}" font-size="{CELL_FONT}px" '
                     f'fill="{"white" if dark else INK}">{html.escape(label)}</text>')
    group = ('<g class="mark-text role-mark layer_1_marks" role="graphics-object" '
             'aria-roledescription="text mark container">' + "".join(texts) + "</g>")
    return svg[:end] + group + svg[end:]


def trend_heatmap(names: Sequence[str], months: Sequence[str],
                  grid: dict[tuple[int, str], float | None], threshold: float) -> str:
    """Completeness per network (rows, `names`) × month (columns) in the threshold bands, with
    the rounded value in each cell (up to CELL_LABELS_MAX cells)."""
    if not names:
        return empty()
    bands = completeness_bands(threshold)
    values = []
    for i, name in enumerate(names):
        for m in months:
            v = grid.get((i, m))
            cat = completeness_band(v, threshold)
            if cat is not None:
                values.append({"puskesmas": name, "bulan": labels.month_name(m)[:3] + " " + m[2:4],
                               "nilai": v, "kategori": cat,
                               "gelap": cat not in (bands[0][0], bands[1][0])})
    month_labels = [labels.month_name(m)[:3] + " " + m[2:4] for m in months]
    base_y = {"field": "puskesmas", "type": "nominal", "sort": list(names), "title": None}
    base_x = {"field": "bulan", "type": "ordinal", "sort": month_labels, "title": None,
              "axis": {"labelAngle": 0, "orient": "top"}, "scale": {"domain": month_labels}}
    layers: list[dict[str, Any]] = [{
        "mark": {"type": "rect", "stroke": "white", "strokeWidth": 1},
        "encoding": {"x": base_x, "y": base_y, "color": {
            "field": "kategori", "type": "nominal", "title": "Kelengkapan",
            "scale": _scale(bands, {r["kategori"] for r in values})}}}]
    spec = {"data": {"values": values}, "width": {"step": 42}, "height": {"step": 20},
            "layer": layers}
    alt = "Tren kelengkapan laporan per puskesmas per bulan"
    if len(values) > CELL_LABELS_MAX:
        return render(spec, alt)
    svg = _with_cell_labels(vega_svg(spec), [(cell_number(r["nilai"]), r["gelap"])
                                             for r in values]) if values else None
    if svg is None:  # Vega draws the numbers
        layers.append(cell_label_layer(base_x, base_y))
        svg = vega_svg(spec)
    return render(svg, alt)


def cell_label_layer(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    """The heatmap's numbers as a Vega-Lite text layer (what `_with_cell_labels` draws)."""
    return {"mark": {"type": "text", "fontSize": CELL_FONT},
            "encoding": {"x": x, "y": y,
                         "text": {"field": "nilai", "type": "quantitative", "format": ".0f"},
                         "color": {"condition": {"test": "datum.gelap", "value": "white"},
                                   "value": INK}}}


# --- indicators against their targets -------------------------------------------------------------

def _target_status(value: float | None, line: float | None, direction: str) -> str:
    ok = meets(value, line, direction)
    return NO_TARGET if ok is None else MEETS_TARGET if ok else BELOW_TARGET


def program_chart(title: str, panels: Sequence[dict[str, Any]], names: Sequence[str]) -> str:
    """One panel per key indicator of a program: the ytd value per network (bars coloured by
    meeting the PWS line, or the annual target when there is no PWS line), the annual target
    (dashed) and the PWS line (red), each drawn only where it exists.

    A panel: `code`, `values` {network name: value}, `target`, `pws`."""
    drawn = [p for p in panels if any(v is not None for v in p["values"].values())]
    if not drawn:
        return empty("Indikator belum dihitung")
    colours = ((MEETS_TARGET, GREEN), (BELOW_TARGET, RED), (NO_TARGET, "#4299e1"))
    lines = ((LINE_TARGET, "#444444", [6, 4]), (LINE_PWS, "#e53e3e", [1, 0]))
    statuses: set[str] = set()
    rules_present: set[str] = set()
    specs = []
    for k, panel in enumerate(drawn):
        code, target, pws = panel["code"], panel["target"], panel["pws"]
        direction = labels.indicator_direction(code)
        line = pws if pws is not None else target
        bars = []
        for name in names:
            v = panel["values"].get(name)
            status = _target_status(v, line, direction)
            statuses.add(status)
            bars.append({"puskesmas": name, "nilai": v, "status": status})
        rules = [{"garis": LINE_TARGET, "x": target}] if target is not None else []
        if pws is not None:
            rules.append({"garis": LINE_PWS, "x": pws})
        rules_present |= {r["garis"] for r in rules}
        top = max([v for v in panel["values"].values() if v is not None]
                  + [r["x"] for r in rules] + [1.0]) * 1.05
        unit = labels.indicator_unit(code)
        y = {"field": "puskesmas", "type": "nominal", "sort": list(names), "title": None,
             "scale": {"domain": list(names)}}
        if k:
            y["axis"] = {"labels": False, "ticks": False}
        layers: list[dict[str, Any]] = [{
            "data": {"values": bars}, "mark": {"type": "bar", "height": {"band": 0.75}},
            "encoding": {"y": y,
                         "x": {"field": "nilai", "type": "quantitative",
                               "title": f"Capaian s.d. bulan ini ({unit})" if unit else "Capaian",
                               "scale": {"domain": [0, top], "nice": False}},
                         "color": {"field": "status", "type": "nominal", "title": None}}}]
        if rules:
            layers.append({
                "data": {"values": rules}, "mark": {"type": "rule", "strokeWidth": 2},
                "encoding": {"x": {"field": "x", "type": "quantitative"},
                             "stroke": {"field": "garis", "type": "nominal", "title": None},
                             "strokeDash": {"field": "garis", "type": "nominal", "title": None}}})
        specs.append({"title": {"text": wrap(labels.indicator_name(code), 40)},
                      "width": 250, "height": {"step": 18}, "layer": layers})
    present_lines = [line for line in lines if line[0] in rules_present]
    resolve = {"scale": {"x": "independent", "color": "shared", "stroke": "shared",
                         "strokeDash": "shared"}}
    # the shared scales: only the categories that occur
    for s in specs:
        s["layer"][0]["encoding"]["color"]["scale"] = _scale(colours, statuses)
        if len(s["layer"]) > 1:
            enc = s["layer"][1]["encoding"]
            enc["stroke"]["scale"] = {"domain": [n for n, _, _ in present_lines],
                                      "range": [c for _, c, _ in present_lines]}
            enc["strokeDash"]["scale"] = {"domain": [n for n, _, _ in present_lines],
                                          "range": [d for _, _, d in present_lines]}
    spec = {"hconcat": specs, "resolve": resolve, "spacing": 24}
    return render(spec, title)


# --- contribution ---------------------------------------------------------------------------------

def contribution_chart(names: Sequence[str], shares: Sequence[dict[str, float]]) -> str:
    """Share of each facility type in each network's year-to-date service volume (stacked)."""
    if not names:
        return empty()
    values = [{"puskesmas": name, "jenis": labels.label("jenis_faskes", jenis), "urut":
               labels.order("jenis_faskes", jenis), "persen": share}
              for name, s in zip(names, shares, strict=True) for jenis, share in s.items() if share]
    present = sorted({(labels.order("jenis_faskes", j), j) for s in shares for j in s if s[j]})
    domain = [labels.label("jenis_faskes", j) for _, j in present]
    colours = [JENIS_COLOURS.get(j, "#a0aec0") for _, j in present]
    spec = {"data": {"values": values}, "width": 460, "height": {"step": 18},
            "mark": "bar",
            "encoding": {
                "y": {"field": "puskesmas", "type": "nominal", "sort": list(names), "title": None},
                "x": {"field": "persen", "type": "quantitative", "stack": "zero",
                      "title": "% volume layanan s.d. bulan ini (semua program)",
                      "scale": {"domain": [0, 100]}},
                "color": {"field": "jenis", "type": "nominal", "title": None,
                          "scale": {"domain": domain, "range": colours}},
                "order": {"field": "urut", "type": "quantitative"}}}
    return render(spec, "Kontribusi volume layanan per jenis faskes per jejaring")


# --- map ------------------------------------------------------------------------------------------

def area_map(features: Sequence[dict[str, Any]], panels: Sequence[dict[str, Any]]) -> str:
    """Choropleths side by side over the same polygons. A panel: `title`, `values`
    {kode: category}, `categories` [(category, colour)]."""
    specs = []
    for i, panel in enumerate(panels):
        feats = [{"type": "Feature", "geometry": f["geometry"],
                  "properties": {"nama": f["properties"]["nama"],
                                 "kategori": panel["values"].get(f["properties"]["kode"],
                                                                 "Tidak ada data")}}
                 for f in features]
        present = {f["properties"]["kategori"] for f in feats}
        cats = [*panel["categories"], ("Tidak ada data", "#eeeeee")]
        specs.append({
            "title": {"text": wrap(panel["title"], 44)}, "width": 330, "height": 300,
            "data": {"values": {"type": "FeatureCollection", "features": feats},
                     "format": {"type": "json", "property": "features"}},
            "projection": {"type": "mercator"},
            "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.8},
            "encoding": {"color": {"field": "properties.kategori", "type": "nominal",
                                   "title": None, "scale": _scale(cats, present),
                                   "legend": {"columns": 1, "orient": "bottom"}}},
            "name": f"peta{i}"})
    spec = {"hconcat": specs, "resolve": {"scale": {"color": "independent"},
                                          "legend": {"color": "independent"}}}
    return render(spec, "Peta kelengkapan dan capaian indikator per wilayah")
