"""The indicators layer: catalogue (`catalogue`), sasaran (`sasaran`), dated network membership
(`membership`), indicator values (`engine`), network contribution (`contribution`), checks
(`checks`) and WHO DQR flags (`dq`).

Tables (grain in `catalog/tables.yaml`): `indicators.sasaran_resolved`,
`indicators.indicator_value`, `indicators.network_contribution`, `indicators.dq_flag`,
`indicators.dq_metric`, `indicators.dq_summary`.
Conventions and definitions: docs/design/indicators.md.
"""

from kolab_pipeline.indicators.catalogue import (
    AGGREGATIONS,
    DIRECTIONS,
    LEVELS,
    OFFICIAL_SASARAN,
    CatalogueError,
    Expression,
    Indicator,
    Relation,
    SasaranFormula,
    catalogue_frame,
    contribution_elements,
    load_catalogue,
    load_relations,
    load_sasaran_formulas,
    parse_expression,
)
from kolab_pipeline.indicators.checks import coverage_above_100, reconcile_totals
from kolab_pipeline.indicators.contribution import compute_network_contribution
from kolab_pipeline.indicators.engine import compute_indicator_values
from kolab_pipeline.indicators.membership import geo_units, moved_members
from kolab_pipeline.indicators.sasaran import denominator_warnings, resolve_sasaran

__all__ = [
    "AGGREGATIONS", "DIRECTIONS", "LEVELS", "OFFICIAL_SASARAN", "CatalogueError", "Expression",
    "Indicator", "Relation", "SasaranFormula", "catalogue_frame", "compute_indicator_values",
    "compute_network_contribution", "contribution_elements", "coverage_above_100",
    "denominator_warnings", "geo_units", "load_catalogue", "load_relations",
    "load_sasaran_formulas", "moved_members",
    "parse_expression", "reconcile_totals", "resolve_sasaran",
]
