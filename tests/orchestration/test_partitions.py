"""Partition keys ↔ periods and the run tags naming a run's months
(kolab_pipeline/orchestration/partitions.py)."""

from dagster._core.storage import tags as dagster_tags

from kolab_pipeline.orchestration import partitions


def test_run_tags_are_dagsters_own():
    # `dagster` exports no constants for these tags; ours must stay equal to Dagster's values
    assert partitions.PARTITION_TAG == dagster_tags.PARTITION_NAME_TAG
    assert partitions.RANGE_START_TAG == dagster_tags.ASSET_PARTITION_RANGE_START_TAG
    assert partitions.RANGE_END_TAG == dagster_tags.ASSET_PARTITION_RANGE_END_TAG


def test_range_tags_and_month_of_tags():
    tags = partitions.range_tags("2025-01", "2025-06")
    assert tags == {"dagster/asset_partition_range_start": "2025-01-01",
                    "dagster/asset_partition_range_end": "2025-06-01"}
    assert partitions.month_of_tags(tags) == "2025-01..2025-06"
    assert partitions.month_of_tags(partitions.range_tags("2025-03", "2025-03")) == "2025-03"
    assert partitions.month_of_tags({"dagster/partition": "2025-03-01"}) == "2025-03"
    assert partitions.month_of_tags({}) == "-"
