"""Compliance layer: expected reports, report status, status history, idempotency."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kolab_pipeline import compliance
from tests.support.compliance import load, status_of, submit, write_home

WIB = "36.72.01.1001"   # Kota Cilegon, Banten (Asia/Jakarta)
WITA = "64.71.01.1001"  # Kota Balikpapan, Kalimantan Timur (Asia/Makassar)

# docs/data_quality_anchors.md §1.1 worked example: monthly form, 15 days after the period end.
EXAMPLE_FACILITIES = [
    ("F1", "puskesmas", None, WIB, None, None, "tb"),
    ("F2", "puskesmas", None, WIB, "2024-03-15", None, "tb"),
    ("F3", "puskesmas", None, WIB, None, "2024-06-30", "tb"),
]
DUE15 = {"reporting": {"due_day": {"network_to_pkm": 15, "pkm_to_dinkes": 15}}}
YEAR_2024 = [f"2024-{m:02d}" for m in range(1, 13)]


def _expected(con, period: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT kode_faskes FROM compliance.expected_report WHERE period = ? ORDER BY 1",
        [period]).fetchall()]


def _expected_total(con, periods: list[str]) -> int:
    return con.execute("SELECT count(*) FROM compliance.expected_report "
                       "WHERE list_contains(?, period)", [periods]).fetchone()[0]


def test_worked_example_whole_period(con, kolab_home):
    settings = write_home(kolab_home, EXAMPLE_FACILITIES, DUE15)
    load(con, settings)
    compliance.build_expected_reports(con, settings, YEAR_2024)
    assert _expected(con, "2024-02") == ["F1", "F3"]        # F2 opens 03-15 > 02-01
    # F2 opens 03-15 > 03-01: not the whole month
    assert _expected(con, "2024-03") == ["F1", "F3"]
    assert _expected(con, "2024-04") == ["F1", "F2", "F3"]
    # F3 closes 06-30 = last day: still open all June
    assert _expected(con, "2024-06") == ["F1", "F2", "F3"]
    # Q1 = Jan + Feb + Mar = 2 + 2 + 2 = 6 ; Q3 = Jul + Aug + Sep = 2 (F1, F2) × 3 = 6
    assert _expected_total(con, ["2024-01", "2024-02", "2024-03"]) == 6
    assert _expected_total(con, ["2024-07", "2024-08", "2024-09"]) == 6
    # due date = day 15 of M+1 for both levels; cut-off = last day of M+1
    due, cutoff = con.execute("SELECT due_date, cutoff_date FROM compliance.expected_report "
                              "WHERE kode_faskes='F1' AND period='2024-01'").fetchone()
    assert (str(due), str(cutoff)) == ("2024-02-15", "2024-02-29")


def test_worked_example_timeliness_boundary(con, kolab_home):
    settings = write_home(kolab_home, EXAMPLE_FACILITIES, DUE15)
    load(con, settings)
    submit(con, "F1", "2024-01", "tb", "2024-02-15T16:00:00+07:00")  # on the due date
    submit(con, "F3", "2024-01", "tb", "2024-02-17T09:00:00+07:00")  # two days after
    compliance.build_expected_reports(con, settings, ["2024-01"])
    compliance.build_report_status(con, settings, ["2024-01"],
                                   as_of=datetime(2024, 3, 10, tzinfo=UTC))
    f1, f3 = status_of(con, "F1", "2024-01"), status_of(con, "F3", "2024-01")
    assert (f1["status"], f1["days_late"]) == ("on_time", 0)
    # 17 − 15 = 2 days late
    assert (f3["status"], f3["days_late"], f3["received_after_cutoff"]) == ("late", 2, False)


def test_pinned_boundary_day_after_due_is_late(con, kolab_home):
    """DHIS2 leaves the 16th as an ambiguous boundary (docs/data_quality_anchors.md §1.1); we
    pin: local date > due date ⇒ late."""
    settings = write_home(kolab_home, EXAMPLE_FACILITIES, DUE15)
    load(con, settings)
    submit(con, "F1", "2024-01", "tb", "2024-02-16T00:00:01+07:00")
    compliance.build_expected_reports(con, settings, ["2024-01"])
    compliance.build_report_status(con, settings, ["2024-01"],
                                   as_of=datetime(2024, 3, 10, tzinfo=UTC))
    assert status_of(con, "F1", "2024-01")["status"] == "late"


def test_worked_example_period_end_rule(con, kolab_home):
    cfg = {"reporting": {**DUE15["reporting"], "expected_rule": "period_end"}}
    f4 = ("F4", "puskesmas", None, WIB, None, "2024-06-29", "tb")
    settings = write_home(kolab_home, [*EXAMPLE_FACILITIES, f4], cfg)
    load(con, settings)
    compliance.build_expected_reports(con, settings, YEAR_2024)
    assert _expected(con, "2024-02") == ["F1", "F3", "F4"]
    assert _expected(con, "2024-03") == ["F1", "F2", "F3", "F4"]   # F2 is open on 03-31
    assert "F4" not in _expected(con, "2024-06")                    # closed before the last day
    assert _expected(con, "2024-06") == ["F1", "F2", "F3"]
    # Q1 = Jan 3 (F1, F3, F4) + Feb 3 + Mar 4 = 10 ; Q3 = Jul..Sep 2 (F1, F2) × 3 = 6
    assert _expected_total(con, ["2024-01", "2024-02", "2024-03"]) == 10
    assert _expected_total(con, ["2024-07", "2024-08", "2024-09"]) == 6


def test_wita_local_date_decides(con, kolab_home):
    """Balikpapan (WITA, UTC+8): 23:30 local on the due date is on time, 00:30 the next day late —
    although 16:30 UTC is still the due date in UTC and 23:30 in WIB."""
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, WITA, None, None, "tb"),
        ("K1", "klinik_pratama", "P1", WITA, None, None, "tb"),
        ("K2", "klinik_pratama", "P1", WITA, None, None, "tb"),
        ("K3", "klinik_pratama", "PW", WIB, None, None, "tb"),
    ])
    load(con, settings)
    submit(con, "K1", "2025-01", "tb", "2025-02-05T23:30:00+08:00")
    submit(con, "K2", "2025-01", "tb", "2025-02-06T00:30:00+08:00")
    submit(con, "K3", "2025-01", "tb", "2025-02-06T00:30:00+08:00")  # = 23:30 WIB on the due date
    compliance.build_expected_reports(con, settings, ["2025-01"])
    compliance.build_report_status(con, settings, ["2025-01"],
                                   as_of=datetime(2025, 3, 1, tzinfo=UTC))
    k1, k2, k3 = (status_of(con, k, "2025-01") for k in ("K1", "K2", "K3"))
    assert str(k1["due_date"]) == "2025-02-05"   # network → puskesmas: day 5
    assert (k1["status"], str(k1["received_local_date"])) == ("on_time", "2025-02-05")
    assert (k2["status"], str(k2["received_local_date"]), k2["days_late"]) == (
        "late", "2025-02-06", 1)
    assert (k3["status"], str(k3["received_local_date"])) == ("on_time", "2025-02-05")
    # puskesmas: day 10
    assert status_of(con, "P1", "2025-01")["due_date"].isoformat() == "2025-02-10"
    assert status_of(con, "P1", "2025-01")["status"] == "missing"


def _jkt(s: str) -> datetime:
    return datetime.fromisoformat(s + "+07:00")


def test_pending_overdue_missing_then_late_history(con, kolab_home):
    """Clinic K1 (WIB), November 2024: due 2024-12-05, cut-off 2024-12-31."""
    settings = write_home(kolab_home, [("P1", "puskesmas", None, WIB, None, None, "tb"),
                                       ("K1", "klinik_pratama", "P1", WIB, None, None, "tb")])
    load(con, settings)
    compliance.build_expected_reports(con, settings, ["2024-11"])
    steps = [
        ("2024-12-05T23:59:59", "pending", False),   # end of the due date: not overdue yet
        ("2024-12-06T00:00:01", "pending", True),    # due date passed
        ("2024-12-31T23:59:59", "pending", True),    # last second of the cut-off date
        ("2025-01-01T00:00:01", "missing", False),   # cut-off passed
    ]
    for as_of, status, overdue in steps:
        compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt(as_of))
        row = status_of(con, "K1", "2024-11")
        assert (row["status"], row["overdue"]) == (status, overdue), as_of
        assert row["received_at"] is None and row["days_late"] is None and row["n_versions"] == 0
    submit(con, "K1", "2024-11", "tb", "2025-01-10T10:00:00+07:00")
    compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt("2025-01-15T12:00:00"))
    row = status_of(con, "K1", "2024-11")
    # 2025-01-10 − 2024-12-05 = 26 + 10 = 36 days late
    assert (row["status"], row["received_after_cutoff"], row["days_late"]) == ("late", True, 36)
    history = con.execute("SELECT status, first_seen_at FROM compliance.report_status_history "
                          "WHERE kode_faskes='K1' ORDER BY first_seen_at").fetchall()
    assert [h[0] for h in history] == ["pending", "missing", "late"]   # overdue flips add no row
    assert history[1][1] == _jkt("2025-01-01T00:00:01")
    assert history[2][1] == _jkt("2025-01-15T12:00:00")
    # the same as_of again adds nothing
    compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt("2025-01-15T12:00:00"))
    assert con.execute("SELECT count(*) FROM compliance.report_status_history "
                       "WHERE kode_faskes='K1'").fetchone()[0] == 3


def test_submissions_after_as_of_are_not_yet_received(con, kolab_home):
    settings = write_home(kolab_home, [("P1", "puskesmas", None, WIB, None, None, "tb")])
    load(con, settings)
    submit(con, "P1", "2024-11", "tb", "2024-12-20T10:00:00+07:00")
    compliance.build_expected_reports(con, settings, ["2024-11"])
    compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt("2024-12-15T00:00:00"))
    p1 = status_of(con, "P1", "2024-11")
    assert (p1["status"], p1["overdue"]) == ("pending", True)
    compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt("2024-12-21T00:00:00"))
    assert status_of(con, "P1", "2024-11")["status"] == "late"


def test_first_version_decides_nil_counts_resubmission(con, kolab_home):
    settings = write_home(kolab_home, [("P1", "puskesmas", None, WIB, None, None, "tb;ptm"),
                                       ("T1", "tpmd", "P1", WIB, None, None, "tb;ptm")])
    load(con, settings)
    # P1 tb: on time (Dec 8), corrected Dec 20: still on time, 2 versions, current = v2
    submit(con, "P1", "2024-11", "tb", "2024-12-08T09:00:00+07:00", version=1, is_current=False)
    submit(con, "P1", "2024-11", "tb", "2024-12-20T09:00:00+07:00", version=2)
    # T1 ptm: explicit nil report on time
    submit(con, "T1", "2024-11", "ptm", "2024-12-02T09:00:00+07:00", nil=True)
    compliance.build_expected_reports(con, settings, ["2024-11"])
    compliance.build_report_status(con, settings, ["2024-11"], as_of=_jkt("2025-01-05T00:00:00"))
    p1 = status_of(con, "P1", "2024-11", "tb")
    assert (p1["status"], p1["n_versions"], p1["submission_id"]) == (
        "on_time", 2, "P1|2024-11|tb|2")
    assert p1["received_at"] == _jkt("2024-12-08T09:00:00")
    t1 = status_of(con, "T1", "2024-11", "ptm")
    assert (t1["status"], t1["is_nil_report"]) == ("on_time", True)
    assert status_of(con, "T1", "2024-11", "tb")["status"] == "missing"


def test_unexpected_and_closed_facility(con, kolab_home):
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, WIB, None, None, "tb;ptm;kia;imun"),
        ("T1", "tpmd", "P1", WIB, None, None, "tb;ptm"),
        ("K9", "klinik_pratama", "P1", WIB, None, "2024-06-30", "tb"),
    ])
    load(con, settings)
    submit(con, "T1", "2024-07", "kia", "2024-08-02T09:00:00+07:00")   # form not assigned to a TPMD
    submit(con, "K9", "2024-07", "tb", "2024-08-02T09:00:00+07:00")    # closed at the end of June
    submit(con, "K9", "2024-06", "tb", "2024-07-02T09:00:00+07:00")
    compliance.build_expected_reports(con, settings, ["2024-06", "2024-07"])
    compliance.build_report_status(con, settings, ["2024-06", "2024-07"],
                                   as_of=_jkt("2024-09-15T00:00:00"))
    assert _expected(con, "2024-07").count("K9") == 0
    assert status_of(con, "K9", "2024-06")["status"] == "on_time"
    for kode, form in (("T1", "kia"), ("K9", "tb")):
        row = status_of(con, kode, "2024-07", form)
        assert (row["status"], row["expected"], row["kode_jejaring"]) == ("unexpected", False, "P1")
        assert str(row["due_date"]) == "2024-08-05" and row["n_versions"] == 1
        assert row["days_late"] == 0   # 08-02 is before the due date 08-05
    # the 4 P1 forms + T1 tb/ptm are expected in July (6), none received → 6 missing
    counts = dict(con.execute("SELECT status, count(*) FROM compliance.report_status "
                              "WHERE period='2024-07' GROUP BY 1").fetchall())
    assert counts == {"missing": 6, "unexpected": 2}


def test_only_the_types_a_form_is_assigned_to_are_expected(con, kolab_home):
    """catalog/forms.csv: tb → puskesmas, klinik_pratama, tpmd; kia → puskesmas, klinik_pratama,
    tpmb. The registry lists forms for a hospital, a lab and a TPMD's kia as well."""
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, WIB, None, None, "tb;kia"),
        ("T1", "tpmd", "P1", WIB, None, None, "tb;kia"),
        ("RS1", "rs", None, WIB, None, None, "tb;kia"),
        ("L1", "lab", None, WIB, None, None, "tb"),
    ])
    load(con, settings)
    submit(con, "P1", "2024-07", "tb", "2024-08-02T09:00:00+07:00")
    submit(con, "RS1", "2024-07", "tb", "2024-08-02T09:00:00+07:00")
    compliance.run_compliance(con, settings, ["2024-07"], as_of=_jkt("2024-09-15T00:00:00"))
    # expected: P1 tb, P1 kia, T1 tb = 3 (not T1 kia, nothing of RS1 or L1)
    assert con.execute("SELECT kode_faskes, form FROM compliance.expected_report "
                       "ORDER BY 1, 2").fetchall() == [("P1", "kia"), ("P1", "tb"), ("T1", "tb")]
    # RS1's report is kept as unexpected; kab/kota completeness = P1 tb 1 received ÷ 3 expected
    assert status_of(con, "RS1", "2024-07")["status"] == "unexpected"
    rate = con.execute("SELECT expected, received, unexpected FROM compliance.reporting_rate "
                       "WHERE unit_level = 'kabkota' AND period = '2024-07' "
                       "AND period_type = 'month' AND jenis_faskes = 'semua' AND form = 'semua'"
                       ).fetchone()
    assert rate == (3, 1, 1)


