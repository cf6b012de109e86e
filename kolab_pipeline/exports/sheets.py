"""The sheets of the Excel workbook per kab/kota × month: title, columns, and the query of rows.

Every query takes `$kabs` and `$tzs` (aligned lists: kab/kota codes and their IANA time zones),
`$p` (the month) and, where it judges indicators, `$ind_codes` / `$ind_dirs` (catalogue
directions). Its first column is the kab/kota the row belongs to (not written); rows are ordered
by it first, so one query serves a batch of workbooks. A column with a `vocab` shows the
Indonesian label of the code it holds (`labels.label`); codes stay in their own "Kode" columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kolab_pipeline import labels
from kolab_pipeline.judgement import meets_sql

PCT = "0.0%"
INT = "#,##0"
DEC = "#,##0.0"
DATE = "yyyy-mm-dd"
DATETIME = "yyyy-mm-dd hh:mm"


@dataclass(frozen=True)
class Col:
    header: str          # Indonesian header
    fmt: str | None = None
    width: int = 14
    vocab: str | None = None   # labels kind: the cell shows the label of the code


@dataclass(frozen=True)
class Sheet:
    """One sheet: its title, its columns, and the query of its rows (optionally reshaped per row
    by `transform`, in the process that reads them)."""

    title: str
    sql: str
    columns: tuple[Col, ...]
    transform: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None


# The kab/kota of a query with each one's time zone (`$kabs`, `$tzs`: aligned lists).
_KABS = "(SELECT unnest($kabs::VARCHAR[]) AS kab, unnest($tzs::VARCHAR[]) AS tz)"
# Puskesmas networks of those kab/kota: a network belongs to the kab/kota of its puskesmas.
_NETWORKS = (f"(SELECT DISTINCT f.kode_faskes, f.kode_kabkota AS kab FROM reference.facility f "
             f"SEMI JOIN {_KABS} k ON k.kab = f.kode_kabkota WHERE f.jenis_faskes = 'puskesmas')")
_DIRECTIONS = ("(SELECT unnest($ind_codes::VARCHAR[]) AS code, "
               "unnest($ind_dirs::VARCHAR[]) AS direction)")

# Ringkasan: one row per network, a row for the DQ findings of kecamatan and of the kab/kota
# itself (no network holds them), and a TOTAL: counts are the sums of the rows above, rates the
# ratio of those sums (compliance.reporting_rate of the same networks), so the TOTAL always
# agrees with its rows.
RINGKASAN_SQL = f"""
    WITH net AS (
        SELECT s.kode_kabkota AS kab, 1 AS urut, s.kode_jejaring AS kode, s.nama_puskesmas AS nama,
               s.expected, s.received, s.on_time, s.completeness_pct / 100 AS c,
               s.timeliness_pct / 100 AS t, s.pkm_completeness_pct / 100 AS pkm,
               s.klinik_completeness_pct / 100 AS klinik, s.tpmd_completeness_pct / 100 AS tpmd,
               y.completeness_pct / 100 AS yc, y.timeliness_pct / 100 AS yt,
               s.network_share_pct / 100 AS share, s.n_followup, s.n_validation_flags AS n_vf,
               s.n_quarantined_file_rows AS n_q, s.n_dq_flags AS n_dq
        FROM evaluation.scorecard s
        LEFT JOIN evaluation.scorecard y
               ON y.kode_jejaring = s.kode_jejaring AND y.period = $p AND y.period_type = 'ytd'
        WHERE s.period = $p AND s.period_type = 'month'
          AND s.kode_kabkota IN (SELECT kab FROM {_KABS})
    ), area AS (
        SELECT substr(d.unit_code, 1, 5) AS kab, 2 AS urut, NULL AS kode,
               'Temuan kualitas data tingkat kecamatan dan kab/kota' AS nama, 0 AS expected,
               0 AS received, 0 AS on_time, 0 AS n_followup, 0 AS n_vf, 0 AS n_q,
               count(DISTINCT (d.unit_level, d.unit_code, d.subject)) AS n_dq
        FROM indicators.dq_flag d
        WHERE d.period = $p AND d.unit_level IN ('kecamatan', 'kabkota')
          AND substr(d.unit_code, 1, 5) IN (SELECT kab FROM {_KABS})
        GROUP BY ALL
    ), body AS (SELECT * FROM net UNION ALL BY NAME SELECT * FROM area),
    rates AS (
        SELECT n.kab, rr.period_type,
               sum(rr.received) FILTER (WHERE rr.jenis_faskes = 'semua') AS received,
               sum(rr.on_time) FILTER (WHERE rr.jenis_faskes = 'semua') AS on_time,
               sum(rr.expected) FILTER (WHERE rr.jenis_faskes = 'semua') AS expected,
               sum(rr.received) FILTER (WHERE rr.jenis_faskes = 'puskesmas')
                 / nullif(sum(rr.expected) FILTER (WHERE rr.jenis_faskes = 'puskesmas'), 0) AS pkm,
               sum(rr.received) FILTER (WHERE rr.jenis_faskes = 'klinik_pratama')
                 / nullif(sum(rr.expected) FILTER (WHERE rr.jenis_faskes = 'klinik_pratama'), 0)
                 AS klinik,
               sum(rr.received) FILTER (WHERE rr.jenis_faskes = 'tpmd')
                 / nullif(sum(rr.expected) FILTER (WHERE rr.jenis_faskes = 'tpmd'), 0) AS tpmd
        FROM compliance.reporting_rate rr JOIN {_NETWORKS} n ON n.kode_faskes = rr.unit_code
        WHERE rr.unit_level = 'puskesmas_network' AND rr.period = $p AND rr.form = 'semua'
        GROUP BY ALL
    ), share AS (
        SELECT n.kab, sum(nc.volume) FILTER (WHERE nc.jenis_faskes <> 'puskesmas')
                      / nullif(sum(nc.volume), 0) AS share
        FROM indicators.network_contribution nc JOIN {_NETWORKS} n ON n.kode_faskes = nc.unit_code
        WHERE nc.unit_level = 'puskesmas_network' AND nc.period = $p AND nc.period_type = 'month'
        GROUP BY ALL
    ), total AS (
        SELECT b.kab, 3 AS urut, b.kab AS kode,
               'TOTAL ' || coalesce(any_value(w.nama), b.kab) AS nama,
               sum(b.expected) AS expected, sum(b.received) AS received, sum(b.on_time) AS on_time,
               sum(b.received) / nullif(sum(b.expected), 0) AS c,
               sum(b.on_time) / nullif(sum(b.expected), 0) AS t,
               any_value(m.pkm) AS pkm, any_value(m.klinik) AS klinik, any_value(m.tpmd) AS tpmd,
               any_value(y.received / nullif(y.expected, 0)) AS yc,
               any_value(y.on_time / nullif(y.expected, 0)) AS yt, any_value(sh.share) AS share,
               sum(b.n_followup) AS n_followup, sum(b.n_vf) AS n_vf, sum(b.n_q) AS n_q,
               sum(b.n_dq) AS n_dq
        FROM body b
        LEFT JOIN (SELECT kode, any_value(nama) AS nama FROM reference.wilayah GROUP BY kode) w
               ON w.kode = b.kab
        LEFT JOIN rates m ON m.kab = b.kab AND m.period_type = 'month'
        LEFT JOIN rates y ON y.kab = b.kab AND y.period_type = 'ytd'
        LEFT JOIN share sh ON sh.kab = b.kab
        GROUP BY b.kab
    )
    SELECT kab, kode, nama, expected, received, on_time, c, t, pkm, klinik, tpmd, yc, yt, share,
           n_followup, n_vf, n_q, n_dq
    FROM (SELECT * FROM body UNION ALL BY NAME SELECT * FROM total)
    ORDER BY kab, urut, kode
