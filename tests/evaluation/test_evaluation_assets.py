"""The evaluation assets materialise one month through Dagster and attach their metadata."""

from __future__ import annotations

import dagster as dg

import assets.evaluation as ae
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.resources import build_resources
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support.evaluation import seed


def test_materialise_month(settings: Settings, monkeypatch):
    monkeypatch.delenv("KOLAB_WAREHOUSE_URL", raising=False)
    con = connect(settings.paths.warehouse)
    ensure_schema(con)
    seed(con)
    con.close()
    result = dg.materialize(
        [ae.scorecard, ae.wilayah_scorecard, ae.exports_asset, ae.evaluation_report],
        partition_key="2025-02-01", resources=build_resources(settings))
    assert result.success
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    # 2 networks × (month, ytd) = 4 scorecard rows for February
    assert meta["evaluation/scorecard"]["dagster/row_count"].value == 4
    # kab/kota + 2 kecamatan, × 2 period types = 6
    assert meta["evaluation/wilayah_scorecard"]["dagster/row_count"].value == 6
    assert "preview" in meta["evaluation/scorecard"]
    assert meta["evaluation/report"]["report"].value.endswith("reports/36.72/2025-02.html")
    assert (settings.paths.exports / "evaluasi_36.72_2025-02.xlsx").exists()
    assert "postgres_rows" not in meta["evaluation/exports"]  # no KOLAB_WAREHOUSE_URL
    spec = ae.scorecard.specs_by_key[dg.AssetKey(["evaluation", "scorecard"])]
    cols = [c.name for c in spec.metadata["dagster/column_schema"].columns]
    assert "completeness_pct" in cols and "kia_k1_attainment" in cols
