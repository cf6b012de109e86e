"""What the report template shows, built from one kab/kota's `ReportData` (no database).

Sections in the order the evaluation meeting works: summary cards, the kab/kota's key
indicators, the ranking of puskesmas networks, the trend per puskesmas, who to call now
(not reported this month, chronic non-reporters, late-only counts), achievement per program,
network contribution, the map, data quality. Every "meets threshold / target" decision goes
through `judgement.meets`; every code shown is turned into words by `labels`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kolab_pipeline import labels
from kolab_pipeline.calendar import add_months
from kolab_pipeline.judgement import meets
from kolab_pipeline.report import charts
from kolab_pipeline.report.data import ReportData

# DQ findings listed in the report (the workbook has them all).
DQ_LIST_LIMIT = 60
DQ_LEVELS = ("facility", "puskesmas_network", "kecamatan", "kabkota")


@dataclass(frozen=True)
class Job:
    """One report to render: what it needs besides its `ReportData` (no Settings, no DB)."""

    kode_kabkota: str
    period: str
    path: Path
    completeness_pct: float
    timeliness_pct: float
    key_indicators: tuple[str, ...]
    generated_at: datetime
    timezone: str
    workbook: str                      # the workbook's path relative to the report
    boundary_file: str                 # where the map's boundaries are looked for
    features: tuple[dict[str, Any], ...] | None = None   # this kab/kota's polygons, if any


def cls(ok: bool | None) -> str:
    """CSS class of a judged value: `baik` (meets), `buruk` (does not), "" (not judged)."""
    return "" if ok is None else "baik" if ok else "buruk"


def _delta(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def _value(code: str, v: float | None) -> str:
    """An indicator value with its unit ("65,3 %", "12", "98,1 per 100.000")."""
    unit = labels.indicator_unit(code)
    if unit == "%":
        return labels.percent(v)
    text = labels.auto_number(v)
    return f"{text} {unit}" if unit and v is not None else text


def _line(row: dict[str, Any]) -> float | None:
    """The line an indicator is judged against: the PWS line when it has one, else the target."""
    return row["pws_target"] if row.get("pws_target") is not None else row.get("target")


def _judge(row: dict[str, Any] | None) -> bool | None:
    if row is None:
        return None
    return meets(row["value"], _line(row), labels.indicator_direction(row["indicator_code"]))


def _index_indicators(data: ReportData) -> dict[tuple, dict[str, Any]]:
    """(unit_level, unit_code, period, period_type, code) → key-indicator row."""
    return {(r["unit_level"], r["unit_code"], r["period"], r["period_type"], r["indicator_code"]): r
            for r in data.key_indicators}


def summary_cards(job: Job, data: ReportData, n_call: int, met: tuple[int, int]) -> list[dict]:
    month, ytd, prev = (data.kabkota.get(k, {}) for k in ("month", "ytd", "prev"))
    prev_name = labels.month_name(add_months(job.period, -1))
    c, t = month.get("completeness_pct"), month.get("timeliness_pct")
    return [
        {"label": "Kelengkapan laporan", "value": labels.percent(c),
         "cls": cls(meets(c, job.completeness_pct)),
         "note": f"{labels.number(month.get('received'))} dari "
                 f"{labels.number(month.get('expected'))}"
                 f" laporan; {labels.signed(_delta(c, prev.get('completeness_pct')))} "
                 f"dari {prev_name}"},
        {"label": "Ketepatan waktu", "value": labels.percent(t),
         "cls": cls(meets(t, job.timeliness_pct)),
         "note": f"{labels.number(month.get('on_time'))} laporan tepat waktu; "
                 f"{labels.signed(_delta(t, prev.get('timeliness_pct')))} dari {prev_name}"},
        {"label": "Kelengkapan s.d. bulan ini",
         "value": labels.percent(ytd.get("completeness_pct")),
         "cls": cls(meets(ytd.get("completeness_pct"), job.completeness_pct)),
         "note": f"Januari–{labels.month_name(job.period)} {job.period[:4]}"},
        {"label": "Indikator kunci memenuhi target", "value": f"{met[0]} dari {met[1]}",
         "cls": cls(meets(met[0], met[1]) if met[1] else None),
         "note": "capaian s.d. bulan ini dibanding target PWS"},
        {"label": "Belum lapor bulan ini", "value": labels.number(n_call), "cls": "",
         "note": "faskes yang perlu dihubungi sekarang"},
        {"label": "Kontribusi jejaring", "value": labels.percent(month.get("network_share_pct")),
         "cls": "", "note": "volume layanan klinik dan TPMD"},
    ]


def kabkota_indicators(job: Job, data: ReportData) -> list[dict[str, Any]]:
    """The kab/kota's key indicators: value, target, PWS line, attainment, change."""
    idx, prev, out = _index_indicators(data), add_months(job.period, -1), []
    for code in job.key_indicators:
        ytd = idx.get(("kabkota", job.kode_kabkota, job.period, "ytd", code))
        month = idx.get(("kabkota", job.kode_kabkota, job.period, "month", code))
        before = idx.get(("kabkota", job.kode_kabkota, prev, "ytd", code))
        ok = _judge(ytd)
        out.append({
            "nama": labels.indicator_name(code), "kode": code,
            "program": labels.label("program", (ytd or month or {}).get("program")),
            "bulan_ini": _value(code, (month or {}).get("value")),
            "kumulatif": _value(code, (ytd or {}).get("value")),
            "target": _value(code, (ytd or {}).get("target")),
            "pws": _value(code, (ytd or {}).get("pws_target")),
            "pencapaian": labels.percent((ytd or {}).get("attainment")),
            "perubahan": labels.signed(_delta((ytd or {}).get("attainment"),
                                              (before or {}).get("attainment"))),
            "status": "" if ok is None else "Memenuhi" if ok else "Belum memenuhi", "cls": cls(ok)})
    return out


