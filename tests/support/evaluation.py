"""A small hand-built kab/kota for the evaluation tests (no tests here: shared seed data).

Kota Cilegon 36.72, two kecamatan, two puskesmas networks:

- P0001 (kecamatan 36.72.01): the puskesmas, klinik KP01, TPMD DR01 — and a malicious name on
  KP01 to prove the Excel export neutralises formulas.
- P0002 (kecamatan 36.72.02): the puskesmas only.

Periods 2025-01 and 2025-02. Rows are inserted straight into the input tables (the compliance and
indicator layers are built by other modules), with the numbers the tests work out by hand.
"""

from __future__ import annotations

import duckdb

DQ_COLS = ("(unit_level, unit_code, period, subject, method, value, score, threshold, reference,"
           " message)")
FU_COLS = ("(kode_faskes, nama_faskes, jenis_faskes, kode_puskesmas_induk, nama_puskesmas_induk,"
           " kode_kabkota, form, as_of_period, months_missing, months_late, consecutive_missing,"
           " missing_periods, last_received_period, last_received_at)")

MALICIOUS_NAMES = ['=HYPERLINK("http://x","klik")', "+1", "-1+1", "@SUM(A1)"]

FACILITIES = [
    # kode, nama, jenis, induk, jejaring, kec, kabkota
    ("P0001", "Puskesmas Cilegon", "puskesmas", None, "P0001", "36.72.01", "36.72"),
    ("KP01", MALICIOUS_NAMES[0], "klinik_pratama", "P0001", "P0001", "36.72.01", "36.72"),
    ("DR01", "dr. Ani", "tpmd", "P0001", "P0001", "36.72.01", "36.72"),
    ("P0002", "Puskesmas Ciwandan", "puskesmas", None, "P0002", "36.72.02", "36.72"),
]


