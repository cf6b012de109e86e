"""The README's "Your own data" walkthrough, step by step, on a fresh KOLAB_HOME: `kolab init`
for Kota Cilegon, the registry / sasaran / kolab.yaml / receipt-log blocks of the README, templates
filled by the test, `kolab check` naming each planted problem, `kolab run` whose summary names the
late, missing and quarantined reports, and the answers where the README says they are.

Expected statuses (as_of 2025-04-30 WIB; due day 5 for network facilities, 10 for puskesmas;
cut-off = last day of M+1), 10 expected reports a month (2 puskesmas × tb, kia; 2 klinik × tb, kia;
2 TPMD × tb) × 3 months = 30:
- P3672030201 Puskesmas Cilegon, receipt log: Jan 02-08 on time ×2, Feb 03-12 late ×2 (2 days),
  Mar 04-09 on time ×2 → 4 on time, 2 late;
- P3672010101 Puskesmas Ciwandan: tb Jan 02-10 on time; tb Feb never → missing; tb Mar file not in
  the receipt log, file date 2025-05-02 > as_of → ignored → pending (cut-off 04-30 not passed),
  overdue; kia Q1 workbook received 04-09: Jan late, Feb late, Mar on time → 2 on time, 2 late,
  1 missing, 1 pending;
- KP36729001 Klinik Pratama Sehat (tanggal_lapor): tb Jan 02-04 on time, Feb 03-07 late, Mar row
  with the typo'd code quarantined → pending, overdue; kia nothing → Jan, Feb missing, Mar pending
  → 1 on time, 1 late, 2 missing, 2 pending;
- DR36729001 dr. Ani: three nil reports on time → 3 on time;
- KP36729002 Klinik Pratama Medika: nothing → 4 missing, 2 pending;
- DR36729002 dr. Budi: Jan 02-06 late (due 02-05); Feb missing; Mar pending → 1 late, 1 missing,
  1 pending.
Totals: on time 4 + 2 + 1 + 3 = 10; late 2 + 2 + 1 + 1 = 6; missing 1 + 2 + 4 + 1 = 8;
pending 1 + 2 + 2 + 1 = 6; 10 + 6 + 8 + 6 = 30.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from kolab_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_block(name: str) -> str:
    """The fenced block after `<!-- walkthrough: name -->` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- walkthrough: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", text,
                      re.S)
    assert found, f"README has no walkthrough block {name!r}"
    return found.group(1)


# --- filling the templates the way a clinic does -------------------------------------------------

TB = {"tb_skrining": 100, "tb_terduga_ditemukan": 10, "tb_terduga_diperiksa": 9,
      "tb_kasus_ditemukan": 2, "tb_kasus_ternotifikasi": 2, "tb_kasus_diobati": 2}
KIA_K1 = {"2025-01": 90, "2025-02": 100, "2025-03": 110}   # Puskesmas Cilegon: 300 in Q1


def kia(period: str, k1: int | None = None) -> dict:
    k1 = k1 if k1 is not None else KIA_K1[period]
    return {"kia_k1": k1, "kia_k4": k1 // 2, "kia_k6": k1 // 4}


def row(period: str, kode: str, nama: str, values: dict, tanggal: str = "",
        nihil: str = "") -> dict:
    return {"periode": period, "kode_faskes": kode, "nama_faskes": nama,
            "tanggal_lapor": tanggal, "laporan_nihil": nihil, **values}


def fill_csv(home: Path, form: str, rel: str, rows: list[dict]) -> Path:
    header = (home / "templates" / f"template_{form}.csv").read_text(encoding="utf-8").split(",")
    header = [h.strip() for h in header]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = home / "landing" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def fill_xlsx(home: Path, form: str, rel: str, rows: list[dict]) -> Path:
    wb = load_workbook(home / "templates" / f"template_{form}.xlsx")
    ws = wb[form]
    codes = [c.value for c in ws[1]]
    for r in rows:
        ws.append([r.get(c, None) if r.get(c, "") != "" else None for c in codes])
    path = home / "landing" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def land_reports(home: Path) -> None:
    cil, ciw = ("P3672030201", "Puskesmas Cilegon"), ("P3672010101", "Puskesmas Ciwandan")
    for period in ("2025-01", "2025-02", "2025-03"):
        fill_csv(home, "tb", f"cilegon/tb_{period}.csv", [row(period, *cil, TB)])
        fill_csv(home, "kia", f"cilegon/kia_{period}.csv", [row(period, *cil, kia(period))])
    fill_csv(home, "tb", "ciwandan/tb_2025-01.csv", [row("2025-01", *ciw, TB)])
    late = fill_csv(home, "tb", "ciwandan/tb_2025-03.csv", [row("2025-03", *ciw, TB)])
    arrived = datetime.fromisoformat("2025-05-02T10:00:00+07:00").timestamp()
    os.utime(late, (arrived, arrived))   # reached the folder on 2 May, not in the receipt log
    fill_xlsx(home, "kia", "ciwandan/kia_2025Q1.xlsx",
              [row(p, *ciw, kia(p, 50)) for p in ("2025-01", "2025-02", "2025-03")])
    sehat = "Klinik Pratama Sehat"
    fill_xlsx(home, "tb", "klinik_sehat/tb_2025Q1.xlsx", [
        row("2025-01", "KP36729001", sehat, {"tb_skrining": 20, "tb_terduga_ditemukan": 2},
            "2025-02-04"),
        row("2025-02", "KP36729001", sehat, {"tb_skrining": 25, "tb_terduga_ditemukan": 3},
            "2025-03-07"),
        row("2025-03", "KP3672901", sehat, {"tb_skrining": 30, "tb_terduga_ditemukan": 3},
            "2025-04-03"),   # the typo'd code
    ])
    fill_csv(home, "tb", "dr_ani/tb_2025Q1.csv", [
        row(p, "DR36729001", "dr. Ani Lestari", {}, t, "1")
        for p, t in (("2025-01", "2025-02-03"), ("2025-02", "2025-03-03"),
                     ("2025-03", "2025-04-02"))])
    fill_csv(home, "tb", "dr_budi/tb_2025-01.csv",
             [row("2025-01", "DR36729002", "dr. Budi Santoso", {"tb_skrining": 12},
                  "2025-02-06")])


def fill_sasaran(home: Path) -> None:
    """The README's rows set `nilai` and `metode` of the matching skeleton rows."""
    path = home / "registry" / "sasaran.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    given = {(r["tahun"], r["kode_unit"], r["sasaran"]): r
             for r in csv.DictReader(io.StringIO(readme_block("registry/sasaran.csv rows")))}
    for r in rows:
        hit = given.pop((r["tahun"], r["kode_unit"], r["sasaran"]), None)
        if hit:
            r["nilai"], r["metode"] = hit["nilai"], hit["metode"]
    assert not given, f"README sasaran rows with no skeleton row: {given}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def kolab(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, list[str]]:
    rc = main(["--home", str(home), *argv])
    out = capsys.readouterr()
    if os.environ.get("WALK_DUMP"):   # a folder: each command's output, to refresh the README
        with Path(os.environ["WALK_DUMP"], argv[0]).open("a", encoding="utf-8") as fh:
            fh.write(out.out + out.err)
    return rc, (out.out + out.err).splitlines()


