"""The offline evaluation report `KOLAB_HOME/reports/<kode_kabkota>/<YYYY-MM>.html` for the Dinkes
evaluation meeting (rapat evaluasi), in Indonesian.

One self-contained HTML file: CSS inline, charts as base64 PNG `data:` URIs (matplotlib, Agg
backend, object-oriented `Figure` API so nothing accumulates in pyplot's global state), no
script and nothing fetched from a network — it opens on a laptop without internet. Text from the
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
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402  (after selecting the backend)

from kolab_pipeline.config import Settings, add_months  # noqa: E402

TEMPLATES = Path(__file__).parent / "templates_html"
BULAN = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
         "Oktober", "November", "Desember"]
PROGRAM_LABELS = {"KIA": "Kesehatan Ibu dan Anak (KIA)", "Imunisasi": "Imunisasi",
                  "PTM": "Penyakit Tidak Menular (PTM)", "TB": "Tuberkulosis (TB)"}
JENIS_LABELS = {"puskesmas": "Puskesmas", "klinik_pratama": "Klinik Pratama", "tpmd": "TPMD"}
DPI = 72


def period_label(period: str) -> str:
    return f"{BULAN[int(period[5:7]) - 1]} {period[:4]}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} %".replace(".", ",")


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _empty(text: str = "Belum ada data") -> str:
    fig = Figure(figsize=(6, 1.2))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#666")
    return _png(fig)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] | dict) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


# --- charts ---------------------------------------------------------------------------------------

def chart_compliance(nets: list[dict], tc: float, tt: float) -> str:
    if not nets:
        return _empty()
    names = [n["nama_puskesmas"] or n["kode_jejaring"] for n in nets]
    y = range(len(nets))
    fig = Figure(figsize=(8, 0.32 * len(nets) + 1.2))
    ax = fig.add_subplot()
    ax.barh([i + 0.2 for i in y], [n["completeness_pct"] or 0 for n in nets], height=0.4,
            color="#2b6cb0", label="Kelengkapan")
    ax.barh([i - 0.2 for i in y], [n["timeliness_pct"] or 0 for n in nets], height=0.4,
            color="#68d391", label="Ketepatan waktu")
    ax.axvline(tc, color="#2b6cb0", ls="--", lw=1)
    ax.axvline(tt, color="#2f855a", ls=":", lw=1)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("% laporan")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def chart_heatmap(codes: list[str], names: list[str], months: list[str],
                  grid: dict[tuple[str, str], float | None]) -> str:
    if not codes:
        return _empty()
    import numpy as np

    data = np.array([[np.nan if grid.get((c, m)) is None else grid[(c, m)] for m in months]
                     for c in codes], dtype=float)
    fig = Figure(figsize=(1.0 + 0.6 * len(months) + 2.5, 0.3 * len(codes) + 1.3))
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(months)), [BULAN[int(m[5:7]) - 1][:3] for m in months], fontsize=8)
    ax.set_yticks(range(len(codes)), names, fontsize=8)
    if len(codes) * len(months) <= 120:  # cell labels cost ~1 ms each to render
        for i in range(len(codes)):
            for j in range(len(months)):
                if not np.isnan(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:.0f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="Kelengkapan (%)")
    return _png(fig)


def chart_program(indicators: list[tuple[str, list[dict]]]) -> str:
    """One panel per key indicator of a program: ytd value per puskesmas, annual target (dashed)
    and the PWS line (target × m/12, red)."""
    indicators = [(code, rows) for code, rows in indicators if any(r["value"] is not None for r in rows)]
    if not indicators:
        return _empty("Indikator belum dihitung")
    n_units = max(len(rows) for _, rows in indicators)
    fig = Figure(figsize=(4.2 * len(indicators), 0.3 * n_units + 1.4))
    axes = fig.subplots(1, len(indicators), squeeze=False)[0]
    for ax, (code, rows) in zip(axes, indicators, strict=True):
        names = [r["nama"] for r in rows]
        vals = [r["value"] or 0 for r in rows]
        ax.barh(range(len(rows)), vals, color="#4299e1", label="Capaian")
        targets = [r["target"] for r in rows if r["target"] is not None]
        pws = [r["pws_target"] for r in rows if r["pws_target"] is not None]
        if targets:
            ax.axvline(max(targets), color="#444", ls="--", lw=1, label="Target tahunan")
        if pws:
            ax.axvline(max(pws), color="#e53e3e", lw=1.5, label="Target PWS")
        ax.set_yticks(range(len(rows)), names if ax is axes[0] else [""] * len(rows), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(code, fontsize=9)
        ax.set_xlabel("Capaian (%)", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
    axes[0].legend(loc="lower right", fontsize=7)
    return _png(fig)


def chart_contribution(names: list[str], shares: list[dict[str, float]]) -> str:
    if not names:
        return _empty()
    fig = Figure(figsize=(8, 0.3 * len(names) + 1.3))
    ax = fig.add_subplot()
    left = [0.0] * len(names)
    colours = {"puskesmas": "#2b6cb0", "klinik_pratama": "#ed8936", "tpmd": "#48bb78"}
    jenis_all = sorted({j for s in shares for j in s}, key=lambda j: (j not in colours, j))
    for jenis in jenis_all:
        vals = [s.get(jenis, 0.0) for s in shares]
        ax.barh(range(len(names)), vals, left=left, color=colours.get(jenis, "#a0aec0"),
                label=JENIS_LABELS.get(jenis, jenis))
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% volume layanan (s.d. bulan ini, semua program)")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


# --- the report -----------------------------------------------------------------------------------

def report_path(settings: Settings, kode_kabkota: str, period: str) -> Path:
    return settings.paths.reports / kode_kabkota / f"{period}.html"


def build_context(con: duckdb.DuckDBPyConnection, settings: Settings, kode_kabkota: str,
                  period: str) -> dict[str, Any]:
    th = settings.config.thresholds
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
                  period: str) -> Path:
    """Render and write the report of one kab/kota × month (temp file + rename)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.get_template("report.html.j2").render(**build_context(con, settings, kode_kabkota, period))
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
        out += [render_report(con, settings, k, p) for k in kabs]
    return out
