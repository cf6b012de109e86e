"""Asset check (blocking) on `raw/landing_file`: nothing lost at ingestion.

`rows_read_reconcile`: for every landing file and SQL/DHIS2 pull, rows read = rows kept + rows
rejected, and the rows kept are really in `raw.submission_row`. Blocking, because a file whose
rows vanished would make a facility look `missing` downstream when it did report.
Logic: `kolab_pipeline.raw.unreconciled_files` (SQL).
"""

import dagster as dg

from kolab_pipeline import labels, raw
from kolab_pipeline.orchestration.metadata import md_table
from kolab_pipeline.orchestration.resources import Warehouse

LANDING_FILE = dg.AssetKey(["raw", "landing_file"])
MAX_LISTED = 100


@dg.asset_check(asset=LANDING_FILE, blocking=True,
                description="Setiap berkas: baris dibaca = baris disimpan + baris ditolak, dan "
                            "baris yang disimpan ada di raw.submission_row (tidak ada yang "
                            "hilang). Memblokir.")
def rows_read_reconcile(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connection() as con:
        bad = raw.unreconciled_files(con)
        n_files = con.execute("SELECT count(*) FROM raw.landing_file").fetchone()[0]
    return dg.AssetCheckResult(
        passed=bad.empty,
        description=(f"{labels.number(len(bad))} dari {labels.number(n_files)} berkas tidak "
                     "cocok" if len(bad) else f"semua {labels.number(n_files)} berkas cocok"),
        metadata={"n_files": int(n_files), "n_unreconciled": len(bad),
                  "unreconciled": md_table(bad.head(MAX_LISTED))},
    )
