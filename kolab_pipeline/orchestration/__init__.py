"""Dagster wiring: the code location, resources, partitions, jobs and schedules, `kolab run`.

Everything that imports Dagster in `kolab_pipeline` lives here; the layer packages beside it
(`raw`, `clean`, `compliance`, `indicators`, `evaluation`, ...) are plain Python over DuckDB.
"""

import warnings

import dagster as dg

# The Beta/Preview notices of the Dagster APIs this code location uses on purpose (backfill
# policies, partitioned asset checks, …) are for Dagster's developers, not for the people who run
# `make ui` or `kolab run`: silenced here, before any asset module is imported.
for _category in (dg.BetaWarning, dg.PreviewWarning):
    warnings.filterwarnings("ignore", category=_category)