def assert_shown(block: str, output: list[str]) -> None:
    """Every line of a README output block is a line of the real output (`…` lines: skipped)."""
    got = [line.rstrip() for line in output]
    for line in block.splitlines():
        if line.strip() and line.strip() != "…":
            assert line.rstrip() in got, f"README line not in the output:\n{line}\n---\n" + \
                "\n".join(got)


# --- the walkthrough ---------------------------------------------------------------------------

def test_your_own_data_walkthrough(kolab_home: Path, capsys: pytest.CaptureFixture[str]):
    home = kolab_home
    # 1. kolab init
    rc, out = kolab(capsys, home, "init", "--kabkota", "36.72", "--tahun", "2025")
    assert rc == 0, out
    starter = (home / "registry" / "fasilitas.csv").read_text(encoding="utf-8")
    assert len(starter.strip().splitlines()) == 1 + 8             # header + 8 puskesmas
    assert "P3672030201,Puskesmas Cilegon,puskesmas,,36.72.02,,,tb;ptm;kia;imun," in starter
    assert "timezones:\n  # Local time of Kota Cilegon: WIB." in (home / "kolab.yaml").read_text()
    assert sorted(p.name for p in (home / "templates").iterdir()) == sorted(
        f"template_{f}.{x}" for f in ("tb", "ptm", "kia", "imun") for x in ("csv", "xlsx"))

    # 2.–5. the README's registry, sasaran, as_of and receipt log, with three planted mistakes
    registry = readme_block("registry/fasilitas.csv")
    planted = (registry.replace("P3672030201,Puskesmas Cilegon,puskesmas,,36.72.02",
                                "P3672030201,Puskesmas Cilegon,puskesmas,,36.72.03")
               .replace("DR36729002,dr. Budi Santoso,tpmd,P3672010101",
                        "DR36729002,dr. Budi Santoso,tpmd,"))
    (home / "registry" / "fasilitas.csv").write_text(planted + "\n", encoding="utf-8")
    fill_sasaran(home)
    as_of = readme_block("kolab.yaml reporting").split("as_of:")[1].strip()
    conf = home / "kolab.yaml"
    conf.write_text(conf.read_text().replace("  as_of: null", f"  as_of: {as_of}"))
    log = readme_block("landing/_diterima.csv")
    (home / "landing").mkdir(exist_ok=True)
    (home / "landing" / "_diterima.csv").write_text(
        log.replace("cilegon/tb_2025-01.csv,", "tb_2025-01.csv,") + "\n", encoding="utf-8")
    land_reports(home)

    # kolab init again keeps what was edited
    rc, out = kolab(capsys, home, "init", "--kabkota", "36.72", "--tahun", "2025")
    assert "kept    registry/fasilitas.csv: edited since kolab init wrote it" in out
    assert "kept    kolab.yaml: edited since kolab init wrote it" in out
    assert (home / "registry" / "fasilitas.csv").read_text() == planted + "\n"

    # 6. kolab check: each planted problem by name, exit 1 for the error
    rc, out = kolab(capsys, home, "check")
    text = "\n".join(out)
    assert rc == 1
    assert ("registry/fasilitas.csv, row 2, column kode_wilayah: [kecamatan_mismatch] "
            "P3672030201 Puskesmas Cilegon") in text and "write 36.72.02" in text
    assert ("error   registry/fasilitas.csv, row 7, column kode_puskesmas_induk: "
            "[induk_missing] DR36729002 dr. Budi Santoso") in text
    assert ("landing/_diterima.csv, row 2, column file: [receipt_log_missing_file] "
            "'tb_2025-01.csv'") in text and "did you mean 'cilegon/tb_2025-01.csv'?" in text
    assert "landing/ciwandan/tb_2025-03.csv: [receipt_from_file_date]" in text
    assert ("landing/ciwandan/tb_2025-03.csv, row 2: [received_after_as_of] P3672010101 "
            "Puskesmas Ciwandan tb 2025-03: received 2025-05-02 10:00 WIB") in text
    assert ("landing/klinik_sehat/tb_2025Q1.xlsx, row 5, column kode_faskes: [row_quarantined] "
            "V01") in text and "did you mean KP36729001 (Klinik Pratama Sehat)?" in text
    assert "[sasaran_missing] tahun 2025: no " in text and "P3672010101 Puskesmas Ciwandan" in text
    assert_shown(readme_block("kolab check"), out)

    # fix the three mistakes; warnings alone → exit 0
    (home / "registry" / "fasilitas.csv").write_text(registry + "\n", encoding="utf-8")
    (home / "landing" / "_diterima.csv").write_text(log + "\n", encoding="utf-8")
    rc, out = kolab(capsys, home, "check")
    assert rc == 0, "\n".join(out)
    assert not any("[kecamatan_mismatch]" in line or "[induk_missing]" in line
                   or "[receipt_log_missing_file]" in line for line in out)

    # 7. kolab run: the summary names late, missing, quarantined and ignored reports
    rc, out = kolab(capsys, home, "run")
    assert rc == 0, "\n".join(out)
    assert_shown(readme_block("kolab run"), out)
    run_text = "\n".join(out)
    assert "30 expected, 16 received (10 on time, 6 late), 8 missing, 6 pending" in run_text

    # 8. where each answer is
    con = duckdb.connect(str(home / "kolab.duckdb"), read_only=True)
    try:
        statuses = dict(con.execute("SELECT status, count(*) FROM compliance.report_status "
                                    "GROUP BY ALL").fetchall())
        assert statuses == {"on_time": 10, "late": 6, "missing": 8, "pending": 6}
        overdue = con.execute("SELECT count(*) FROM compliance.report_status "
                              "WHERE status = 'pending' AND overdue").fetchone()[0]
        assert overdue == 6   # every March report not in by as_of: due 04-05 / 04-10 < 04-30
        rate = con.execute(
            "SELECT period_type, received, expected, round(completeness_pct, 1) "
            "FROM compliance.reporting_rate WHERE unit_level = 'kabkota' AND unit_code = '36.72' "
            "AND jenis_faskes = 'semua' AND form = 'semua' AND period = '2025-03' ORDER BY 1"
        ).fetchall()
        # month: Cilegon tb + kia, Ciwandan kia, dr. Ani = 4 of 10 = 40.0 %;
        # ytd: 10 on time + 6 late = 16 of 30 = 53.3 %
        assert rate == [("month", 4, 10, 40.0), ("ytd", 16, 30, 53.3)]
        k1 = con.execute(
            "SELECT numerator, denominator, value FROM indicators.indicator_value "
            "WHERE indicator_code = 'KIA_K1' AND unit_level = 'puskesmas_network' "
            "AND unit_code = 'P3672030201' AND period = '2025-03' AND period_type = 'ytd'"
        ).fetchone()
        assert k1 == (300, 1200, pytest.approx(25.0))   # (90 + 100 + 110) / 1200 × 100
        assert con.execute("SELECT count(*) FROM clean.quarantine").fetchone()[0] == 1
        q = con.execute(
            "SELECT n_quarantined_rows, n_quarantined_file_rows FROM evaluation.scorecard "
            "WHERE kode_jejaring = 'P3672030201' AND period = '2025-03' "
            "AND period_type = 'month'").fetchone()
        # the typo'd code resolves to no facility (0 by code); its file is Klinik Sehat's → 1
        assert q == (0, 1)
        latest = con.execute("SELECT max(as_of_period) FROM evaluation.followup").fetchone()[0]
        assert latest == "2025-03"
    finally:
        con.close()
    book = load_workbook(home / "exports" / "evaluasi_36.72_2025-03.xlsx", read_only=True)
    sheet = list(book["Ringkasan"].values)
    header = next(r for r in sheet if r and "Baris dikarantina" in r)
    cilegon = next(r for r in sheet if r and r[0] == "P3672030201")
    assert cilegon[header.index("Baris dikarantina")] == 1
    assert (home / "reports" / "36.72" / "2025-03.html").exists()