"""

KEPATUHAN_SQL = f"""
    SELECT r.kode_kabkota, r.kode_jejaring, pk.nama_faskes, r.kode_faskes, f.nama_faskes,
           r.jenis_faskes, r.form,
           CASE WHEN r.status = 'pending' AND r.overdue THEN 'pending_overdue' ELSE r.status END,
           r.due_date, r.received_local_date, r.days_late, r.n_versions, r.is_nil_report
    FROM compliance.report_status r
    LEFT JOIN reference.facility f ON f.kode_faskes = r.kode_faskes
    LEFT JOIN reference.facility pk ON pk.kode_faskes = r.kode_jejaring
    WHERE r.kode_kabkota IN (SELECT kab FROM {_KABS}) AND r.period = $p
    ORDER BY r.kode_kabkota, r.kode_jejaring, r.jenis_faskes <> 'puskesmas', r.kode_faskes, r.form
"""

TINDAK_LANJUT_SQL = f"""
    SELECT o.kode_kabkota, o.kode_puskesmas_induk, o.nama_puskesmas_induk, o.kode_faskes,
           o.nama_faskes, o.jenis_faskes, o.form,
           CASE WHEN o.pending_overdue THEN 'pending_overdue' ELSE o.latest_status END,
           o.months_missing, o.months_late, o.consecutive_missing, o.missing_periods,
           o.last_received_period, timezone(k.tz, o.last_received_at), f.telepon
    FROM evaluation.followup o JOIN {_KABS} k ON k.kab = o.kode_kabkota
    LEFT JOIN reference.facility f ON f.kode_faskes = o.kode_faskes
    WHERE o.as_of_period = $p
    ORDER BY o.kode_kabkota, o.kode_puskesmas_induk, o.consecutive_missing DESC, o.kode_faskes,
             o.form
