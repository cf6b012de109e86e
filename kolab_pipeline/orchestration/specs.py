"""The shapes every asset and check module repeats: the spec of a contract table, the
month-partitioned asset (partitions, single-run backfill, the `duckdb_writer` pool, group =
schema, owners, grain and column schema from `catalog/tables.yaml`) and the per-month check,
whose result is recorded on each month partition (so the UI shows it per month).
No `from __future__ import annotations`: Dagster inspects the `context` annotation."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import dagster as dg
import duckdb

# Dagster 1.13 exports `AssetCheckEvaluation` but not the pointer to the materialization a check
# evaluated; without it the UI treats a partition's result as stale (not shown). Imported here,
# once; tests/orchestration/test_monthly_checks.py fails loudly if an upgrade moves it.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.metadata import OWNERS, describe, period_metadata, spec_metadata
from kolab_pipeline.orchestration.partitions import key_to_period, monthly_partitions, periods_of
from kolab_pipeline.orchestration.resources import KolabHome, Warehouse

# Assets that write the warehouse share this pool: DuckDB allows one writer, and the instance
# limits every pool to one step at a time (orchestration/runner.py, deploy/dagster.yaml).
WRITER_POOL = "duckdb_writer"
DUCKDB = frozenset({"duckdb"})
Deps = Iterable[Any]


def key_of(table_key: str) -> list[str]:
    """`schema.name` → the asset key path `[schema, name]` (key prefix = group = schema)."""
    schema, name = table_key.split(".")
    return [schema, name]


def table_spec(table_key: str, text: str, deps: Deps = (), **extra: Any) -> dg.AssetSpec:
    """Spec of the asset writing contract table `schema.name`: group = schema, the team as
    owner, kind duckdb, grain and column schema as metadata, `text` + grain as description."""
    key = key_of(table_key)
    return dg.AssetSpec(key, group_name=key[0], deps=list(deps), owners=OWNERS,
                        kinds=set(DUCKDB), metadata=spec_metadata(table_key),
                        description=describe(table_key, text), **extra)


def writer_multi_asset(specs: Sequence[dg.AssetSpec], **extra: Any) -> Callable:
    """`@dg.multi_asset` over `specs` in the writer pool (unpartitioned layers)."""
    return dg.multi_asset(specs=list(specs), pool=WRITER_POOL, **extra)


def _monthly() -> dict[str, Any]:
    return {"partitions_def": monthly_partitions, "pool": WRITER_POOL,
            "backfill_policy": dg.BackfillPolicy.single_run()}


def monthly_asset(table_key: str, text: str, deps: Deps = (), *, contract: bool = True,
                  kinds: Iterable[str] = DUCKDB) -> Callable:
    """`@dg.asset` for one month-partitioned asset keyed `schema.name` (a range of months runs as
    one run). With `contract` the table's grain and column schema come from the contract; an
    asset that writes files (`contract=False`) gets `text` as its description."""
    key = key_of(table_key)
    described = (dict(metadata=spec_metadata(table_key), description=describe(table_key, text))
                 if contract else dict(description=text))
    return dg.asset(key=key, group_name=key[0], deps=list(deps), owners=OWNERS,
                    kinds=set(kinds), **described, **_monthly())


def monthly_multi_asset(specs: Sequence[dg.AssetSpec]) -> Callable:
    """`@dg.multi_asset` for month-partitioned assets written together by one step."""
    return dg.multi_asset(specs=list(specs), **_monthly())


Builder = Callable[[duckdb.DuckDBPyConnection, Settings, list[str]], int]


def build_months(context: dg.AssetExecutionContext, kolab: KolabHome, warehouse: Warehouse,
                 build: Builder, table_key: str, *, what: str | None = None,
                 column: str = "period") -> dg.MaterializeResult:
    """The body of a one-table monthly asset: `build` the run's months, log how many rows
    (`what`), and report the table's rows of those months (`column` holds the month)."""
    periods = periods_of(context)
    with warehouse.connection() as con:
        n = build(con, kolab.settings(), periods)
        if what:
            context.log.info(f"{n} {what} for {', '.join(periods)}")
        return dg.MaterializeResult(
            metadata=period_metadata(con, table_key, periods, column=column))


MonthResult = Callable[[Any, str], dg.AssetCheckResult]


def month_evaluation(context: dg.AssetCheckExecutionContext, asset: dg.AssetKey, name: str,
                     partition_key: str, result: dg.AssetCheckResult,
                     blocking: bool) -> dg.AssetCheckEvaluation:
    """`result` as the evaluation of check `name` on the month `partition_key` of `asset`,
    pointing at that month's latest materialization (what the check looked at)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition_key]), limit=1).records
    target = (TargetMaterialization(storage_id=records[0].storage_id, run_id=records[0].run_id,
                                    timestamp=records[0].timestamp) if records else None)
    return dg.AssetCheckEvaluation(
        asset_key=asset, check_name=name, passed=result.passed, metadata=result.metadata,
        severity=result.severity, description=result.description, blocking=blocking,
        partition=partition_key, target_materialization_data=target)


def monthly_check(asset: dg.AssetKey, name: str, description: str, result: MonthResult, *,
                  resources: Iterable[str] = ("warehouse",),
                  blocking: bool = False) -> dg.AssetChecksDefinition:
    """An asset check of the month-partitioned `asset`, evaluated month by month:
    `result(context.resources, period)` for each month of the run (one month, or the range of a
    single-run backfill), each recorded as the evaluation of its own month partition.

    Why not return one `AssetCheckResult`: in a range run Dagster 1.13 attaches a returned result
    to no partition, so every month's planned evaluation stays unanswered and the UI shows the
    check as "Skipped" although it ran (and failed). The check's output is yielded after the
    evaluations, so a blocking check still gates the assets downstream; a failed blocking
    ERROR evaluation fails the step as a returned result would."""
    asset = dg.AssetKey.from_coercible(asset)
    keys = set(resources)

    @dg.asset_check(asset=asset, name=name, description=description, blocking=blocking,
                    partitions_def=monthly_partitions, required_resource_keys=keys)
    def check(context: dg.AssetCheckExecutionContext) -> Iterator[Any]:
        periods_of(context)  # a clear error when run without a month
        # one warehouse connection for all months of the step (the results' own are nested)
        with (context.resources.warehouse.connection() if "warehouse" in keys
              else nullcontext()):
            months = [(key, result(context.resources, key_to_period(key)))
                      for key in context.partition_keys]
        for key, month in months:
            yield month_evaluation(context, asset, name, key, month, blocking)
        yield dg.Output(None)

    return check
