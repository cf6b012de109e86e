"""Landing-folder helpers shared by the raw-layer tests: write a file, read back its rows and
verdict."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import openpyxl

from kolab_pipeline import raw
from kolab_pipeline.config import Settings

TB_HEADER = ("periode,kode_faskes,nama_faskes,tanggal_lapor,laporan_nihil,tb_skrining,"
             "tb_terduga_ditemukan")


def put(settings: Settings, rel: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = settings.paths.landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def file_of(con: duckdb.DuckDBPyConnection, rel: str) -> dict:
    df = con.execute("SELECT * FROM raw.landing_file WHERE source_path = ?", [rel]).df()
    assert len(df) == 1, f"{rel}: {len(df)} landing_file rows"
    return df.iloc[0].to_dict()


def xlsx_bytes(rows_by_sheet: dict[str, list[list[object]]],
               merge: dict[str, list[str]] | None = None) -> bytes:
    """A workbook with one sheet per key (rows appended as given), cells merged per `merge`."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in rows_by_sheet.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
        for rng in (merge or {}).get(name, []):
            ws.merge_cells(rng)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def reason(rel: str, rule: str, detail: str) -> str:
    return f"{rel}: {raw.rule_messages()[rule]} — {detail}"


PLAIN = (f"{TB_HEADER}\n2025-03,P3672010101,Puskesmas A,2025-04-03,,12,3\n"
         "2025-03,KP001,Klinik B,,,,0\n")
