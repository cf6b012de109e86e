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


# Dagster's run tags naming a run's partition or partition range. They are Dagster's own tag
# names (shown in the UI, written by single-run backfills), but `dagster` 1.13 exports no constant
# for them (only the private `dagster._core.storage.tags`), so they are spelled here, once;
# tests/orchestration/test_partitions.py pins them to Dagster's values.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make a job over month-partitioned assets run the months `first`..`last`
    (`YYYY-MM`) as one run, as a single-run backfill does."""
    return {RANGE_START_TAG: period_to_key(first), RANGE_END_TAG: period_to_key(last)}


def month_of_tags(tags: dict[str, str]) -> str:
    """`2025-03`, a range `2025-01..2025-06`, or `-` for an unpartitioned run."""
    if PARTITION_TAG in tags:
        return key_to_period(tags[PARTITION_TAG])
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        first, last = key_to_period(start), key_to_period(end)
        return first if start == end else f"{first}..{last}"
    return "-"


def periods_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The periods a run covers: one month, or a range when a backfill runs as a single run."""
    if not context.has_partition_key_range and not context.has_partition_key:
        raise ValueError("this asset is partitioned by month: pass a partition key or range")
    return [key_to_period(k) for k in context.partition_keys]
