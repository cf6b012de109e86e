"""Helpers shared by the compliance tests (no tests here): a tiny registry, kolab.yaml, and
submissions inserted straight into `clean.submission` (the clean layer is tested on its own)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import yaml

from kolab_pipeline import compliance, reference
from kolab_pipeline.config import Settings

FAS_HEADER = ("kode_faskes,nama_faskes,jenis_faskes,kode_puskesmas_induk,kode_wilayah,"
              "tanggal_buka,tanggal_tutup,formulir,kode_lokal,is_synthetic")
KEC1, KEC2 = "36.72.01.1001", "36.72.02.1001"
NETWORK_AS_OF = datetime.fromisoformat("2025-01-12T12:00:00+07:00")
NETWORK_PERIODS = ["2024-10", "2024-11", "2024-12"]


def write_home(home: Path, facilities: list[tuple], config: dict | None = None,
               jejaring: list[tuple] | None = None) -> Settings:
    """Write registry/fasilitas.csv (tuples: kode, jenis, induk, kode_wilayah, buka, tutup,
    formulir), optional jejaring.csv and kolab.yaml; return the loaded Settings."""
    reg = home / "registry"
    reg.mkdir(parents=True, exist_ok=True)
    lines = [FAS_HEADER]
    for kode, jenis, induk, wil, buka, tutup, forms in facilities:
        lines.append(f"{kode},Faskes {kode},{jenis},{induk or ''},{wil},{buka or ''},"
                     f"{tutup or ''},{forms},,1")
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
        "INSERT INTO clean.submission (submission_id, kode_faskes, period, form, version, "
        "is_current, received_at, received_source, is_nil_report, source_kind) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 'manifest', ?, 'file')",
        [f"{kode}|{period}|{form}|{version}", kode, period, form, version, is_current, ts, nil],
    )


def status_of(con: duckdb.DuckDBPyConnection, kode: str, period: str, form: str = "tb") -> dict:
    cur = con.execute("SELECT * FROM compliance.report_status "
                      "WHERE kode_faskes = ? AND period = ? AND form = ?", [kode, period, form])
    rows = cur.fetchall()
    assert len(rows) == 1, f"{kode} {period} {form}: {len(rows)} status rows"
    return dict(zip([d[0] for d in cur.description], rows[0], strict=True))


def network_home(con: duckdb.DuckDBPyConnection, home: Path) -> duckdb.DuckDBPyConnection:
    """Compliance of NETWORK_PERIODS at NETWORK_AS_OF for a small registry:
    P1 network (kec 36.72.01): P1 tb+ptm, K1 tb, T1 tb; P2 (kec 36.72.02) tb.
    October 2024: P1 tb and P2 tb on time, the rest missing.
    November 2024: P1 tb on time, P1 ptm late, K1 tb on time, T1 tb missing, P2 tb missing,
    T1 kia unexpected. December 2024: nothing yet (pending, overdue at NETWORK_AS_OF)."""
    settings = write_home(home, [
        ("P1", "puskesmas", None, KEC1, None, None, "tb;ptm"),
        ("K1", "klinik_pratama", "P1", KEC1, None, None, "tb"),
        ("T1", "tpmd", "P1", KEC1, None, None, "tb"),
        ("P2", "puskesmas", None, KEC2, None, None, "tb"),
    ])
    load(con, settings)
    submit(con, "P1", "2024-10", "tb", "2024-11-08T09:00:00+07:00")
    submit(con, "P2", "2024-10", "tb", "2024-11-09T09:00:00+07:00")
    submit(con, "P1", "2024-11", "tb", "2024-12-10T20:00:00+07:00")
    submit(con, "P1", "2024-11", "ptm", "2024-12-11T08:00:00+07:00")
    submit(con, "K1", "2024-11", "tb", "2024-12-03T08:00:00+07:00")
    submit(con, "T1", "2024-11", "kia", "2024-12-03T08:00:00+07:00")
    compliance.run_compliance(con, settings, NETWORK_PERIODS, as_of=NETWORK_AS_OF)
    return con