def ranking(job: Job, data: ReportData) -> list[dict[str, Any]]:
    """Networks ranked by completeness, then timeliness, then key indicators met."""
    idx, rows = _index_indicators(data), []
    for n in data.nets:
        judged = [_judge(idx.get(("puskesmas_network", n["kode_jejaring"], job.period, "ytd", c)))
                  for c in job.key_indicators]
        met, total = sum(1 for j in judged if j), sum(1 for j in judged if j is not None)
        c, t = n["completeness_pct"], n["timeliness_pct"]
        rows.append({
            "nama": n["nama_puskesmas"] or n["kode_jejaring"], "kode": n["kode_jejaring"],
            "c": c, "t": t, "met": met,
            "kelengkapan": labels.percent(c), "cls_c": cls(meets(c, job.completeness_pct)),
            "bar_c": max(0.0, min(c or 0.0, 100.0)),
            "ketepatan": labels.percent(t), "cls_t": cls(meets(t, job.timeliness_pct)),
            "bar_t": max(0.0, min(t or 0.0, 100.0)),
            "ytd": labels.percent(n["ytd_completeness"]),
            "cls_ytd": cls(meets(n["ytd_completeness"], job.completeness_pct)),
            "indikator": f"{met} dari {total}" if total else "–",
            "cls_i": cls(meets(met, total) if total else None),
            "perubahan": labels.signed(_delta(c, n["prev_completeness"])),
            "pkm": labels.percent(n["pkm_completeness_pct"]),
            "klinik": labels.percent(n["klinik_completeness_pct"]),
            "tpmd": labels.percent(n["tpmd_completeness_pct"])})
    rows.sort(key=lambda r: (r["c"] is None, -(r["c"] or 0), -(r["t"] or 0), -r["met"], r["nama"]))
    for i, r in enumerate(rows, start=1):
        r["peringkat"] = i
    return rows


