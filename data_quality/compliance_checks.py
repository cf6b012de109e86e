"""Asset checks (WARN) on each month of `compliance/report_status`, one result per month partition:
`no_missing_reports_after_cutoff` (expected reports still missing after the cut-off, and the
networks with most of them) and `completeness_above_threshold` / `timeliness_above_threshold`
(kab/kota and puskesmas networks below `thresholds.completeness_pct` / `timeliness_pct`, worst
first, judged by the one rule of `kolab_pipeline.judgement`). WARN: late reporting is a finding
for the Dinkes, not a pipeline failure. Logic: `kolab_pipeline.compliance`; text people read is
Indonesian, codes stay in their own columns. Design: docs/design/orch.md.
"""

from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from kolab_pipeline import compliance, labels
from kolab_pipeline.config import Thresholds
from kolab_pipeline.orchestration.metadata import md_table, unit_names
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import monthly_check

REPORT_STATUS = dg.AssetKey(["compliance", "report_status"])
TOP_N = 50
METRIC_NAME = {"completeness": "kelengkapan", "timeliness": "ketepatan waktu"}
# the count behind each percentage, as a column heading
METRIC_COUNT = {"completeness": "Laporan diterima", "timeliness": "Laporan tepat waktu"}

# Units judged by the threshold checks: those with expected reports in the month (the same unit
# set as `compliance.BELOW_THRESHOLD_SQL`), for "N of M units".
UNITS_JUDGED_SQL = """
    SELECT count(DISTINCT kode_kabkota), count(DISTINCT kode_jejaring)
      FROM compliance.report_status WHERE period = $period AND expected
"""


def _month(period: str) -> dict[str, str]:
    return {"period": period, "bulan": labels.period_label(period)}


def _date(day: date | None) -> str:
    """2026-09-30 → "30 September 2026"."""
    if day is None:
        return ""
    return f"{day.day} {labels.label('bulan', f'{day.month:02d}')} {day.year}"


def _missing_table(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    rows = compliance.missing_after_cutoff(con, period)
    df = pd.DataFrame(rows, columns=["kode_faskes", "nama_faskes", "form", "kode_jejaring",
                                     "kode_kabkota", "cutoff_date"])
    jenis = dict(con.execute(
        "SELECT kode_faskes, jenis_faskes FROM reference.facility "
        "WHERE list_contains($codes, kode_faskes)",
        {"codes": list(df["kode_faskes"])}).fetchall()) if len(df) else {}
    return pd.DataFrame({
        "Kode faskes": df["kode_faskes"],
        "Nama faskes": df["nama_faskes"].fillna(""),
        "Jenis faskes": [labels.label("jenis_faskes", jenis.get(k)) for k in df["kode_faskes"]],
        "Formulir": [labels.label("form", f) for f in df["form"]],
        "Kode jejaring": df["kode_jejaring"].fillna(""),
        "Jejaring puskesmas": unit_names(con, ["puskesmas_network"] * len(df),
                                         list(df["kode_jejaring"])),
        "Kab/kota": unit_names(con, ["kabkota"] * len(df), list(df["kode_kabkota"])),
        "Batas akhir": [_date(d) for d in df["cutoff_date"]],
    })


def _by_network(missing: pd.DataFrame) -> pd.DataFrame:
    """Networks by number of missing reports (most first): who has the most to chase."""
    if missing.empty:
        return pd.DataFrame()
    by = (missing.groupby(["Kode jejaring", "Jejaring puskesmas"], dropna=False)
          .agg(laporan=("Kode faskes", "size"), faskes=("Kode faskes", "nunique"))
          .reset_index().sort_values(["laporan", "Kode jejaring"], ascending=[False, True]))
    return by.rename(columns={"laporan": "Laporan tidak masuk", "faskes": "Faskes"})


def missing_check_result(warehouse: Warehouse, period: str) -> dg.AssetCheckResult:
    """WARN result for one month: the expected reports still missing after their cut-off."""
    with warehouse.connection() as con:
        missing = _missing_table(con, period)
    month = labels.period_label(period)
    n, n_fac = len(missing), int(missing["Kode faskes"].nunique())
    return dg.AssetCheckResult(
        passed=not n, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{month}: {labels.number(n)} laporan yang diharapkan dari "
                     f"{labels.number(n_fac)} faskes tidak masuk sampai batas akhir (cut-off)"
                     if n else f"{month}: semua laporan yang diharapkan masuk sampai batas akhir "
                               "(atau belum jatuh tempo)"),
        metadata={**_month(period), "n_missing": n, "n_facilities": n_fac,
                  "missing_by_network": md_table(_by_network(missing), max_rows=TOP_N),
                  "missing_reports": md_table(missing, max_rows=TOP_N)},
    )


