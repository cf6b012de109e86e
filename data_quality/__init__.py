"""Data quality: Great Expectations suites defined in code, the runner that turns a GX result
into a Dagster `AssetCheckResult`, and the asset checks of each layer (registered by
`kolab_pipeline/orchestration/definitions.py`). GX is imported lazily."""