def _facility_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Follow-up rows merged per facility (its forms listed together), grouped per puskesmas."""
    merged: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = merged.setdefault(r["kode_faskes"], {
            "puskesmas": r["nama_puskesmas_induk"] or r["kode_puskesmas_induk"] or "–",
            "nama": r["nama_faskes"] or r["kode_faskes"], "kode": r["kode_faskes"],
            "jenis": labels.label("jenis_faskes", r["jenis_faskes"]), "telepon": r["telepon"] or "",
            "forms": [], "berturut": 0, "bulan_tidak_lapor": 0, "terakhir": None})
        m["forms"].append(r["form"])
        m["berturut"] = max(m["berturut"], r["consecutive_missing"] or 0)
        m["bulan_tidak_lapor"] = max(m["bulan_tidak_lapor"], r["months_missing"] or 0)
        last = r["last_received_period"]
        if last and (m["terakhir"] is None or last > m["terakhir"]):
            m["terakhir"] = last
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in merged.values():
        m["formulir"] = ", ".join(labels.label("form", f)
                                  for f in sorted(m.pop("forms"),
                                                  key=lambda f: labels.order("form", f)))
        last = m.pop("terakhir")
        m["terakhir"] = labels.period_label(last) if last else "belum pernah"
        groups[m["puskesmas"]].append(m)
    return [{"puskesmas": k, "rows": v} for k, v in sorted(groups.items())]


def calls(data: ReportData) -> dict[str, Any]:
    """Who to call now, chronic non-reporters, and late-only reports as counts."""
    now, chronic, late = [], [], defaultdict(lambda: [0, 0])
    for r in data.followup:
        missing_now = r["latest_status"] == "missing" or bool(r["pending_overdue"])
        if missing_now and (r["consecutive_missing"] or 0) >= 2:
            chronic.append(r)
        elif missing_now:
            now.append(r)
        else:
            counts = late[r["nama_puskesmas_induk"] or r["kode_puskesmas_induk"] or "–"]
            counts[0] += r["latest_status"] == "late"
            counts[1] += (r["months_late"] or 0) > 0
    belum, kronis = _facility_rows(now), _facility_rows(chronic)
    return {
        "belum": belum, "kronis": kronis,
        "n_belum": sum(len(g["rows"]) for g in belum),
        "n_kronis": sum(len(g["rows"]) for g in kronis),
        "telepon": any(r["telepon"] for r in data.followup),
        "terlambat": [{"puskesmas": k, "bulan_ini": v[0], "tahun_ini": v[1]}
                      for k, v in sorted(late.items())],
        "n_terlambat": sum(v[0] for v in late.values())}


def program_charts(job: Job, data: ReportData, names: Sequence[str]) -> list[dict[str, Any]]:
    """One chart per program of the key indicators: the networks' ytd values vs the lines."""
    programs: dict[str, list[dict[str, Any]]] = {}
    for code in job.key_indicators:
        rows = [r for r in data.key_indicators if r["indicator_code"] == code
                and r["unit_level"] == "puskesmas_network" and r["period"] == job.period
                and r["period_type"] == "ytd"]
        program = next((r["program"] for r in rows if r["program"]), code.split("_")[0])
        programs.setdefault(program, []).append({
            "code": code, "values": {r["nama"]: r["value"] for r in rows},
            "target": next((r["target"] for r in rows if r["target"] is not None), None),
            "pws": next((r["pws_target"] for r in rows if r["pws_target"] is not None), None)})
    out = []
    for program, panels in programs.items():
        title = labels.label("program", program)
        out.append({"label": title, "slug": program.lower().replace(" ", "-"),
                    "chart": charts.program_chart(f"{title}: capaian s.d. "
                                                  f"{labels.period_label(job.period)}",
                                                  panels, names)})
    return out


def area_map(job: Job, data: ReportData) -> dict[str, Any]:
    """The map section: two choropleths when boundaries exist, else how to add them."""
    if not job.features:
        return {"svg": None, "file": job.boundary_file, "none_for_kab": job.features is not None}
    completeness = {}
    for kode, (expected, received) in data.area_completeness.items():
        value = 100.0 * received / expected if expected else None
        band = charts.completeness_band(value, job.completeness_pct)
        if band is not None:
            completeness[kode] = band
    by_code: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in data.area_indicators:
        by_code[r["indicator_code"]][r["kode"]] = r
    code = next((c for c in job.key_indicators if any(r["value"] is not None
                                                       for r in by_code.get(c, {}).values())), None)
    indicator: dict[str, str] = {}
    for f in job.features:
        kode = f["properties"]["kode"]
        row = (by_code.get(code) or {}).get(kode[:8]) if code else None
        if row is not None:
            ok = meets(row["value"], _line(row), labels.indicator_direction(code))
            if ok is not None:
                indicator[kode] = charts.MEETS_TARGET if ok else charts.BELOW_TARGET
    panels = [{"title": f"Kelengkapan laporan {labels.period_label(job.period)}",
               "values": completeness,
               "categories": charts.completeness_bands(job.completeness_pct)}]
    if code is not None:
        panels.append({"title": f"{labels.indicator_name(code)} s.d. bulan ini (per kecamatan)",
                       "values": indicator, "categories": [(charts.MEETS_TARGET, charts.GREEN),
                                                           (charts.BELOW_TARGET, charts.RED)]})
    return {"svg": charts.area_map(job.features, panels), "file": job.boundary_file,
            "none_for_kab": False}


def _unit_name(level: str, name: str) -> str:
    """A flagged unit as read: a facility or kab/kota by its name, others with their level."""
    if level in ("facility", "kabkota"):
        return name
    prefix = "Jejaring" if level == "puskesmas_network" else labels.label("unit_level", level)
    return f"{prefix} {name}"


