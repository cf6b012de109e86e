"""WHO Data Quality Review (DQR) metrics, three tables (grain in `catalog/tables.yaml`), each
period replaced whole:

- `indicators.dq_flag`: the values flagged — outliers (2a, `outliers`), related indicators and
  negative drop-out (2c) and consistency over time (2b, `consistency`); one row per method, so a
  value (unit × period × subject) flagged twice has two rows;
- `indicators.dq_metric`: every unit's metric value, flagged or not — content completeness (1c)
  and completeness over time (1d, `completeness`), denominators (4a, 4b, `denominators`), values
  not judged for outliers;
- `indicators.dq_summary`: the WHO subunit summary of outliers (`summary`).

Units (`units`): location units from the registry, the puskesmas network of each month. One run:
`build.compute_dq_flags`. Thresholds: kolab.yaml `thresholds:`; definitions and design:
docs/design/indicators.md ("WHO DQR metrics").
"""

from kolab_pipeline.indicators.dq.build import compute_dq_flags, dq_sql, months_to_judge
from kolab_pipeline.indicators.dq.months import judged_months
from kolab_pipeline.indicators.dq.outliers import outlier_candidates, sorted_median

__all__ = ["compute_dq_flags", "dq_sql", "judged_months", "months_to_judge",
           "outlier_candidates", "sorted_median"]
