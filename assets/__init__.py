"""Dagster assets, one module per layer: reference → raw → clean → compliance / indicators →
evaluation. Each module is a thin wrapper: the logic lives in the same-named module of
`kolab_pipeline/` and runs in DuckDB SQL. Asset key prefix = group = DuckDB schema."""
