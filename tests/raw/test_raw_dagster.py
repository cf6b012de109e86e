"""Raw layer in Dagster: the multi-asset materialises the three raw tables with run metadata
(rejected files listed with reasons), and the blocking reconciliation check passes on real data
and fails when a kept row has gone missing."""

from __future__ import annotations

import dagster as dg

from assets.raw import raw_submissions
from data_quality.raw_checks import rows_read_reconcile
from kolab_pipeline.orchestration.resources import KolabHome, SourceDatabase, Warehouse
from tests.support.landing import PLAIN, put


def _resources(settings) -> dict:
    return {"kolab": KolabHome(home=str(settings.paths.home)),
            "warehouse": Warehouse(database=str(settings.paths.warehouse)),
            "source_db": SourceDatabase(url=None)}


def test_raw_assets_materialise_with_metadata_and_check(settings):
    put(settings, "a/tb/ok.csv", PLAIN)
    put(settings, "a/zero.csv", b"")
    result = dg.materialize([raw_submissions, rows_read_reconcile], resources=_resources(settings))
    assert result.success
    mats = {m.asset_key.to_user_string(): m.metadata
            for m in result.asset_materializations_for_node("raw_submissions")}
    assert set(mats) == {"raw/landing_file", "raw/submission_row", "raw/submission_cell"}
    meta = mats["raw/landing_file"]
    assert (meta["files_ingested"].value, meta["files_rejected"].value,
            meta["rows_kept"].value) == (1, 1, 2)
    assert ("| a/zero.csv | F02    | a/zero.csv: File is empty or has no data rows — the file is "
            "empty (0 bytes) |") in meta["rejected_files"].value
    assert mats["raw/submission_row"]["dagster/row_count"].value == 2
    # PLAIN has 2 rows × 2 element columns = 4 cells
    assert mats["raw/submission_cell"]["dagster/row_count"].value == 4
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["n_files"].value == 2


def test_reconcile_check_fails_when_rows_are_lost(settings, con):
    put(settings, "a/tb/ok.csv", PLAIN)
    from kolab_pipeline import raw
    raw.ingest_landing(con, settings, run_id="r1")
    con.execute("DELETE FROM raw.submission_row WHERE row_number = 2")
    con.close()
    check = rows_read_reconcile(warehouse=_resources(settings)["warehouse"])  # direct invocation
    assert not check.passed
    assert check.metadata["n_unreconciled"].value == 1