def seed(con: duckdb.DuckDBPyConnection) -> None:
    """Insert the reference, compliance, indicator and quality rows described in the tests."""
    for kode, level, parent, nama in [("36.72", "kabkota", "36", "KOTA CILEGON"),
                                      ("36.72.01", "kecamatan", "36.72", "Cilegon"),
                                      ("36.72.02", "kecamatan", "36.72", "Ciwandan")]:
        con.execute("INSERT INTO reference.wilayah (kode, level, parent_kode, kode_prov,"
                    " kode_kabkota, nama) VALUES (?, ?, ?, '36', '36.72', ?)",
                    [kode, level, parent, nama])
    for kode, nama, jenis, induk, jej, kec, kab in FACILITIES:
        con.execute(
            "INSERT INTO reference.facility (kode_faskes, nama_faskes, jenis_faskes,"
            " kode_puskesmas_induk, kode_jejaring, kode_kec, kode_kabkota, kode_prov, formulir,"
            " reporting_level, timezone, is_synthetic)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, '36', ['tb','ptm','kia','imun'], ?, 'Asia/Jakarta',"
            " true)",
            [kode, nama, jenis, induk, jej, kec, kab,
             "pkm_to_dinkes" if jenis == "puskesmas" else "network_to_pkm"])
    con.execute("INSERT INTO reference.facility_alias VALUES ('KP1', 'KP01', 'kode_lokal')")

    # compliance.reporting_rate (form 'semua'): unit, jenis, period, period_type,
    # expected, received, on_time, late, missing, pending
    rates = [
        # P0001 network, 2025-02 month: puskesmas 4/4 on time 3; klinik 4 expected, 3 received,
        # 2 on time; tpmd 2 expected, 1 received, 0 on time; all = 10 / 8 / 5.
        ("puskesmas_network", "P0001", "puskesmas", "2025-02", "month", 4, 4, 3, 1, 0, 0),
        ("puskesmas_network", "P0001", "klinik_pratama", "2025-02", "month", 4, 3, 2, 1, 1, 0),
        ("puskesmas_network", "P0001", "tpmd", "2025-02", "month", 2, 1, 0, 1, 1, 0),
        ("puskesmas_network", "P0001", "semua", "2025-02", "month", 10, 8, 5, 3, 2, 0),
        # ytd Jan+Feb: all = 20 expected, 17 received, 12 on time
        ("puskesmas_network", "P0001", "semua", "2025-02", "ytd", 20, 17, 12, 5, 3, 0),
        ("puskesmas_network", "P0001", "semua", "2025-01", "month", 10, 9, 7, 2, 1, 0),
        # P0002: puskesmas only, 4 expected, 4 received, 4 on time
        ("puskesmas_network", "P0002", "puskesmas", "2025-02", "month", 4, 4, 4, 0, 0, 0),
        ("puskesmas_network", "P0002", "semua", "2025-02", "month", 4, 4, 4, 0, 0, 0),
        ("puskesmas_network", "P0002", "semua", "2025-01", "month", 4, 3, 3, 0, 1, 0),
        # kab/kota and kecamatan
        ("kabkota", "36.72", "semua", "2025-02", "month", 14, 12, 9, 3, 2, 0),
        ("kecamatan", "36.72.01", "semua", "2025-02", "month", 10, 8, 5, 3, 2, 0),
        ("facility", "P0001", "semua", "2025-02", "month", 4, 4, 3, 1, 0, 0),
        ("facility", "KP01", "semua", "2025-02", "month", 4, 3, 2, 1, 1, 0),
        ("facility", "P0002", "semua", "2025-01", "month", 4, 3, 3, 0, 1, 0),
    ]
    for r in rates:
        exp, rec, ont = r[5], r[6], r[7]
        con.execute(
            "INSERT INTO compliance.reporting_rate (unit_level, unit_code, jenis_faskes, period,"
            " period_type, form, expected, received, on_time, late, missing, pending, unexpected,"
            " completeness_pct, timeliness_pct)"
            " VALUES (?, ?, ?, ?, ?, 'semua', ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            [*r, 100.0 * rec / exp, 100.0 * ont / exp])

    # indicators.indicator_value: KIA_K1 for P0001 (month and ytd, PWS) and kab/kota; IMUN_IDL
    # for P0001 month. The other key indicators are not computed (→ NULL).
    pws = 95 * 2 / 12
    net = "puskesmas_network"
    ivs = [
        # code, program, level, unit, period, ptype, num, den, value, target, pws, attainment
        # month: 30 K1 / 600 bumil × 100 = 5.0 %; target 95 → 5.0 / 95 × 100 = 5.263…
        ("KIA_K1", "KIA", net, "P0001", "2025-02", "month", 30, 600, 5.0, 95, None,
         5.0 / 95 * 100),
        # ytd Jan–Feb: 57 / 600 × 100 = 9.5 %; PWS target = 95 × 2/12 = 15.8333;
        # 9.5 / 15.8333 × 100 = 60.0
        ("KIA_K1", "KIA", net, "P0001", "2025-02", "ytd", 57, 600, 9.5, 95, pws, 60.0),
        ("IMUN_IDL", "Imunisasi", net, "P0001", "2025-02", "month", 12, 480, 2.5, 90, None,
         2.5 / 90 * 100),
        ("KIA_K1", "KIA", "kabkota", "36.72", "2025-02", "ytd", 100, 1000, 10.0, 95, pws,
         10 / pws * 100),
        ("KIA_K1", "KIA", net, "P0002", "2025-02", "ytd", 43, 400, 10.75, 95, pws,
         10.75 / pws * 100),
    ]
    for r in ivs:
        con.execute(
            "INSERT INTO indicators.indicator_value (indicator_code, program, unit_level,"
            " unit_code, period, period_type, numerator, denominator, factor, value, target,"
            " pws_target, attainment, denominator_method, above_100, n_facilities)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 100, ?, ?, ?, ?, 'sasaran', false, 1)", list(r))

    # indicators.network_contribution, P0001 month 2025-02:
    #   KIA kia_k1: puskesmas 30, klinik 10 → total 40
    #   TB tb_kasus_ternotifikasi: puskesmas 6, tpmd 2, klinik 2 → total 10
    contrib = [("KIA", "kia_k1", "puskesmas", 30, 40), ("KIA", "kia_k1", "klinik_pratama", 10, 40),
               ("TB", "tb_kasus_ternotifikasi", "puskesmas", 6, 10),
               ("TB", "tb_kasus_ternotifikasi", "tpmd", 2, 10),
               ("TB", "tb_kasus_ternotifikasi", "klinik_pratama", 2, 10)]
    for prog, de, jenis, vol, tot in contrib:
        con.execute("INSERT INTO indicators.network_contribution (unit_level, unit_code, period,"
                    " period_type, program, data_element, jenis_faskes, volume, total, share_pct)"
                    " VALUES ('puskesmas_network', 'P0001', '2025-02', 'month', ?, ?, ?, ?, ?, ?)",
                    [prog, de, jenis, vol, tot, 100.0 * vol / tot])

    # clean.validation_flag: 2 in 2025-02 for KP01, 1 in 2025-01 for P0001, 1 for P0002 in 2025-02
    for kode, period in [("KP01", "2025-02"), ("KP01", "2025-02"), ("P0001", "2025-01"),
                         ("P0002", "2025-02")]:
        con.execute("INSERT INTO clean.validation_flag (kode_faskes, period, form, rule_id,"
                    " severity, reason_id)"
                    " VALUES (?, ?, 'kia', 'W01', 'warning', 'nilai tidak wajar')",
                    [kode, period])
    # clean.quarantine: 'kp-1' resolves through the alias KP1 → KP01 (P0001 network);
    # an unknown code and a row without period are not attributable.
    for kode, period, value in [("kp-1", "2025-02", "=cmd|' /C calc'!A0"),
                                ("DR01", "2025-02", "-5"), ("XX99", "2025-02", "x"),
                                ("P0001", None, "Maret?")]:
        con.execute("INSERT INTO clean.quarantine (file_id, source_path, row_number, rule_id,"
                    " severity, column_name, value_text, reason_id, reason_en, kode_faskes, period,"
                    " form)"
                    " VALUES ('f1', 'rekap.csv', 3, 'V06', 'error', 'kia_k1', ?, 'nilai negatif',"
                    " 'negative value', ?, ?, 'kia')", [value, kode, period])
    # indicators.dq_flag: one facility flag (DR01) and one network flag, 2025-02
    con.execute("INSERT INTO indicators.dq_flag " + DQ_COLS + " VALUES ('facility', 'DR01',"
                " '2025-02', 'kia_k1', 'outlier_extreme_sd', 90, 3.4, 3, 20, 'pencilan ekstrem')")
    con.execute("INSERT INTO indicators.dq_flag " + DQ_COLS + " VALUES ('puskesmas_network',"
                " 'P0001', '2025-02', 'kia_k1/imun_dpt1', 'related_indicators', 1.4, 1.4, 1.1,"
                " 1.0, 'tidak konsisten')")
    # evaluation.followup: KP01 kia missing 2 months, chased by P0001
    con.execute(
        "INSERT INTO evaluation.followup " + FU_COLS + " VALUES ('KP01', ?, 'klinik_pratama',"
        " 'P0001', 'Puskesmas Cilegon', '36.72', 'kia', '2025-02', 1, 1, 1, '2025-02', '2025-01',"
        " TIMESTAMPTZ '2025-02-04 03:00:00+00')", [MALICIOUS_NAMES[0]])
    con.execute(
        "INSERT INTO evaluation.followup " + FU_COLS + " VALUES ('DR01', 'dr. Ani', 'tpmd',"
        " 'P0001', 'Puskesmas Cilegon', '36.72', 'tb', '2025-02', 2, 0, 2, '2025-01, 2025-02',"
        " NULL, NULL)")


def seed_report_status(con: duckdb.DuckDBPyConnection, period: str = "2025-02") -> None:
    """compliance.report_status rows (kia form) for every facility of the seed."""
    statuses = {"P0001": "on_time", "KP01": "late", "DR01": "missing", "P0002": "on_time"}
    for kode, nama, jenis, induk, jej, kec, kab in FACILITIES:
        del nama
        st = statuses[kode]
        con.execute(
            "INSERT INTO compliance.report_status (kode_faskes, period, form, expected, status,"
            " overdue, is_nil_report, due_date, received_local_date, days_late, n_versions,"
            " jenis_faskes, kode_puskesmas_induk, kode_jejaring, kode_kec, kode_kabkota, kode_prov)"
            " VALUES (?, ?, 'kia', true, ?, false, false, DATE '2025-03-05', ?, ?, ?, ?, ?, ?,"
            " ?, ?, '36')",
            [kode, period, st,
             None if st == "missing" else "2025-03-07" if st == "late" else "2025-03-04",
             None if st == "missing" else 2 if st == "late" else 0, 0 if st == "missing" else 1,
             jenis, induk, jej, kec, kab])
