"""Reference floor: what DuckDB alone needs for the core of the pipeline's work on the same data.

One SQL pass over the landing CSVs (`read_csv` glob, all text), unpivot to long (facility ×
period × data element), join facility → kab/kota from the registry, and aggregate per kab/kota ×
form × data element × month, plus year-to-date sums (window over the months of the year). No
validation, no versions, no lineage, no messy-format handling: the pipeline does much more, so
pipeline ÷ floor says how much the extra work costs, not how far from "optimal" it is.

Grain of the result table `floor_agg`: kab/kota × period × form × data element (month and YTD sums).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

META = ("periode", "kode_faskes", "nama_faskes", "tanggal_lapor", "laporan_nihil")


@dataclass
class FloorResult:
    seconds: float
    files: int
    rows_in: int      # landing data rows read (facility × month × form)
    cells: int        # long rows after the unpivot (non-empty data-element cells)
    rows_out: int     # aggregated rows (month + YTD)


def run_floor(landing: Path, registry_csv: Path, db_path: Path, threads: int | None = None,
              memory_limit: str | None = None) -> FloorResult:
    """Run the floor query into a fresh DuckDB file `db_path`; returns timings and counts.

    Only the template CSVs are read (`<kab>/<form>/<period>/*.csv`, what the national sample is
    made of); the form is taken from the folder, as the pipeline checks it against the header.
    """
    if db_path.exists():
        db_path.unlink()
    t0 = time.perf_counter()
    con = duckdb.connect(str(db_path))
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", memory_limit):
                raise ValueError(f"memory_limit {memory_limit!r}: expected e.g. '1.5GB'")
            con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET preserve_insertion_order = false")
        forms = sorted({p.name for p in landing.glob("*/*") if p.is_dir()})
        files = 0
        con.execute("CREATE TABLE fac AS "
                    "SELECT kode_faskes, substr(kode_wilayah, 1, 5) AS kode_kabkota "
                    "FROM read_csv(?, all_varchar = true, header = true)", [str(registry_csv)])
        con.execute("CREATE TABLE long (period VARCHAR, kode_faskes VARCHAR, form VARCHAR, "
                    "data_element VARCHAR, value BIGINT)")
        rows_in = 0
        for form in forms:
            if not re.fullmatch(r"[a-z]+", form):
                continue
            # one form = one header: a plain glob per form, no per-file schema sniffing
            pattern = str(landing / "*" / form / "*" / "*.csv")
            files += con.execute("SELECT count(*) FROM glob(?)", [pattern]).fetchone()[0]
            con.execute("CREATE OR REPLACE TEMP TABLE src AS "
                        "SELECT * FROM read_csv(?, all_varchar = true, header = true)", [pattern])
            rows_in += con.execute("SELECT count(*) FROM src").fetchone()[0]
            con.execute(f"""
                INSERT INTO long
                SELECT periode, kode_faskes, ?, data_element, TRY_CAST(value_text AS BIGINT)
                  FROM (UNPIVOT src ON COLUMNS(* EXCLUDE ({', '.join(META)}))
                        INTO NAME data_element VALUE value_text)""", [form])
        cells = con.execute("SELECT count(*) FROM long").fetchone()[0]
        con.execute("""
            CREATE TABLE floor_agg AS
            WITH month AS (
                SELECT f.kode_kabkota, l.period, l.form, l.data_element, sum(l.value) AS value
                  FROM long l JOIN fac f USING (kode_faskes)
                 GROUP BY ALL
            )
            SELECT *, 'month' AS period_type FROM month
            UNION ALL
            SELECT kode_kabkota, period, form, data_element,
                   sum(value) OVER (PARTITION BY kode_kabkota, form, data_element,
                                                 substr(period, 1, 4)
                                    ORDER BY period) AS value, 'ytd'
              FROM month""")
        rows_out = con.execute("SELECT count(*) FROM floor_agg").fetchone()[0]
    finally:
        con.close()
    return FloorResult(time.perf_counter() - t0, files, rows_in, cells, rows_out)
