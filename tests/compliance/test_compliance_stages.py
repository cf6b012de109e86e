"""Two reporting stages (issue 16 item 4), forwarding timeliness, and completeness as known at
the cut-off (issue 17 item 5) — from landing files through raw and clean to compliance, because
the received time per stage is decided on the way.

Kota Cilegon (WIB). Network P1 = puskesmas P1 + clinics K1, K2, K3; puskesmas P2 alone. Form tb.
Due dates of March 2025: network → puskesmas 5 April, puskesmas → Dinkes 10 April; cut-off
30 April. February: 5 / 10 March, cut-off 31 March.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kolab_pipeline import clean, compliance, evaluation, raw
from kolab_pipeline.config import Settings
from tests.support.compliance import KEC1, KEC2, load, status_of, write_home
from tests.support.landing import TB_HEADER, put

AS_OF = datetime.fromisoformat("2025-05-05T12:00:00+07:00")   # both cut-offs passed
PERIODS = ["2025-02", "2025-03"]
RECEIPTS = {  # the Dinkes's receipt log: when each file reached it (WIB)
    "p1/rekap_P1_tb_2025-02.csv": "2025-03-09T09:00:00+07:00",
    "p1/rekap_P1_tb_2025-03_awal.csv": "2025-04-08T09:00:00+07:00",
    "p1/rekap_P1_tb_2025-03.csv": "2025-04-25T10:00:00+07:00",
    "p1/rekap_P1_tb_2025-03_susulan.csv": "2025-04-05T10:00:00+07:00",
    "p2/P2_tb_2025-03.csv": "2025-04-09T10:00:00+07:00",
}


def _file(settings: Settings, rel: str, rows: list[tuple[str, str, str]]) -> None:
    """A template CSV: rows of (periode, kode_faskes, tanggal_lapor)."""
    body = "".join(f"{per},{kode},Faskes {kode},{tl},,1,0\n" for per, kode, tl in rows)
    put(settings, rel, f"{TB_HEADER}\n{body}")


@pytest.fixture
def stages(con, kolab_home):
    settings = write_home(kolab_home, [
        ("P1", "puskesmas", None, KEC1, None, None, "tb"),
        ("K1", "klinik_pratama", "P1", KEC1, None, None, "tb"),
        ("K2", "klinik_pratama", "P1", KEC1, None, None, "tb"),
        ("K3", "tpmd", "P1", KEC1, None, None, "tb"),
        ("P2", "puskesmas", None, KEC2, None, None, "tb"),
    ])
    load(con, settings)
    # February: P1 on time; K1 reported to P1 on 4 March (on time), but P1 forwarded it only
    # with its March recap's supplement on 5 April — after February's cut-off (31 March)
    _file(settings, "p1/rekap_P1_tb_2025-02.csv", [("2025-02", "P1", "2025-03-08")])
    _file(settings, "p1/rekap_P1_tb_2025-03_susulan.csv", [("2025-02", "K1", "2025-03-04")])
    # March: K2 (4 April) travelled in an early recap that reached the Dinkes on the 8th
    _file(settings, "p1/rekap_P1_tb_2025-03_awal.csv", [("2025-03", "K2", "2025-04-04")])
    # the recap that arrived on the 25th: P1's own row dated the 3rd, K1 on the 3rd, K3 the 12th
    _file(settings, "p1/rekap_P1_tb_2025-03.csv", [
        ("2025-03", "P1", "2025-04-03"), ("2025-03", "K1", "2025-04-03"),
        ("2025-03", "K3", "2025-04-12")])
    # P2 received on the 9th, its own row declares the 12th (after the receipt: warning V05D)
    _file(settings, "p2/P2_tb_2025-03.csv", [("2025-03", "P2", "2025-04-12")])
    put(settings, "_diterima.csv",
        "file,received_at\n" + "".join(f"{f},{t}\n" for f, t in RECEIPTS.items()))
    raw.ingest_landing(con, settings, run_id="r1")
    clean.build_clean(con, settings)
    return con, settings


def _local(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def test_a_recap_arriving_on_the_25th_with_its_own_row_dated_the_3rd_is_late(stages):
    con, settings = stages
    compliance.run_compliance(con, settings, PERIODS, as_of=AS_OF)
    p1 = status_of(con, "P1", "2025-03")
    # judged on the receipt at the Dinkes: 25 April > due 10 April → late, 25 − 10 = 15 days
    assert (p1["status"], p1["days_late"], p1["received_source"]) == ("late", 15, "manifest")
    assert str(p1["received_local_date"]) == "2025-04-25"
    # the date it wrote itself is kept, never decides: 3 April 00:00 WIB = 2 April 17:00 UTC
    assert _local(p1["declared_at"]) == "2025-04-02T17:00:00+00:00"
    # K1 in the same file: a network facility is judged on the day it reported to P1 (the 3rd
    # ≤ due 5th); the Dinkes got it on the 25th
    k1 = status_of(con, "K1", "2025-03")
    assert (k1["status"], k1["received_source"], str(k1["received_local_date"])) == (
        "on_time", "tanggal_lapor", "2025-04-03")
    assert _local(k1["received_dinkes_at"]) == "2025-04-25T03:00:00+00:00"
    k3 = status_of(con, "K3", "2025-03")
    assert (k3["status"], k3["days_late"]) == ("late", 7)   # 12 − 5
    # P2: received on the 9th (≤ 10th), on time whatever it declares; the 12th > the 9th: V05D
    p2 = status_of(con, "P2", "2025-03")
    assert (p2["status"], p2["received_source"]) == ("on_time", "manifest")
    flags = con.execute("SELECT kode_faskes, rule_id, value_text, reason_en "
                        "FROM clean.validation_flag").fetchall()
    assert flags == [("P2", "V05D", "2025-04-12",
                      "Facility P2, period 2025-03, declares tanggal_lapor 2025-04-12 but its "
                      "report reached the Dinkes on 2025-04-09; check tanggal_lapor (this date "
                      "never decides timeliness)")]


def test_a_version_counts_only_once_it_reached_the_dinkes(stages):
    """as_of 20 April: K1 had reported to P1 on the 3rd, but the recap carrying it reached the
    Dinkes on the 25th — not received yet (pending, overdue)."""
    con, settings = stages
    compliance.run_compliance(con, settings, PERIODS,
                              as_of=datetime.fromisoformat("2025-04-20T12:00:00+07:00"))
    k1, p1 = status_of(con, "K1", "2025-03"), status_of(con, "P1", "2025-03")
    assert (k1["status"], k1["overdue"], k1["n_versions"]) == ("pending", True, 0)
    assert (p1["status"], p1["overdue"]) == ("pending", True)
    assert status_of(con, "K2", "2025-03")["status"] == "on_time"


def _rate(con, level: str, code: str, period: str, jenis: str = "semua") -> dict:
    cur = con.execute("SELECT * FROM compliance.reporting_rate WHERE unit_level = ? AND "
                      "unit_code = ? AND period = ? AND period_type = 'month' AND form = 'semua' "
                      "AND jenis_faskes = ?", [level, code, period, jenis])
    return dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))


def test_forwarding_timeliness_per_puskesmas(stages):
    """March, network P1: K1 (at P1 on the 3rd) and K2 (the 4th) could be forwarded by the 10th;
    K2 reached the Dinkes on the 8th, K1 only on the 25th; K3 reached P1 on the 12th, too late
    to forward in time (not counted); P1's own report is not a forwarding. 1 of 2 = 50 %."""
    con, settings = stages
    compliance.run_compliance(con, settings, PERIODS, as_of=AS_OF)
    fwd = {k: status_of(con, k, "2025-03")["forwarded_on_time"] for k in ("P1", "K1", "K2", "K3")}
    assert fwd == {"P1": None, "K1": False, "K2": True, "K3": None}
    assert str(status_of(con, "K1", "2025-03")["forward_due_date"]) == "2025-04-10"
    r = _rate(con, "puskesmas_network", "P1", "2025-03")
    assert (r["network_to_forward"], r["network_forwarded_on_time"], r["forwarding_pct"]) == (
        2, 1, 50.0)
    assert _rate(con, "puskesmas_network", "P2", "2025-03")["forwarding_pct"] is None
    # kab/kota: the same two network reports (P2 has no network) → 50 %
    assert _rate(con, "kabkota", "36.72", "2025-03")["forwarding_pct"] == 50.0
    evaluation.build_scorecard(con, settings, ["2025-03"])
    row = con.execute("SELECT network_to_forward, network_forwarded_on_time, forwarding_pct "
                      "FROM evaluation.scorecard WHERE kode_jejaring = 'P1' AND period = '2025-03' "
                      "AND period_type = 'month'").fetchone()
    assert row == (2, 1, 50.0)


