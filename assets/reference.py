"""Reference assets: Kemendagri wilayah (bundled), BPS bridge, the 2019 puskesmas list, the
facility registry with its form-assignment history, official sasaran, the data-element catalogue.
Logic: `kolab_pipeline/reference.py`."""

import dagster as dg

from kolab_pipeline import reference
from kolab_pipeline.orchestration.metadata import table_metadata
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse
from kolab_pipeline.orchestration.specs import table_spec, writer_multi_asset

WILAYAH = [["reference", "wilayah"]]
BUNDLED = {
    "wilayah": "Kemendagri administrative units (Kepmendagri 2025), bundled.",
    "bps_bridge": "BPS ↔ Kemendagri code bridge (puskesmas P-codes embed BPS codes).",
    "puskesmas_2019": "Kemenkes BPPSDMK 2019 puskesmas list mapped to Kemendagri kecamatan.",
    "data_element": "Data-element catalogue of the four program forms.",
}
REGISTRY = {
    "facility": "Facility registry (KOLAB_HOME/registry/fasilitas.csv): puskesmas, Klinik "
                "Pratama, TPMD with induk puskesmas, wilayah, open/close dates and forms.",
    "facility_alias": "Normalised codes and names that resolve to a facility.",
    "form_assignment": "Which forms each facility must report, and to which induk, over time "
                       "(fasilitas.csv plus dated overrides in jejaring.csv).",
    "sasaran": "Official target populations from sasaran.csv.",
}


@writer_multi_asset([table_spec(f"reference.{name}", text) for name, text in BUNDLED.items()])
def bundled_reference(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Loads the bundled reference tables (a full reload: small and idempotent)."""
    with warehouse.connection() as con:
        reference.load_wilayah(con)
        reference.load_catalogues(con)
        for key in BUNDLED:
            yield dg.MaterializeResult(asset_key=["reference", key],
                                       metadata=table_metadata(con, f"reference.{key}"))


@writer_multi_asset([table_spec(f"reference.{name}", text, deps=WILAYAH)
                     for name, text in REGISTRY.items()])
def registry(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse):
    """Loads the facility registry and official sasaran from KOLAB_HOME/registry."""
    settings = kolab.settings()
    with warehouse.connection() as con:
        counts = reference.load_registry(con, settings)
        context.log.info(f"registry loaded: {counts}")
        for key in REGISTRY:
            yield dg.MaterializeResult(asset_key=["reference", key],
                                       metadata=table_metadata(con, f"reference.{key}"))
