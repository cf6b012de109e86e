"""Data quality: Great Expectations suites defined in code, the runner that turns a GX result
into a Dagster `AssetCheckResult`, and the asset checks of each layer. Every asset check found in
a module here is registered by `kolab_pipeline/orchestration/definitions.py`. GX is imported lazily."""