def test_assignment_history_and_induk_change(con, kolab_home):
    """jejaring.csv: K1 moves from P1 to P2 on 2024-03-15 (tb kept), ptm assigned until
    2024-05-01."""
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, WIB, None, None, "tb"),
        ("P2", "puskesmas", None, WIB, None, None, "tb"),
        ("K1", "klinik_pratama", "P1", WIB, None, None, "tb"),
    ], jejaring=[
        ("K1", "P1", "tb;ptm", None, "2024-03-15"),
        ("K1", "P2", "tb;ptm", "2024-03-15", "2024-05-01"),
        ("K1", "P2", "tb", "2024-05-01", None),
    ])
    load(con, settings)
    compliance.build_expected_reports(con, settings, ["2024-02", "2024-03", "2024-04", "2024-05"])
    rows = con.execute("SELECT period, form, kode_puskesmas_induk, kode_jejaring "
                       "FROM compliance.expected_report "
                       "WHERE kode_faskes = 'K1' ORDER BY 1, 2").fetchall()
    assert rows == [
        ("2024-02", "ptm", "P1", "P1"), ("2024-02", "tb", "P1", "P1"),
        # two adjacent spells cover March: expected, induk = the one in force on 03-31
        ("2024-03", "ptm", "P2", "P2"), ("2024-03", "tb", "P2", "P2"),
        ("2024-04", "ptm", "P2", "P2"), ("2024-04", "tb", "P2", "P2"),
        ("2024-05", "tb", "P2", "P2"),          # ptm valid_to 05-01 is exclusive: not in May
    ]


