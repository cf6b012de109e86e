"""Shared builders for the clean-layer tests: a tiny registry and raw rows inserted with SQL.

The raw layer is built separately; these tests craft `raw.*` rows directly so each case is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import pytest

from kolab_pipeline import reference
from kolab_pipeline.config import Settings

_HEADER = ("kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,tanggal_buka,"
           "tanggal_tutup,formulir,kode_lokal,is_synthetic")
FASILITAS = _HEADER + """
P3672010201,Puskesmas Cibeber,puskesmas,,36.72.01,,,tb;ptm;kia;imun,,0
KP3672001,Klinik Pratama Sehat,klinik_pratama,P3672010201,36.72.01,,,tb;ptm;kia;imun,KLSEHAT,1
DR3672001,Praktik dr. Budi,tpmd,P3672010201,36.72.01,,,tb;ptm,,1
KP6471001,Klinik Balikpapan Baru,klinik_pratama,P6471010101,64.71.01,,,tb;ptm;kia;imun,,1
"""

# elements used in most tests, per form
FORM_ELEMENTS = {
    "tb": ["tb_skrining", "tb_terduga_ditemukan", "tb_terduga_diperiksa", "tb_terduga_dirujuk",
           "tb_kasus_ditemukan"],
    "kia": ["kia_k1", "kia_k4", "kia_k6", "kia_kn1", "kia_kn_lengkap", "kia_kf1", "kia_kf_lengkap",
            "kia_lahir_hidup", "kia_kematian_neonatal"],
    "imun": ["imun_dpt1", "imun_dpt3", "imun_mr1", "imun_idl"],
    "ptm": ["ht_skrining", "dm_skrining"],
}


def setup_reference(con: duckdb.DuckDBPyConnection, settings: Settings,
                    fasilitas: str = FASILITAS) -> None:
    """Registry + catalogue (the wilayah load is not needed by the clean layer)."""
    reg = settings.paths.registry
    reg.mkdir(parents=True, exist_ok=True)
    (reg / "fasilitas.csv").write_text(fasilitas, encoding="utf-8")
    reference.load_catalogues(con)
    reference.load_registry(con, settings)


class Raw:
    """Insert landing files, raw rows and cells with parameterised SQL."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def file(self, name: str, received_at: str = "2025-04-03T10:00:00+07:00",
             status: str = "ingested", reject_rule: str | None = None,
             reject_reason: str | None = None, received_source: str = "manifest") -> str:
        file_id = f"sha_{name}"
        self.con.execute(
            """INSERT INTO raw.landing_file (file_id, source_kind, source_path, file_format,
                   size_bytes, received_at, received_source, status, reject_rule, reject_reason,
                   run_id)
               VALUES ($file_id, 'file', $name, 'csv', 100, $received_at, $received_source,
                       $status, $reject_rule, $reject_reason, 'test')""",
            {"file_id": file_id, "name": name,
             "received_at": datetime.fromisoformat(received_at),
             "received_source": received_source, "status": status, "reject_rule": reject_rule,
             "reject_reason": reject_reason})
        return file_id

    def row(self, file_name: str, row_number: int, form: str | None, periode: str | None,
            kode: str | None, values: dict[str, str | None] | None = None, *,
            nama: str | None = None, tanggal_lapor: str | None = None, nihil: str | None = None,
            sheet: str = "", received_at: str | None = None, source_kind: str = "file",
            lingkup: str | None = None) -> str:
        file_id = f"sha_{file_name}"
        if received_at is None:
            received = self.con.execute(
                "SELECT received_at FROM raw.landing_file WHERE file_id = ?",
                [file_id]).fetchone()[0]
        else:
            received = datetime.fromisoformat(received_at)
        raw_row_id = f"{file_id}:{sheet}:{row_number}"
        self.con.execute(
            """INSERT INTO raw.submission_row (raw_row_id, file_id, source_kind, source_path, sheet,
                   row_number, form, periode, kode_faskes, nama_faskes, tanggal_lapor,
                   laporan_nihil, lingkup_laporan, received_at, run_id)
               VALUES ($raw_row_id, $file_id, $source_kind, $file_name, $sheet, $row_number,
                       $form, $periode, $kode, $nama, $tanggal_lapor, $nihil, $lingkup,
                       $received, 'test')""",
            {"raw_row_id": raw_row_id, "file_id": file_id, "source_kind": source_kind,
             "file_name": file_name, "sheet": sheet, "row_number": row_number, "form": form,
             "periode": periode, "kode": kode, "nama": nama, "tanggal_lapor": tanggal_lapor,
             "nihil": nihil, "lingkup": lingkup, "received": received})
        for i, (element, text) in enumerate((values or {}).items()):
            self.con.execute(
                "INSERT INTO raw.submission_cell (raw_row_id, column_index, header, data_element, "
                "value_text) VALUES (?, ?, ?, ?, ?)",
                [raw_row_id, 5 + i, element, None if element.startswith("?") else element, text])
        return raw_row_id


@pytest.fixture(name="ref_con")
def ref_con_fixture(con: duckdb.DuckDBPyConnection,
                    settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The temp warehouse with the small registry and the catalogue loaded."""
    setup_reference(con, settings)
    yield con


@pytest.fixture(name="raw")
def raw_fixture(ref_con: duckdb.DuckDBPyConnection) -> Raw:
    return Raw(ref_con)


def q(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()
