"""Metadata every asset and check shows the same way in the Dagster UI: grain and column schema
from the table contract, row counts, previews and markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from kolab_pipeline.warehouse import Params, bind, table

OWNERS = ["team:data-dinkes"]


def column_schema(key: str) -> dg.TableSchema:
    """Dagster column schema for a contract table (`schema.name`)."""
    t = table(key)
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.type, description=c.description)
                                   for c in t.columns])


def spec_metadata(key: str) -> dict[str, Any]:
    """Static metadata for the asset decorator: grain and column schema."""
    t = table(key)
    return {"grain": t.grain, "dagster/column_schema": column_schema(key),
            "dagster/table_name": f"kolab.{t.qualified}"}


def describe(key: str, text: str) -> str:
    """Asset description: business sentence plus the grain from the contract."""
    return f"{text.strip()}\n\nGrain: {table(key).grain}."


def md_table(df: pd.DataFrame, empty: str = "_(none)_", max_rows: int | None = None,
             more: str = "") -> dg.MetadataValue:
    """A DataFrame as markdown metadata: `empty` when it has no rows, at most `max_rows` rows
    followed by "… and N more" (plus `more`, e.g. where to find the rest)."""
    if not len(df):
        return dg.MetadataValue.md(empty)
    shown = df if max_rows is None else df.head(max_rows)
    text = shown.to_markdown(index=False)
    if len(df) > len(shown):
        text += f"\n\n… and {len(df) - len(shown)} more{more}"
    return dg.MetadataValue.md(text)


def table_metadata(con: duckdb.DuckDBPyConnection, key: str, where: str = "TRUE",
                   params: Params = (), preview_rows: int = 5) -> dict[str, Any]:
    """Runtime metadata: row count (of the rows this run wrote, per `where`) and a preview."""
    t = table(key)
    n = con.execute(f"SELECT count(*) FROM {t.qualified} WHERE {where}",
                    bind(where, params)).fetchone()[0]
    preview = con.execute(
        f"SELECT * FROM {t.qualified} WHERE {where} LIMIT {int(preview_rows)}",
        bind(where, params)).df()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(n)),
        "preview": md_table(preview, empty="_(no rows)_"),
    }


def period_metadata(con: duckdb.DuckDBPyConnection, key: str, periods: Sequence[object],
                    column: str = "period") -> dict[str, Any]:
    """`table_metadata` of the rows of `periods` (months, or years with `column="tahun"`)."""
    return table_metadata(con, key, f"list_contains($periods, {column})",
                          {"periods": list(periods)})