"""

CAPAIAN_SQL = f"""
    SELECT coalesce(n.kab, k.unit_code), k.unit_code, coalesce(f.nama_faskes, w.nama),
           k.unit_level, k.indicator_code, k.indicator_code, k.program, k.period_type,
           k.numerator, k.denominator, k.value, k.target, k.pws_target, k.attainment / 100,
           {meets_sql("k.value", "coalesce(k.pws_target, k.target)",
                      "coalesce(d.direction, 'increasing')")}
    FROM evaluation.key_indicator k
    LEFT JOIN {_DIRECTIONS} d ON d.code = k.indicator_code
    LEFT JOIN {_NETWORKS} n ON k.unit_level = 'puskesmas_network' AND n.kode_faskes = k.unit_code
    LEFT JOIN reference.facility f
           ON k.unit_level = 'puskesmas_network' AND f.kode_faskes = k.unit_code
    LEFT JOIN reference.wilayah w ON k.unit_level <> 'puskesmas_network' AND w.kode = k.unit_code
    WHERE k.period = $p AND ((k.unit_level = 'kabkota' AND k.unit_code IN (SELECT kab FROM {_KABS}))
          OR (k.unit_level = 'puskesmas_network' AND n.kab IS NOT NULL))
    ORDER BY 1, k.display_order, k.period_type DESC, k.unit_level = 'kabkota', k.unit_code
"""

KONTRIBUSI_SQL = f"""
    SELECT m.kab, n.unit_code, f.nama_faskes, n.period_type, n.program, n.data_element,
           n.data_element, n.jenis_faskes, n.volume, n.total, n.share_pct / 100
    FROM indicators.network_contribution n
    JOIN {_NETWORKS} m ON m.kode_faskes = n.unit_code
    LEFT JOIN reference.facility f ON f.kode_faskes = n.unit_code
    WHERE n.unit_level = 'puskesmas_network' AND n.period = $p
    ORDER BY m.kab, n.unit_code, n.period_type, n.program, n.data_element, n.jenis_faskes
