"""Metadata every asset and check shows the same way in the Dagster UI: grain and column schema
from the table contract, row counts, previews, markdown tables (Indonesian headings and "… dan N
lainnya" when shortened) and the names of the units a check lists."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from kolab_pipeline import labels
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


def md_table(df: pd.DataFrame, empty: str = "_(tidak ada)_", max_rows: int | None = None,
             more: str = "") -> dg.MetadataValue:
    """A DataFrame as markdown metadata: `empty` when it has no rows, at most `max_rows` rows
    followed by "… dan N lainnya" (plus `more`, e.g. where to find the rest)."""
    if not len(df):
        return dg.MetadataValue.md(empty)
    shown = df if max_rows is None else df.head(max_rows)
    align = ["right" if _numeric_text(shown[c]) else "left" for c in shown.columns]
    text = shown.to_markdown(index=False, disable_numparse=True, colalign=align)
    if len(df) > len(shown):
        text += f"\n\n… dan {labels.number(len(df) - len(shown))} lainnya{more}"
    return dg.MetadataValue.md(text)


# A number as text, Indonesian style ("1.234", "97,5", "−2") or "–" for none: right-aligned.
_NUMBER_TEXT = re.compile(r"^(?:[−-]?\d{1,3}(?:\.\d{3})*(?:,\d+)?|–)$")


def _numeric_text(column: pd.Series) -> bool:
    """A column of numbers, or of numbers written as text the Indonesian way (`labels.number`);
    codes (strings of digits such as `36.72`, or with leading zeros) are not numbers."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return True
    values = [v for v in column if isinstance(v, str) and v]
    return bool(values) and all(_NUMBER_TEXT.match(v) for v in values) and any(
        v != "–" for v in values)


# The name of a unit by its level: a facility or a puskesmas network (its puskesmas) from the
# registry, a kecamatan, kab/kota or provinsi from the Kemendagri list; the code when unknown.
UNIT_NAMES_SQL = """
    SELECT coalesce(fac.nama_faskes, wil.nama, unit.code) AS nama
      FROM (SELECT unnest($levels) AS level, unnest($codes) AS code,
                   unnest(range(len($codes))) AS position) AS unit
      LEFT JOIN reference.facility AS fac
             ON unit.level IN ('facility', 'puskesmas_network') AND fac.kode_faskes = unit.code
      LEFT JOIN reference.wilayah AS wil
             ON unit.level IN ('kecamatan', 'kabkota', 'provinsi') AND wil.kode = unit.code
     ORDER BY unit.position"""


def unit_names(con: duckdb.DuckDBPyConnection, levels: Sequence[str],
               codes: Sequence[str | None]) -> list[str]:
    """The name of each unit (`levels[i]`, `codes[i]`): see `UNIT_NAMES_SQL`; "" for no code."""
    if not len(codes):
        return []
    rows = con.execute(UNIT_NAMES_SQL, {"levels": list(levels),
                                        "codes": [c or "" for c in codes]}).fetchall()
    return [name if code else "" for (name,), code in zip(rows, codes, strict=True)]


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
