"""Jobs and schedules (the card has no schedules folder; they live next to the jobs they run)."""

from __future__ import annotations

import dagster as dg

# Unpartitioned layers: reference data, raw ingestion and the clean layer.
INGEST_SELECTION = dg.AssetSelection.groups("reference", "raw", "clean")
# Month-partitioned layers.
MONTHLY_SELECTION = dg.AssetSelection.groups("compliance", "indicators", "evaluation")

ingest_job = dg.define_asset_job(
    "ingest_job", selection=INGEST_SELECTION,
    description="Load reference data, ingest new landing files and SQL/DHIS2 submissions, clean them.",
)


def build_jobs_and_schedules() -> tuple[list, list]:
    return [ingest_job], []