def dq_section(data: ReportData, nets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Findings by severity: counts of every method × level, then a list that gives every
    group (method × level) its turn, most deviant first, up to DQ_LIST_LIMIT rows."""
    counts: dict[tuple[str, str], int] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in data.dq:
        counts[(r["method"], r["unit_level"])] = r["n_group"]
        groups[(r["method"], r["unit_level"])].append(r)
    methods = labels.codes("dq_method") + sorted({m for m, _ in counts}
                                                 - set(labels.codes("dq_method")))
    matrix = []
    for severity in labels.codes("dq_severity"):
        for m in (m for m in methods if (labels.group("dq_method", m) or "rendah") == severity):
            row = [counts.get((m, lvl), 0) for lvl in DQ_LEVELS]
            matrix.append({"tingkat": labels.label("dq_severity", severity),
                           "metode": labels.label("dq_method", m), "kode": m,
                           "per_level": row, "total": sum(row)})
    total = sum(counts.values())

    def rank(key: tuple[str, str]) -> tuple:
        method, level = key
        return (labels.order("dq_severity", labels.group("dq_method", method) or "rendah"),
                labels.order("dq_method", method), labels.order("unit_level", level))

    queues = [list(groups[k]) for k in sorted(groups, key=rank)]
    chosen: list[dict[str, Any]] = []
    while len(chosen) < DQ_LIST_LIMIT and any(queues):
        for q in queues:
            if q and len(chosen) < DQ_LIST_LIMIT:
                chosen.append(q.pop(0))
    order = {id(r): i for i, r in enumerate(data.dq)}
    chosen.sort(key=lambda r: (rank((r["method"], r["unit_level"])), order[id(r)]))
    findings = [{
        "tingkat": labels.label("dq_severity", labels.group("dq_method", r["method"]) or "rendah"),
        "metode": labels.label("dq_method", r["method"]),
        "unit": _unit_name(r["unit_level"], r["nama"]),
        "subjek": labels.subject_name(r["subject"]),
        "keterangan": labels.dq_explanation(r["method"], r["subject"], r["value"], r["score"],
                                            r["threshold"], r["reference"])} for r in chosen]
    return {"levels": [labels.label("unit_level", lvl) for lvl in DQ_LEVELS], "matrix": matrix,
            "total": total, "findings": findings, "hidden": total - len(findings),
            "per_network": [{"nama": n["nama_puskesmas"] or n["kode_jejaring"],
                             "vf": labels.number(n["n_validation_flags"]),
                             "q": labels.number(n["n_quarantined_file_rows"]),
                             "dq": labels.number(n["n_dq_flags"])} for n in nets]}


def build(job: Job, data: ReportData) -> dict[str, Any]:
    """Everything the template shows."""
    period = job.period
    names = [n["nama_puskesmas"] or n["kode_jejaring"] for n in data.nets]
    months = [add_months(period, -k) for k in range(11, -1, -1)]
    grid = {(i, m): data.trend.get((n["kode_jejaring"], m)) for i, n in enumerate(data.nets)
            for m in months}
    months = [m for m in months if any(grid.get((i, m)) is not None for i in range(len(names)))]
    call = calls(data)
    indicators = kabkota_indicators(job, data)
    judged = [r for r in indicators if r["cls"]]
    shares: dict[str, dict[str, float]] = defaultdict(dict)
    for r in data.contribution:
        shares[r["unit_code"]][r["jenis_faskes"]] = r["share"] or 0.0
    with_share = [(nm, shares[n["kode_jejaring"]]) for nm, n in zip(names, data.nets, strict=True)
                  if n["kode_jejaring"] in shares]
    return {
        "kode_kabkota": job.kode_kabkota, "nama_kabkota": data.nama_kabkota,
        "period_label": labels.period_label(period), "month_name": labels.month_name(period),
        "year": period[:4], "generated_at": labels.local_time(job.generated_at, job.timezone),
        "threshold_c": labels.number(job.completeness_pct),
        "threshold_t": labels.number(job.timeliness_pct),
        "cards": summary_cards(job, data, call["n_belum"] + call["n_kronis"],
                               (sum(1 for r in judged if r["cls"] == "baik"), len(judged))),
        "indicators": indicators, "ranking": ranking(job, data), "calls": call,
        "trend": charts.trend_heatmap(names, months, grid, job.completeness_pct),
        "programs": program_charts(job, data, names),
        "contribution": charts.contribution_chart([n for n, _ in with_share],
                                                  [s for _, s in with_share]),
        "map": area_map(job, data), "dq": dq_section(data, data.nets), "workbook": job.workbook,
    }
