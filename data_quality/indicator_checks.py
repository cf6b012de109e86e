"""Asset checks on each month of `indicators/indicator_value`, one result per month partition:
`totals_reconcile` (blocking: every unit's numerator and element denominator equals the sum of
its facilities' rows, month and YTD) and `coverage_above_100` (WARN: units above 100 %, highest
first — resident-based sasaran vs service-based reports, `docs/domain.md` §5). Logic:
`kolab_pipeline.indicators.reconcile_totals` / `coverage_above_100`; text people read is
Indonesian, codes stay in their own columns.
"""

import dagster as dg
import duckdb
import pandas as pd

from kolab_pipeline import indicators, labels
from kolab_pipeline.orchestration.metadata import md_table, unit_names
from kolab_pipeline.orchestration.resources import Warehouse
from kolab_pipeline.orchestration.specs import monthly_check

INDICATOR_VALUE = dg.AssetKey(["indicators", "indicator_value"])
TOP_N = 50


def _month(period: str) -> dict[str, str]:
    return {"period": period, "bulan": labels.period_label(period)}


def _named(con: duckdb.DuckDBPyConnection, df: pd.DataFrame) -> dict[str, list[str]]:
    """The identifying columns of indicator rows: indicator by name and code, unit level, unit
    by code and name, month or year to date."""
    return {
        "Indikator": [labels.indicator_name(c) for c in df["indicator_code"]],
        "Kode indikator": list(df["indicator_code"]),
        "Tingkat": [labels.label("unit_level", v) for v in df["unit_level"]],
        "Kode unit": list(df["unit_code"]),
        "Nama unit": unit_names(con, list(df["unit_level"]), list(df["unit_code"])),
        "Periode": [labels.label("period_type", v) for v in df["period_type"]],
    }


def _count(value: object) -> str:
    return labels.auto_number(value) if pd.notna(value) else "–"


def totals_result(warehouse: Warehouse, period: str) -> dg.AssetCheckResult:
    """Blocking result for one month: unit rows that are not the sum of their facilities."""
    with warehouse.connection() as con:
        bad = indicators.reconcile_totals(con, period)
        table = pd.DataFrame({
            **_named(con, bad),
            "Pembilang tersimpan": [_count(v) for v in bad["numerator"]],
            "Jumlah pembilang faskes": [_count(v) for v in bad["fac_numerator"]],
            "Penyebut tersimpan": [_count(v) for v in bad["denominator"]],
            "Jumlah penyebut faskes": [_count(v) for v in bad["fac_denominator"]],
        })
    month = labels.period_label(period)
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=(f"{month}: {labels.number(len(bad))} baris unit tidak sama dengan jumlah "
                     "faskesnya" if len(bad)
                     else f"{month}: setiap pembilang unit sama dengan jumlah faskesnya"),
        metadata={**_month(period), "n_mismatches": len(bad),
                  "mismatches": md_table(table, max_rows=TOP_N)},
    )


def above_100_result(warehouse: Warehouse, period: str) -> dg.AssetCheckResult:
    """WARN result for one month: indicator rows above 100 % coverage, highest first."""
    with warehouse.connection() as con:
        rows = indicators.coverage_above_100(con, period)
        rows = rows.sort_values(["value", "indicator_code", "unit_level", "unit_code"],
                                ascending=[False, True, True, True], kind="stable")
        table = pd.DataFrame({
            **_named(con, rows),
            "Pembilang": [_count(v) for v in rows["numerator"]],
            "Penyebut": [_count(v) for v in rows["denominator"]],
            "Capaian (%)": [labels.number(v, 1) for v in rows["value"]],
        })
    month = labels.period_label(period)
    n_units = rows[["unit_level", "unit_code"]].drop_duplicates().shape[0]
    return dg.AssetCheckResult(
        passed=rows.empty, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{month}: {labels.number(len(rows))} capaian indikator di atas 100 % pada "
                     f"{labels.number(n_units)} unit (ditandai, tidak dipotong)" if len(rows)
                     else f"{month}: tidak ada capaian di atas 100 %"),
        metadata={**_month(period), "n_above_100": len(rows), "n_units": n_units,
                  "units": md_table(table, max_rows=TOP_N)},
    )


totals_reconcile = monthly_check(
    INDICATOR_VALUE, "totals_reconcile",
    "Pembilang (dan penyebut elemen data) setiap jejaring, kecamatan, kab/kota dan provinsi sama "
    "dengan jumlah faskesnya, bulan ini dan kumulatif (rasio dari jumlah). Memblokir: evaluasi "
    "tidak dijalankan bila gagal.",
    lambda res, period: totals_result(res.warehouse, period), blocking=True)

coverage_above_100 = monthly_check(
    INDICATOR_VALUE, "coverage_above_100",
    "Unit dengan capaian indikator di atas 100 % (sasaran berbasis penduduk vs laporan berbasis "
    "layanan), tertinggi lebih dulu. Peringatan (WARN).",
    lambda res, period: above_100_result(res.warehouse, period))