def test_completeness_as_known_at_the_cutoff(stages):
    """February: 5 reports expected (P1, K1, K2, K3, P2). Received today: P1 (on time) and K1
    (on time by its own date, 4 March) → completeness 2/5 = 40 %, timeliness 40 %. At the
    cut-off (31 March) the Dinkes had only P1: K1 arrived with the 5 April supplement → 1/5 =
    20 % and 20 % — the figure a meeting held on the cut-off showed."""
    con, settings = stages
    compliance.run_compliance(con, settings, PERIODS, as_of=AS_OF)
    r = _rate(con, "kabkota", "36.72", "2025-02")
    assert (r["expected"], r["received"], r["on_time"]) == (5, 2, 2)
    assert (r["completeness_pct"], r["timeliness_pct"]) == (40.0, 40.0)
    assert (r["received_by_cutoff"], r["on_time_by_cutoff"], r["expected_cutoff_open"]) == (
        1, 1, 0)
    assert (r["completeness_at_cutoff_pct"], r["timeliness_at_cutoff_pct"]) == (20.0, 20.0)
    k1 = status_of(con, "K1", "2025-02")
    assert (k1["status"], k1["received_by_cutoff"], k1["cutoff_passed"]) == ("on_time", False,
                                                                            True)
    # March: all five at the Dinkes by 30 April (the 25th the latest) → the same 100 % both ways
    m = _rate(con, "kabkota", "36.72", "2025-03")
    assert (m["completeness_pct"], m["completeness_at_cutoff_pct"]) == (100.0, 100.0)
    # YTD to March: (2 + 5) / 10 = 70 % today, (1 + 5) / 10 = 60 % as known at the cut-offs
    ytd = con.execute("SELECT completeness_pct, completeness_at_cutoff_pct FROM "
                      "compliance.reporting_rate WHERE unit_level = 'kabkota' AND period = "
                      "'2025-03' AND period_type = 'ytd' AND form = 'semua' "
                      "AND jenis_faskes = 'semua'").fetchone()
    assert ytd == (70.0, 60.0)


def test_before_the_cutoff_the_at_cutoff_figures_are_provisional(stages):
    """as_of 26 April: March's cut-off (30 April) has not passed — 5 expected reports still
    open; what is known so far is counted (all five had reached the Dinkes by the 25th)."""
    con, settings = stages
    compliance.run_compliance(con, settings, ["2025-03"],
                              as_of=datetime.fromisoformat("2025-04-26T12:00:00+07:00"))
    r = _rate(con, "kabkota", "36.72", "2025-03")
    assert (r["expected_cutoff_open"], r["received_by_cutoff"]) == (5, 5)
    assert status_of(con, "P1", "2025-03")["cutoff_passed"] is False
