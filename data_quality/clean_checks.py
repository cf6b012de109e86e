"""Asset checks of the raw → clean boundary.

Blocking, exact SQL over the whole tables (downstream layers must never run on these):
`every_raw_row_accounted` (each raw row kept exactly once or quarantined), `one_current_version`
(one current version per facility × period × form), `keys_resolved` (kept submissions resolve to
the registry, a `YYYY-MM` period and a known form; every value belongs to a current submission).

Warnings: the Great Expectations suites of `gx_suites.py` on pandas frames pulled from DuckDB,
above `MAX_GX_ROWS` on a deterministic sample of whole groups (so uniqueness stays meaningful);
each builds GX Data Docs and its offline page (`validasi.html`, pass/fail per expectation) into
`KOLAB_HOME/data_docs/<suite>/`. Descriptions people read in the UI are Indonesian.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from data_quality import gx_cache, gx_runner, gx_suites
from kolab_pipeline import clean, labels
from kolab_pipeline.orchestration.metadata import md_table
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import WRITER_POOL
from kolab_pipeline.rules import rule_ids
from kolab_pipeline.warehouse import ident, table

RAW_ROW = dg.AssetKey(["raw", "submission_row"])
SUBMISSION = dg.AssetKey(["clean", "submission"])
VALUE = dg.AssetKey(["clean", "submission_value"])
QUARANTINE = dg.AssetKey(["clean", "quarantine"])
MAX_GX_ROWS = 200_000
SAMPLE = 10


def validation_frame(con: duckdb.DuckDBPyConnection, key: str, group_col: str,
                     max_rows: int = MAX_GX_ROWS) -> tuple[pd.DataFrame, int]:
    """The table as a DataFrame, or — above `max_rows` — a deterministic sample of whole groups
    (`hash(group_col) % k = 0`), so re-runs validate the same rows. Returns (frame, table rows)."""
    t = table(key)
    n = con.execute(f"SELECT count(*) FROM {t.qualified}").fetchone()[0]
    if n <= max_rows:
        return con.execute(f"SELECT * FROM {t.qualified}").df(), n
    k = -(-n // max_rows)  # ceil
    df = con.execute(f"SELECT * FROM {t.qualified} WHERE hash({ident(group_col)}) % $k = 0",
                     {"k": k}).df()
    return df, n


def _registry_codes_in(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> list[str]:
    """The registry codes among the frame's `kode_faskes`: the value set of "facility in
    registry". Same verdict as the whole registry, but GX copies an expectation's kwargs many
    times while building its metric graph, so the value set is kept to the sampled facilities."""
    con.register("_gx_frame_codes", frame[["kode_faskes"]].drop_duplicates())
    try:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT f.kode_faskes FROM reference.facility AS f "
            "JOIN _gx_frame_codes AS c USING (kode_faskes)").fetchall()]
    finally:
        con.unregister("_gx_frame_codes")


def _element_codes(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT DISTINCT code FROM reference.data_element").fetchall()]


SuiteBuilder = Callable[[duckdb.DuckDBPyConnection, pd.DataFrame], Any]
# suite name → (table, sampling group column, suite built from the connection and the frame)
GX_SUITES: dict[str, tuple[str, str, SuiteBuilder]] = {
    "raw_submission_row": ("raw.submission_row", "file_id",
                           lambda con, frame: gx_suites.raw_submission_row()),
    "clean_submission": ("clean.submission", "kode_faskes",
                         lambda con, frame: gx_suites.clean_submission(
                             _registry_codes_in(con, frame))),
    "clean_submission_value": ("clean.submission_value", "kode_faskes",
                               lambda con, frame: gx_suites.clean_submission_value(
                                   _element_codes(con, frame))),
    "clean_quarantine": ("clean.quarantine", "file_id",
                         lambda con, frame: gx_suites.clean_quarantine(rule_ids())),
}


def run_gx_suite(con: duckdb.DuckDBPyConnection, kolab: KolabHome,
                 suite_name: str) -> dg.AssetCheckResult:
    """Validate one table (or its sample of whole groups) with its GX suite; Data Docs included.
    The same frame, reference and suite code as the last run: its result is reused
    (`gx_cache`, metadata `result_reused`), so a run with nothing new does not run GX again."""
    key, group_col, build = GX_SUITES[suite_name]
    frame, n = validation_frame(con, key, group_col)
    settings = kolab.settings()
    docs_dir = settings.paths.data_docs / suite_name
    run_key = gx_cache.run_key(con, suite_name, frame, n,
                               extra=f"{rule_ids()!r}{settings.config.timezones.default}")
    reused = gx_cache.load(docs_dir, run_key)
    if reused is not None:
        return reused
    suite = build(con, frame)
    validation = gx_runner.validate_frame(
        frame, suite, docs_dir=docs_dir, table=key, table_rows=n,
        zone=settings.config.timezones.default)
    result = gx_runner.to_check_result(validation, extra_metadata={
        "table_rows": dg.MetadataValue.int(int(n)),
        "sampled": dg.MetadataValue.bool(len(frame) < n),
    })
    gx_cache.save(docs_dir, run_key, result)
    return result


# --- blocking, structural (exact SQL) --------------------------------------------------------

@dg.asset_check(asset=SUBMISSION, blocking=True, pool=WRITER_POOL,
                description="Setiap baris mentah ada di clean.submission tepat satu kali atau di "
                            "clean.quarantine (tidak ada yang hilang, tidak ada yang terhitung "
                            "dua kali). Memblokir.")
def every_raw_row_accounted(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        acc = clean.accounting(con, sample_size=SAMPLE)
    counts = {k: v for k, v in acc.items() if k not in ("ok", "sample")}
    return dg.AssetCheckResult(
        passed=bool(acc["ok"]),
        description=(f"semua {labels.number(acc['raw_rows'])} baris mentah tercatat tepat satu "
                     "kali" if acc["ok"] else
                     f"{labels.number(acc['unaccounted'])} baris mentah tidak disimpan maupun "
                     f"dikarantina, {labels.number(acc['kept_and_quarantined'])} disimpan "
                     f"sekaligus dikarantina, {labels.number(acc['kept_twice'])} disimpan dua "
                     f"kali, {labels.number(acc['orphans'])} baris bersih tanpa baris mentah"),
        metadata={**{k: dg.MetadataValue.int(int(v)) for k, v in counts.items()},
                  "unaccounted_sample": md_table(acc["sample"])},
    )


def _none_failing(n: int, total: int, sample: pd.DataFrame, unit: str, failing: str,
                  ok: str) -> dg.AssetCheckResult:
    """Passed when none of `total` {unit} fails: `n dari total <failing>` / `semua total <ok>`,
    with `evaluated_<unit>`, `failed_<unit>` and a sample of the failures."""
    return dg.AssetCheckResult(
        passed=n == 0,
        description=(f"{labels.number(n)} dari {labels.number(total)} {failing}" if n
                     else f"semua {labels.number(total)} {ok}"),
        metadata={f"evaluated_{unit}": dg.MetadataValue.int(int(total)),
                  f"failed_{unit}": dg.MetadataValue.int(int(n)), "sample": md_table(sample)},
    )


@dg.asset_check(asset=SUBMISSION, blocking=True, pool=WRITER_POOL,
                description="Tepat satu versi terkini per faskes × periode × formulir; duplikat "
                            "akan menghitung ganda laporan dan nilai indikator. Memblokir.")
def one_current_version(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        n, sample = clean.duplicate_current_versions(con, SAMPLE)
        groups = con.execute("SELECT count(DISTINCT (kode_faskes, period, form)) "
                             "FROM clean.submission").fetchone()[0]
    return _none_failing(n, groups, sample, "groups",
                         "kelompok faskes × periode × formulir punya lebih dari satu versi "
                         "terkini", "kelompok punya satu versi terkini")


@dg.asset_check(asset=SUBMISSION, blocking=True, pool=WRITER_POOL,
                description="Laporan yang disimpan merujuk ke faskes di registri, periode YYYY-MM "
                            "dan formulir yang dikenal; setiap nilai milik laporan terkini. "
                            "Memblokir.")
def keys_resolved(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        n, sample = clean.unresolved_keys(con, SAMPLE)
        evaluated = con.execute("SELECT (SELECT count(*) FROM clean.submission) + "
                                "(SELECT count(*) FROM clean.submission_value)").fetchone()[0]
    return _none_failing(n, evaluated, sample, "rows",
                         "baris tidak merujuk ke registri, periode, formulir atau laporan terkini",
                         "baris merujuk dengan benar")


# --- warnings: Great Expectations suites -----------------------------------------------------

def gx_check(suite_name: str, asset: dg.AssetKey, description: str) -> dg.AssetChecksDefinition:
    """The WARN check `gx_<suite_name>` on `asset`: its GX suite over the table (`GX_SUITES`)."""

    @dg.asset_check(asset=asset, name=f"gx_{suite_name}", pool=WRITER_POOL,
                    description=description)
    def check(warehouse: Warehouse, kolab: KolabHome) -> dg.AssetCheckResult:
        with warehouse.connection() as con:
            return run_gx_suite(con, kolab, suite_name)

    return check


_GX_NOTE = (" Peringatan (WARN); hasil per harapan dapat dibuka tanpa internet (metadata "
            "validation_page).")
gx_raw_submission_row = gx_check(
    "raw_submission_row", RAW_ROW,
    "Suite GX raw_submission_row: raw_row_id unik dan terisi, file_id terisi, row_number ≥ 1 "
    "(di atas 200.000 baris: sampel seluruh berkas)." + _GX_NOTE)
gx_clean_submission = gx_check(
    "clean_submission", SUBMISSION,
    "Suite GX clean_submission: satu versi terkini per faskes × periode × formulir, faskes ada "
    "di registri, periode YYYY-MM, formulir dikenal." + _GX_NOTE)
gx_clean_submission_value = gx_check(
    "clean_submission_value", VALUE,
    "Suite GX clean_submission_value: nilai ≥ 0 atau kosong, elemen data dari katalog, satu "
    "nilai per laporan × elemen." + _GX_NOTE)
gx_clean_quarantine = gx_check(
    "clean_quarantine", QUARANTINE,
    "Suite GX clean_quarantine: kode aturan dari katalog, alasan penolakan terisi." + _GX_NOTE)