def _snapshot(con) -> dict[str, list]:
    out = {}
    for t in ("compliance.expected_report", "compliance.report_status",
              "compliance.report_status_history", "compliance.reporting_rate"):
        out[t] = sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
    return out


def test_month_rerun_is_idempotent(con, kolab_home):
    settings = write_home(kolab_home, EXAMPLE_FACILITIES, {"reporting": {"as_of": "2024-05-20"}})
    load(con, settings)
    submit(con, "F1", "2024-03", "tb", "2024-04-02T09:00:00+07:00")
    submit(con, "F9", "2024-03", "tb", "2024-04-02T09:00:00+07:00")   # unknown to the registry
    periods = ["2024-02", "2024-03", "2024-04"]
    compliance.run_compliance(con, settings, periods)
    first = _snapshot(con)
    assert sum(len(v) for v in first.values()) > 0
    compliance.run_compliance(con, settings, periods)
    compliance.run_compliance(con, settings, ["2024-03"])
    assert _snapshot(con) == first


def test_bad_period_is_rejected(con, settings):
    with pytest.raises(ValueError, match="2024-13"):
        compliance.build_expected_reports(con, settings, ["2024-13"])


def test_as_of_date_ends_at_midnight_local_in_each_zone(con, kolab_home):
    """`reporting.as_of: '2025-04-30'` (quoted, as `kolab sample-data` writes it) is the end of
    30 April in each facility's own zone (issue 19: it was 00:00 UTC, ignoring the whole day).

    Period 2025-03, puskesmas due 2025-04-10, cut-off 2025-04-30 (last day of M+1):
    - PW (Cilegon, WIB) received 2025-04-30 10:00 WIB (03:00 UTC) → late (20 days after the 10th);
    - PA (Balikpapan, WITA) received 2025-04-30 10:00 WITA (02:00 UTC) → late;
    - PB (Balikpapan, WITA) received 2025-05-01 00:30 WITA (2025-04-30 16:30 UTC): after WITA's
      as_of (15:59:59.999999 UTC) though before WIB's (16:59:59.999999 UTC) → not yet received;
      30 April is not over in WITA (as_of local date 04-30 = cut-off, not after it) → pending.
    """
    settings = write_home(kolab_home, [
        ("PW", "puskesmas", None, WIB, None, None, "tb"),
        ("PA", "puskesmas", None, WITA, None, None, "tb"),
        ("PB", "puskesmas", None, WITA, None, None, "tb"),
    ], {"reporting": {"as_of": "2025-04-30"}})
    assert settings.config.reporting.as_of == date(2025, 4, 30)
    load(con, settings)
    submit(con, "PW", "2025-03", "tb", "2025-04-30T10:00:00+07:00")
    submit(con, "PA", "2025-03", "tb", "2025-04-30T10:00:00+08:00")
    submit(con, "PB", "2025-03", "tb", "2025-05-01T00:30:00+08:00")
    compliance.build_expected_reports(con, settings, ["2025-03"])
    compliance.build_report_status(con, settings, ["2025-03"])
    pw, pa, pb = (status_of(con, k, "2025-03") for k in ("PW", "PA", "PB"))
    assert (pw["status"], pw["days_late"]) == ("late", 20)   # 30 April − 10 April
    assert (pa["status"], pa["days_late"]) == ("late", 20)
    assert (pb["status"], pb["overdue"], pb["received_at"]) == ("pending", True, None)
    # the stored as_of is the default zone's (WIB) end of day
    assert pw["as_of"] == datetime(2025, 4, 30, 16, 59, 59, 999999, tzinfo=UTC)
