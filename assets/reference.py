"""Reference assets: Kemendagri wilayah (bundled), BPS bridge, the 2019 puskesmas list, the
facility registry with its form-assignment history, official sasaran, the data-element catalogue.
Logic: `kolab_pipeline/reference.py`."""

import dagster as dg

from kolab_pipeline import reference
from kolab_pipeline.orchestration.metadata import OWNERS, describe, spec_metadata, table_metadata
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse

GROUP = "reference"

@dg.multi_asset(
    group_name=GROUP,
    specs=[
        dg.AssetSpec(["reference", "wilayah"], description=describe(
            "reference.wilayah", "Kemendagri administrative units (Kepmendagri 2025), bundled."),
            metadata=spec_metadata("reference.wilayah"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "bps_bridge"], description=describe(
            "reference.bps_bridge", "BPS ↔ Kemendagri code bridge (puskesmas P-codes embed BPS codes)."),
            metadata=spec_metadata("reference.bps_bridge"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "puskesmas_2019"], description=describe(
            "reference.puskesmas_2019", "Kemenkes BPPSDMK 2019 puskesmas list mapped to Kemendagri kecamatan."),
            metadata=spec_metadata("reference.puskesmas_2019"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "data_element"], description=describe(
            "reference.data_element", "Data-element catalogue of the four program forms."),
            metadata=spec_metadata("reference.data_element"), owners=OWNERS, kinds={"duckdb"}),
    ],
    pool="duckdb_writer",
)
def bundled_reference(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Loads the bundled reference tables (a full reload: small and idempotent)."""
    with warehouse.connection() as con:
        reference.load_wilayah(con)
        reference.load_catalogues(con)
        for key in ("wilayah", "bps_bridge", "puskesmas_2019", "data_element"):
            yield dg.MaterializeResult(asset_key=["reference", key],
                                       metadata=table_metadata(con, f"reference.{key}"))

@dg.multi_asset(
    group_name=GROUP,
    specs=[
        dg.AssetSpec(["reference", "facility"], deps=[["reference", "wilayah"]], description=describe(
            "reference.facility", "Facility registry (KOLAB_HOME/registry/fasilitas.csv): puskesmas, "
            "Klinik Pratama, TPMD with induk puskesmas, wilayah, open/close dates and forms."),
            metadata=spec_metadata("reference.facility"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "facility_alias"], deps=[["reference", "wilayah"]], description=describe(
            "reference.facility_alias", "Normalised codes and names that resolve to a facility."),
            metadata=spec_metadata("reference.facility_alias"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "form_assignment"], deps=[["reference", "wilayah"]], description=describe(
            "reference.form_assignment", "Which forms each facility must report, and to which induk, over time "
            "(fasilitas.csv plus dated overrides in jejaring.csv)."),
            metadata=spec_metadata("reference.form_assignment"), owners=OWNERS, kinds={"duckdb"}),
        dg.AssetSpec(["reference", "sasaran"], deps=[["reference", "wilayah"]], description=describe(
            "reference.sasaran", "Official target populations from sasaran.csv."),
            metadata=spec_metadata("reference.sasaran"), owners=OWNERS, kinds={"duckdb"}),
    ],
    pool="duckdb_writer",
)
def registry(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Loads the facility registry and official sasaran from KOLAB_HOME/registry."""
    settings = kolab.settings()
    with warehouse.connection() as con:
        counts = reference.load_registry(con, settings)
        context.log.info(f"registry loaded: {counts}")
        for key in ("facility", "facility_alias", "form_assignment", "sasaran"):
            yield dg.MaterializeResult(asset_key=["reference", key],
                                       metadata=table_metadata(con, f"reference.{key}"))