"""

# Every finding of the month of the kab/kota's facilities, networks, kecamatan and itself.
# ORDER BY ALL: several findings share a source and a facility; every column orders them, so
# the same data always gives the same sheet. The last four columns (the DQ numbers) are read by
# `_quality_row` to write the explanation, and not written.
KUALITAS_SQL = f"""
    WITH fac AS (SELECT f.* FROM reference.facility f SEMI JOIN {_KABS} k ON k.kab = f.kode_kabkota)
    SELECT fac.kode_kabkota, 'validation_flag' AS sumber, NULL AS lokasi, 'facility' AS lvl,
           v.kode_faskes, fac.nama_faskes, v.form, v.rule_id, v.column_name, v.value_text,
           v.reason_id, NULL::DOUBLE AS dv, NULL::DOUBLE AS ds, NULL::DOUBLE AS dt,
           NULL::DOUBLE AS dr
    FROM clean.validation_flag v JOIN fac USING (kode_faskes) WHERE v.period = $p
    UNION ALL
    SELECT fac.kode_kabkota, 'quarantine',
           q.source_path || ', baris ' || coalesce(q.row_number::VARCHAR, '–'), 'facility',
           q.kode_faskes, fac.nama_faskes, q.form, q.rule_id, q.column_name, q.value_text,
           q.reason_id, NULL, NULL, NULL, NULL
    FROM clean.quarantine q JOIN fac USING (kode_faskes) WHERE q.period = $p
    UNION ALL
    SELECT coalesce(fac.kode_kabkota, pk.kode_kabkota, substr(d.unit_code, 1, 5)), 'dq_flag', NULL,
           d.unit_level, d.unit_code, coalesce(fac.nama_faskes, pk.nama_faskes, w.nama), NULL,
           d.method, d.subject, CAST(round(d.value, 2) AS VARCHAR), NULL, d.value, d.score,
           d.threshold, d.reference
    FROM indicators.dq_flag d
    LEFT JOIN fac ON d.unit_level = 'facility' AND fac.kode_faskes = d.unit_code
    LEFT JOIN fac pk ON d.unit_level = 'puskesmas_network' AND pk.kode_faskes = d.unit_code
    LEFT JOIN (SELECT kode, any_value(nama) AS nama FROM reference.wilayah GROUP BY kode) w
           ON d.unit_level IN ('kecamatan', 'kabkota') AND w.kode = d.unit_code
    WHERE d.period = $p AND (fac.kode_faskes IS NOT NULL OR pk.kode_faskes IS NOT NULL
          OR (d.unit_level IN ('kecamatan', 'kabkota')
              AND substr(d.unit_code, 1, 5) IN (SELECT kab FROM {_KABS})))
    ORDER BY ALL
"""


def _capaian_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The indicator code twice: once as its code, once as its name."""
    return (*row[:4], labels.indicator_name(row[4]), *row[5:])


def _kontribusi_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The data element twice: once as its code, once as its name."""
    return (*row[:5], labels.element_name(row[5]), *row[6:])


def _quality_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A finding in words: its kind (rule or DQ method), its subject and explanation."""
    (sumber, lokasi, level, kode, nama, form, rule, column, value, reason, dv, ds, dt, dr) = row
    if sumber == "dq_flag":
        kind = labels.label("dq_method", rule)
        subject = labels.subject_name(column)
        reason = labels.dq_explanation(rule, column, dv, ds, dt, dr)
    else:
        kind = labels.rule_name(rule)
        subject = labels.element_names_of(column)
    return (sumber, lokasi, level, kode, nama, form, rule, kind, column, subject, value, reason)