def _flagged_table(con: duckdb.DuckDBPyConnection, rows: list[tuple],
                   metric: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["unit_level", "unit_code", "expected", "n", "pct"])
    df = df.sort_values(["pct", "unit_level", "unit_code"], kind="stable")
    return pd.DataFrame({
        "Tingkat": [labels.label("unit_level", v) for v in df["unit_level"]],
        "Kode unit": df["unit_code"],
        "Nama unit": unit_names(con, list(df["unit_level"]), list(df["unit_code"])),
        "Laporan diharapkan": [labels.number(v) for v in df["expected"]],
        METRIC_COUNT[metric]: [labels.number(v) for v in df["n"]],
        f"{METRIC_NAME[metric].capitalize()} (%)": [labels.number(v, 1) for v in df["pct"]],
    })


def threshold_check_result(warehouse: Warehouse, kolab: KolabHome, period: str,
                           metric: str) -> dg.AssetCheckResult:
    """WARN result for one month: the kab/kota and networks whose `metric` does not meet its
    kolab.yaml threshold, worst first."""
    thresholds = kolab.settings().config.thresholds
    threshold = (thresholds.completeness_pct if metric == "completeness"
                 else thresholds.timeliness_pct)
    with warehouse.connection() as con:
        rows = compliance.units_below_threshold(con, period, metric, threshold)
        n_kab, n_net = con.execute(UNITS_JUDGED_SQL, {"period": period}).fetchone()
        flagged = _flagged_table(con, rows, metric)
    month, word = labels.period_label(period), METRIC_NAME[metric]
    bar = f"{labels.auto_number(threshold)} %"
    judged = int(n_kab) + int(n_net)
    return dg.AssetCheckResult(
        passed=not rows, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{month}: {labels.number(len(rows))} dari {labels.number(judged)} unit "
                     f"(kab/kota dan jejaring puskesmas) dengan {word} laporan tidak mencapai "
                     f"{bar}" if rows
                     else f"{month}: semua {labels.number(judged)} unit (kab/kota dan jejaring "
                          f"puskesmas) mencapai {word} laporan {bar}"),
        metadata={**_month(period), "threshold_pct": float(threshold),
                  "n_units_judged": judged, "n_units_flagged": len(rows),
                  "units_flagged": md_table(flagged, max_rows=TOP_N)},
    )


no_missing_reports_after_cutoff = monthly_check(
    REPORT_STATUS, "no_missing_reports_after_cutoff",
    "Laporan yang diharapkan tetapi tidak masuk sampai batas akhir (cut-off) bulan itu: daftar "
    "faskes (kode dan nama) dan jejaring dengan laporan tidak masuk terbanyak. Peringatan (WARN).",
    lambda res, period: missing_check_result(res.warehouse, period))


def _threshold_check(metric: str) -> dg.AssetChecksDefinition:
    return monthly_check(
        REPORT_STATUS, f"{metric}_above_threshold",
        f"Kab/kota dan jejaring puskesmas dengan {METRIC_NAME[metric]} laporan yang tidak "
        f"mencapai ambang thresholds.{metric}_pct di kolab.yaml (bawaan WHO: "
        f"{labels.auto_number(getattr(Thresholds(), f'{metric}_pct'))} %), terburuk lebih dulu. "
        "Peringatan (WARN).",
        lambda res, period: threshold_check_result(res.warehouse, res.kolab, period, metric),
        resources=("kolab", "warehouse"))


completeness_above_threshold = _threshold_check("completeness")
timeliness_above_threshold = _threshold_check("timeliness")
