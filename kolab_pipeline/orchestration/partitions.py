"""Monthly partitions for every period-keyed asset (compliance, indicators, evaluation).

Partition keys are Dagster's `YYYY-MM-01`; the warehouse stores periods as `YYYY-MM`.
Start: `partitions.start` in kolab.yaml (`kolab sample-data` writes it), else two years back.
"""

from __future__ import annotations

import dagster as dg

from kolab_pipeline.calendar import default_partition_start
from kolab_pipeline.config import Settings


def build_monthly_partitions(settings: Settings | None = None) -> dg.MonthlyPartitionsDefinition:
    settings = settings or Settings.load()
    start = settings.config.partitions.start or default_partition_start()
    return dg.MonthlyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d"))


monthly_partitions = build_monthly_partitions()

# Run tag set by `kolab run --month …`: the months whose workbooks and reports the evaluation
# assets write (the YTD follow-up months of the same run do not get documents).
DOCUMENTS_TAG = "kolab/document_months"


def key_to_period(partition_key: str) -> str:
    """`2025-03-01` → `2025-03`."""
    return partition_key[:7]


def period_to_key(period: str) -> str:
    return f"{period}-01"


def periods_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The periods a run covers: one month, or a range when a backfill runs as a single run."""
    if not context.has_partition_key_range and not context.has_partition_key:
        raise ValueError("this asset is partitioned by month: pass a partition key or range")
    return [key_to_period(k) for k in context.partition_keys]
