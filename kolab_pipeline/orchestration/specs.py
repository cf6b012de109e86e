"""The shapes every asset and check module repeats: the spec of a contract table, the
month-partitioned asset (partitions, single-run backfill, the `duckdb_writer` pool, group =
schema, owners, grain and column schema from `catalog/tables.yaml`) and the per-month check.
No `from __future__ import annotations`: Dagster inspects the `context` annotation."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dagster as dg
import duckdb

from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.metadata import OWNERS, describe, period_metadata, spec_metadata
from kolab_pipeline.orchestration.partitions import monthly_partitions, periods_of
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


def monthly_check(asset: dg.AssetKey, name: str, description: str,
                  result: Callable[[Any, list[str]], dg.AssetCheckResult], *,
                  resources: Iterable[str] = ("warehouse",),
                  blocking: bool = False) -> dg.AssetChecksDefinition:
    """An asset check run per month of `asset`: `result(context.resources, periods)` over the
    months of the run, with the resources it names."""

    @dg.asset_check(asset=asset, name=name, description=description, blocking=blocking,
                    partitions_def=monthly_partitions, required_resource_keys=set(resources))
    def check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return result(context.resources, periods_of(context))

    return check
