"""What one evaluation report shows, read from the warehouse for every kab/kota of a month at once.

`extract` runs one query per table for all kab/kota of the month (`$kabs`) and groups the rows
per kab/kota; the result (`ReportData`) is plain Python values, so the rendering needs no
database. Reads only evaluation, indicator and compliance tables plus names (and the optional
`telepon`) from `reference.facility` / `reference.wilayah`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from kolab_pipeline.calendar import add_months
from kolab_pipeline.warehouse import bind

# DQ findings fetched per kab/kota × method × unit level (the most deviant first); the report
# lists a selection of them, the workbook all.
DQ_PER_GROUP = 20

# Puskesmas networks of the month with their ytd completeness and last month's rates.
NETWORKS_SQL = """
    SELECT s.*, y.completeness_pct AS ytd_completeness, prev.completeness_pct AS prev_completeness,
           prev.timeliness_pct AS prev_timeliness
    FROM evaluation.scorecard s
    LEFT JOIN evaluation.scorecard y ON y.kode_jejaring = s.kode_jejaring AND y.period = s.period
         AND y.period_type = 'ytd'
    LEFT JOIN evaluation.scorecard prev ON prev.kode_jejaring = s.kode_jejaring
         AND prev.period = $prev AND prev.period_type = 'month'
    WHERE s.period = $p AND s.period_type = 'month' AND list_contains($kabs, s.kode_kabkota)
    ORDER BY s.kode_kabkota, s.nama_puskesmas, s.kode_jejaring"""

# The kab/kota's own scorecard rows: this month, year to date, last month.
KABKOTA_SQL = """
    SELECT unit_code, CASE WHEN period = $p THEN period_type ELSE 'prev' END AS which, *
    FROM evaluation.wilayah_scorecard
    WHERE unit_level = 'kabkota' AND list_contains($kabs, unit_code)
      AND ((period = $p) OR (period = $prev AND period_type = 'month'))
    ORDER BY unit_code, which"""

NAMES_SQL = """
    SELECT kode, any_value(nama) AS nama FROM reference.wilayah
    WHERE list_contains($kabs, kode) GROUP BY kode"""

# Completeness per network and month over the 12 months ending at the report month.
TREND_SQL = """
    SELECT kode_kabkota, kode_jejaring, period, completeness_pct FROM evaluation.scorecard
    WHERE period_type = 'month' AND period BETWEEN $first AND $p
      AND list_contains($kabs, kode_kabkota)
    ORDER BY kode_kabkota, kode_jejaring, period"""

# Facility × form rows to chase, with the facility's phone number when the registry has one.
FOLLOWUP_SQL = """
    SELECT o.kode_kabkota, o.kode_puskesmas_induk, o.nama_puskesmas_induk, o.kode_faskes,
           o.nama_faskes, o.jenis_faskes, o.form, o.months_missing, o.months_late,
           o.consecutive_missing, o.missing_periods, o.last_received_period, o.latest_status,
           o.pending_overdue, f.telepon
    FROM evaluation.followup o
    LEFT JOIN reference.facility f ON f.kode_faskes = o.kode_faskes
    WHERE o.as_of_period = $p AND list_contains($kabs, o.kode_kabkota)
    ORDER BY o.kode_kabkota, o.nama_puskesmas_induk, o.kode_puskesmas_induk,
             o.consecutive_missing DESC, o.nama_faskes, o.kode_faskes, o.form"""

# Key indicators of the networks and of the kab/kota, this month and last (ytd and month).
KEY_INDICATORS_SQL = """
    SELECT k.kode_kabkota AS _kab, k.unit_level, k.unit_code, k.period, k.period_type,
           k.indicator_code, k.program, k.display_order, k.value, k.target, k.pws_target,
           k.attainment, coalesce(f.nama_faskes, k.unit_code) AS nama
    FROM evaluation.key_indicator k
    LEFT JOIN reference.facility f
         ON k.unit_level = 'puskesmas_network' AND f.kode_faskes = k.unit_code
    WHERE k.unit_level IN ('puskesmas_network', 'kabkota') AND list_contains([$p, $prev], k.period)
      AND list_contains($kabs, k.kode_kabkota)
    ORDER BY k.kode_kabkota, k.display_order, nama, k.unit_code, k.period, k.period_type,
             k.indicator_code, k.unit_level"""

# Share of each facility type in a network's year-to-date service volume; a network belongs to
# the kab/kota of its puskesmas.
CONTRIBUTION_SQL = """
    SELECT kab AS _kab, unit_code, jenis_faskes,
           100.0 * volume / nullif(sum(volume) OVER (PARTITION BY kab, unit_code), 0) AS share
    FROM (SELECT f.kode_kabkota AS kab, n.unit_code, n.jenis_faskes, sum(n.volume) AS volume
          FROM indicators.network_contribution n
          JOIN (SELECT DISTINCT kode_faskes, kode_kabkota FROM reference.facility
                WHERE list_contains($kabs, kode_kabkota)) f ON f.kode_faskes = n.unit_code
          WHERE n.unit_level = 'puskesmas_network' AND n.period = $p AND n.period_type = 'ytd'
          GROUP BY ALL)
    ORDER BY kab, unit_code, jenis_faskes"""

# DQ findings of the month attributed to a kab/kota: a facility's or a network's by the registry,
# a kecamatan's and a kab/kota's by its code. `n_group` counts every finding of the kab/kota ×
# method × unit level; only the DQ_PER_GROUP most deviant of each are returned.
DQ_SQL = """
    WITH attributed AS (
        SELECT CASE WHEN d.unit_level IN ('facility', 'puskesmas_network') THEN f.kode_kabkota
                    WHEN d.unit_level IN ('kecamatan', 'kabkota', 'desa')
                    THEN substr(d.unit_code, 1, 5) END AS kab,
               d.unit_level, d.unit_code, d.subject, d.method, d.value, d.score, d.threshold,
               d.reference, coalesce(f.nama_faskes, w.nama, d.unit_code) AS nama,
               CASE WHEN d.method IN ('related_indicators', 'consistency_over_time')
                    THEN abs(d.score - 1) ELSE abs(d.score) END AS deviation
        FROM indicators.dq_flag d
        LEFT JOIN reference.facility f ON f.kode_faskes = d.unit_code
             AND d.unit_level IN ('facility', 'puskesmas_network')
        LEFT JOIN (SELECT kode, any_value(nama) AS nama FROM reference.wilayah GROUP BY kode) w
             ON w.kode = d.unit_code AND d.unit_level NOT IN ('facility', 'puskesmas_network')
        WHERE d.period = $p AND d.unit_level <> 'provinsi')
    SELECT kab AS _kab, unit_level, unit_code, nama, subject, method, value, score, threshold,
           reference, count(*) OVER (PARTITION BY kab, method, unit_level) AS n_group
    FROM attributed
    WHERE list_contains($kabs, kab)
    QUALIFY row_number() OVER (PARTITION BY kab, method, unit_level
                               ORDER BY deviation DESC NULLS LAST, nama, subject, unit_code)
            <= $per_group
    ORDER BY kab, method, unit_level, deviation DESC NULLS LAST, nama, subject, unit_code"""

# Map: completeness of the month per kecamatan, and per desa from the facilities registered
# in a desa (kode_wilayah of desa length).
AREA_COMPLETENESS_SQL = """
    SELECT substr(unit_code, 1, 5) AS _kab, unit_code AS kode, expected, received
    FROM compliance.reporting_rate
    WHERE unit_level = 'kecamatan' AND period = $p AND period_type = 'month'
      AND jenis_faskes = 'semua' AND form = 'semua'
      AND list_contains($kabs, substr(unit_code, 1, 5))
    UNION ALL
    SELECT r.kode_kabkota, f.kode_wilayah, count(*) FILTER (WHERE r.expected),
           count(*) FILTER (WHERE r.expected AND r.status IN ('on_time', 'late'))
    FROM compliance.report_status r JOIN reference.facility f USING (kode_faskes)
    WHERE r.period = $p AND length(f.kode_wilayah) > 8 AND list_contains($kabs, r.kode_kabkota)
    GROUP BY ALL
    ORDER BY 1, 2"""

AREA_INDICATOR_SQL = """
    SELECT kode_kabkota AS _kab, unit_code AS kode, indicator_code, value, target, pws_target
    FROM evaluation.key_indicator
    WHERE unit_level = 'kecamatan' AND period = $p AND period_type = 'ytd'
      AND list_contains($kabs, kode_kabkota)
    ORDER BY kode_kabkota, unit_code, indicator_code"""


@dataclass
class ReportData:
    """The rows one kab/kota × month report shows (plain Python values, picklable)."""

    nama_kabkota: str
    nets: list[dict[str, Any]]                     # month scorecard per network (+ ytd, last month)
    kabkota: dict[str, dict[str, Any]]             # kab/kota scorecard: month, ytd, prev
    trend: dict[tuple[str, str], float | None]     # (kode_jejaring, month) → completeness
    followup: list[dict[str, Any]]
    key_indicators: list[dict[str, Any]]           # networks and the kab/kota, this and last month
    contribution: list[dict[str, Any]]             # unit_code, jenis_faskes, share
    dq: list[dict[str, Any]]                       # selected findings with their group counts
    area_completeness: dict[str, tuple[int, int]] = field(default_factory=dict)
    area_indicators: list[dict[str, Any]] = field(default_factory=list)


def query_rows(con: duckdb.DuckDBPyConnection, sql: str,
               params: dict[str, object]) -> list[dict[str, Any]]:
    """Rows of `sql` as dicts; `params` may hold more names than the statement uses."""
    cur = con.execute(sql, bind(sql, params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _by_kab(rows: list[dict[str, Any]], col: str) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by `col` in query order (`col` dropped when private, i.e. `_`-prefixed)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = r.pop(col) if col.startswith("_") else r[col]
        out.setdefault(key, []).append(r)
    return out


def extract(con: duckdb.DuckDBPyConnection, period: str,
            kabs: Sequence[str]) -> dict[str, ReportData]:
    """The data of the reports of `kabs` for `period`, one query per table."""
    params: dict[str, object] = {"kabs": list(kabs), "p": period, "prev": add_months(period, -1),
                                 "first": add_months(period, -11), "per_group": DQ_PER_GROUP}

    def grouped(sql: str, col: str) -> dict[str, list[dict[str, Any]]]:
        return _by_kab(query_rows(con, sql, params), col)

    nets = grouped(NETWORKS_SQL, "kode_kabkota")
    kabkota = grouped(KABKOTA_SQL, "unit_code")
    names = {r["kode"]: r["nama"] for r in query_rows(con, NAMES_SQL, params)}
    trend = grouped(TREND_SQL, "kode_kabkota")
    followup = grouped(FOLLOWUP_SQL, "kode_kabkota")
    ki = grouped(KEY_INDICATORS_SQL, "_kab")
    contrib = grouped(CONTRIBUTION_SQL, "_kab")
    dq = grouped(DQ_SQL, "_kab")
    area_c = grouped(AREA_COMPLETENESS_SQL, "_kab")
    area_i = grouped(AREA_INDICATOR_SQL, "_kab")
    return {k: ReportData(
        nama_kabkota=names.get(k) or k, nets=nets.get(k, []),
        kabkota={r["which"]: r for r in kabkota.get(k, [])},
        trend={(r["kode_jejaring"], r["period"]): r["completeness_pct"] for r in trend.get(k, [])},
        followup=followup.get(k, []), key_indicators=ki.get(k, []),
        contribution=contrib.get(k, []), dq=dq.get(k, []),
        area_completeness={r["kode"]: (r["expected"] or 0, r["received"] or 0)
                           for r in area_c.get(k, [])},
        area_indicators=area_i.get(k, []),
    ) for k in kabs}
