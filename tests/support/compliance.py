"""Helpers shared by the compliance tests (no tests here): a tiny registry, kolab.yaml, and
submissions inserted straight into `clean.submission` (the clean layer is tested on its own)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import yaml

from kolab_pipeline import reference
from kolab_pipeline.config import Settings

FAS_HEADER = ("kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,"
              "tanggal_buka,tanggal_tutup,formulir,kode_lokal,is_synthetic")


def write_home(home: Path, facilities: list[tuple], config: dict | None = None,
               jejaring: list[tuple] | None = None) -> Settings:
    """Write registry/fasilitas.csv (tuples: kode, jenis, induk, kode_wilayah, buka, tutup,
    formulir), optional jejaring.csv and kolab.yaml; return the loaded Settings."""
    reg = home / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    lines = [FAS_HEADER]
    for kode, jenis, induk, wil, buka, tutup, forms in facilities:
        lines.append(f"{kode},Faskes {kode},{jenis},{induk or ''},{wil},{buka or ''},{tutup or ''},{forms},,1")
    (reg / "fasilitas.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if jejaring:
        rows = ["kode_faskes,kode_puskesmas_induk,formulir,berlaku_mulai,berlaku_sampai"]
        rows += [",".join(v or "" for v in r) for r in jejaring]
        (reg / "jejaring.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    if config:
        (home / "kolab.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return Settings.load(home)


def load(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    reference.load_registry(con, settings)


def submit(con: duckdb.DuckDBPyConnection, kode: str, period: str, form: str, received_at: str,
           version: int = 1, nil: bool = False, is_current: bool = True) -> None:
    """Insert one valid version into clean.submission; `received_at` is ISO 8601 with offset."""
    ts = datetime.fromisoformat(received_at)
    con.execute(
        "INSERT INTO clean.submission (submission_id, kode_faskes, period, form, version, is_current, "
        "received_at, received_source, is_nil_report, source_kind) VALUES (?, ?, ?, ?, ?, ?, ?, 'manifest', ?, 'file')",
        [f"{kode}|{period}|{form}|{version}", kode, period, form, version, is_current, ts, nil],
    )


def status_of(con: duckdb.DuckDBPyConnection, kode: str, period: str, form: str = "tb") -> dict:
    cur = con.execute("SELECT * FROM compliance.report_status WHERE kode_faskes = ? AND period = ? AND form = ?",
                      [kode, period, form])
    rows = cur.fetchall()
    assert len(rows) == 1, f"{kode} {period} {form}: {len(rows)} status rows"
    return dict(zip([d[0] for d in cur.description], rows[0], strict=True))
