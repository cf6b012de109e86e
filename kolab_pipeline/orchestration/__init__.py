"""Dagster wiring: the code location, resources, partitions, jobs and schedules, `kolab run`.

Everything that imports Dagster in `kolab_pipeline` lives here; the layer packages beside it
(`raw`, `clean`, `compliance`, `indicators`, `evaluation`, ...) are plain Python over DuckDB.
"""