SHEETS: tuple[Sheet, ...] = (
    Sheet("Ringkasan", RINGKASAN_SQL, (
        Col("Kode jejaring", width=12), Col("Puskesmas", width=30),
        Col("Laporan diharapkan", INT), Col("Laporan diterima", INT), Col("Tepat waktu", INT),
        Col("Kelengkapan", PCT), Col("Ketepatan waktu", PCT), Col("Kelengkapan puskesmas", PCT),
        Col("Kelengkapan klinik pratama", PCT), Col("Kelengkapan TPMD", PCT),
        Col("Kelengkapan s.d. bulan ini", PCT), Col("Ketepatan s.d. bulan ini", PCT),
        Col("Kontribusi jejaring", PCT), Col("Perlu tindak lanjut", INT),
        Col("Peringatan validasi", INT), Col("Baris dikarantina", INT),
        Col("Temuan kualitas data", INT))),
    Sheet("Kepatuhan Pelaporan", KEPATUHAN_SQL, (
        Col("Kode jejaring", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
        Col("Nama faskes", width=30), Col("Jenis faskes", width=18, vocab="jenis_faskes"),
        Col("Formulir", width=11, vocab="form"), Col("Status", width=16, vocab="status"),
        Col("Jatuh tempo", DATE, 12), Col("Tanggal diterima", DATE, 12),
        Col("Hari terlambat", INT, 10), Col("Versi", INT, 7),
        Col("Laporan nihil", width=10, vocab="boolean"))),
    Sheet("Tindak Lanjut", TINDAK_LANJUT_SQL, (
        Col("Kode puskesmas", width=12), Col("Puskesmas", width=26), Col("Kode faskes", width=12),
        Col("Nama faskes", width=30), Col("Jenis faskes", width=18, vocab="jenis_faskes"),
        Col("Formulir", width=11, vocab="form"), Col("Status bulan ini", width=16, vocab="status"),
        Col("Bulan tidak lapor", INT), Col("Bulan terlambat", INT),
        Col("Tidak lapor berturut-turut", INT), Col("Bulan tidak lapor (daftar)", width=30),
        Col("Laporan terakhir", width=12), Col("Diterima (waktu lokal)", DATETIME, 18),
        Col("Telepon", width=16))),
    Sheet("Capaian Indikator", CAPAIAN_SQL, (
        Col("Kode unit", width=12), Col("Puskesmas / wilayah", width=28),
        Col("Tingkat", width=16, vocab="unit_level"), Col("Kode indikator", width=16),
        Col("Indikator", width=40), Col("Program", width=18, vocab="program"),
        Col("Jenis periode", width=16, vocab="period_type"), Col("Pembilang", DEC),
        Col("Penyebut / sasaran", DEC), Col("Capaian", DEC), Col("Target", DEC),
        Col("Target PWS", DEC), Col("Pencapaian target", PCT),
        Col("Memenuhi target", width=10, vocab="boolean")), _capaian_row),
    Sheet("Kontribusi Jejaring", KONTRIBUSI_SQL, (
        Col("Kode jejaring", width=12), Col("Puskesmas", width=26),
        Col("Jenis periode", width=16, vocab="period_type"),
        Col("Program", width=18, vocab="program"), Col("Kode elemen data", width=22),
        Col("Elemen data", width=30), Col("Jenis faskes", width=18, vocab="jenis_faskes"),
        Col("Volume", INT), Col("Total jejaring", INT), Col("Kontribusi", PCT)), _kontribusi_row),
    Sheet("Kualitas Data", KUALITAS_SQL, (
        Col("Sumber", width=20, vocab="source"), Col("Berkas, baris", width=24),
        Col("Tingkat unit", width=16, vocab="unit_level"), Col("Kode faskes / unit", width=14),
        Col("Nama", width=28), Col("Formulir", width=10, vocab="form"),
        Col("Kode aturan / metode", width=16), Col("Jenis temuan", width=30),
        Col("Kode kolom / subjek", width=18), Col("Elemen data", width=28),
        Col("Nilai", width=12), Col("Keterangan", width=60)), _quality_row),
)
