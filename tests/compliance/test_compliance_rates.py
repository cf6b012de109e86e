"""Reporting rates (ratios of sums at every level, month and YTD)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kolab_pipeline import compliance
from kolab_pipeline.config import KolabConfig, Paths, Settings
from kolab_pipeline.warehouse import ensure_schema
from tests.support.compliance import network_home


@pytest.fixture
def network(con, kolab_home):
    return network_home(con, kolab_home)


def _rate(con, level, code, period, period_type="month", form="semua", jenis="semua"):
    cur = con.execute("""SELECT expected, received, on_time, late, missing, pending, unexpected,
                                completeness_pct, timeliness_pct
                           FROM compliance.reporting_rate
                          WHERE unit_level=? AND unit_code=? AND period=? AND period_type=?
                            AND form=? AND jenis_faskes=?""",
                      [level, code, period, period_type, form, jenis])
    rows = cur.fetchall()
    assert len(rows) == 1, (level, code, period, period_type, form, jenis, rows)
    return dict(zip([d[0] for d in cur.description], rows[0], strict=True))


def test_rates_are_ratios_of_sums(network):
    con = network
    p1 = _rate(con, "puskesmas_network", "P1", "2024-11")
    # expected P1 tb, P1 ptm, K1 tb, T1 tb = 4; received 3 (2 on time + 1 late); T1 kia unexpected
    counts = ("expected", "received", "on_time", "late", "missing", "unexpected")
    assert tuple(p1[c] for c in counts) == (4, 3, 2, 1, 1, 1)
    assert p1["completeness_pct"] == pytest.approx(75.0)   # 3 / 4 × 100
    assert p1["timeliness_pct"] == pytest.approx(50.0)     # 2 / 4 × 100
    kab = _rate(con, "kabkota", "36.72", "2024-11")
    # 5 expected (4 + P2 tb), 3 received, 2 on time: 60 % and 40 % — not the mean of the
    # network rates (75 + 0) / 2 = 37.5
    assert (kab["expected"], kab["received"], kab["on_time"]) == (5, 3, 2)
    assert kab["completeness_pct"] == pytest.approx(60.0)
    assert kab["timeliness_pct"] == pytest.approx(40.0)
    tb = _rate(con, "puskesmas_network", "P1", "2024-11", form="tb")
    assert tb["completeness_pct"] == pytest.approx(200 / 3)   # P1 tb + K1 tb of 3 = 66.67 %
    kp = _rate(con, "kabkota", "36.72", "2024-11", jenis="klinik_pratama")
    assert (kp["expected"], kp["completeness_pct"]) == (1, pytest.approx(100.0))
    kec2 = _rate(con, "kecamatan", "36.72.02", "2024-11")
    assert (kec2["expected"], kec2["completeness_pct"], kec2["timeliness_pct"]) == (1, 0.0, 0.0)
    # T1 had only an unexpected arrival for kia: expected 0 → rates NULL, never 0 or 100
    t1kia = _rate(con, "facility", "T1", "2024-11", form="kia")
    assert (t1kia["expected"], t1kia["unexpected"], t1kia["completeness_pct"]) == (0, 1, None)
    prov = _rate(con, "provinsi", "36", "2024-11")
    assert prov["expected"] == 5


def test_ytd_rates_sum_january_to_month(network):
    con = network
    ytd = _rate(con, "kabkota", "36.72", "2024-11", period_type="ytd")
    # Oct: 5 expected, 2 on time; Nov: 5 expected, 2 on time + 1 late → 10, 5, 4
    assert (ytd["expected"], ytd["received"], ytd["on_time"]) == (10, 5, 4)
    assert ytd["completeness_pct"] == pytest.approx(50.0)
    assert ytd["timeliness_pct"] == pytest.approx(40.0)
    dec = _rate(con, "kabkota", "36.72", "2024-12", period_type="ytd")
    # + December: 5 expected, all pending → 15 expected, 5 received, 5 pending
    assert (dec["expected"], dec["received"], dec["pending"]) == (15, 5, 5)
    assert dec["completeness_pct"] == pytest.approx(100 / 3)   # 5 / 15 × 100


# --- property test: every level equals a naive recount ---------------------------------------

_SETTINGS = Settings(paths=Paths(home=Path("/nonexistent-kolab-home")), config=KolabConfig())
PERIODS = ["2024-01", "2024-02", "2024-03", "2024-04"]

facility_st = st.tuples(
    st.sampled_from(["puskesmas", "klinik_pratama", "tpmd"]),
    st.sampled_from(["N1", "N2", "N3"]),                # network
    # kecamatan (two kab/kota, two provinces)
    st.sampled_from(["36.72.01", "36.72.02", "64.71.01"]),
)
status_rows_st = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(PERIODS), st.sampled_from(["tb", "ptm", "kia"]),
              st.sampled_from(["on_time", "late", "missing", "pending", "unexpected"])),
    max_size=40, unique_by=lambda r: r[:3],
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facilities=st.lists(facility_st, min_size=6, max_size=6), rows=status_rows_st,
       target=st.lists(st.sampled_from(PERIODS), min_size=1, max_size=2, unique=True))
def test_rates_equal_naive_recount(facilities, rows, target):
    con = duckdb.connect()
    ensure_schema(con)
    for i, period, form, status in rows:
        jenis, net, kec = facilities[i]
        con.execute("""INSERT INTO compliance.report_status (kode_faskes, period, form, expected,
                               status, jenis_faskes, kode_jejaring, kode_kec, kode_kabkota,
                               kode_prov)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [f"F{i}", period, form, status != "unexpected", status, jenis, net, kec,
                     kec[:5], kec[:2]])
    compliance.build_reporting_rates(con, _SETTINGS, target)
    naive: dict[tuple, list[int]] = defaultdict(lambda: [0] * 7)
    names = ["expected", "received", "on_time", "late", "missing", "pending", "unexpected"]
    for i, period, form, status in rows:
        jenis, net, kec = facilities[i]
        for tgt in target:
            types = (["month"] if period == tgt else []) + (["ytd"] if period <= tgt else [])
            for ptype in types:
                for level, code in (("facility", f"F{i}"), ("puskesmas_network", net),
                                    ("kecamatan", kec), ("kabkota", kec[:5]),
                                    ("provinsi", kec[:2])):
                    # a facility has one type: its rows are jenis_faskes 'semua' only
                    for j in ((jenis, "semua") if level != "facility" else ("semua",)):
                        for f in (form, "semua"):
                            c = naive[(level, code, j, tgt, ptype, f)]
                            c[0] += status != "unexpected"
                            c[1] += status in ("on_time", "late")
                            c[names.index(status)] += 1   # its own status column
    got = {r[:6]: r[6:] for r in con.execute(
        f"SELECT unit_level, unit_code, jenis_faskes, period, period_type, form, "
        f"{', '.join(names)}, completeness_pct, timeliness_pct "
        "FROM compliance.reporting_rate").fetchall()}
    assert set(got) == set(naive)
    for key, c in naive.items():
        expected, received, on_time, late = c[0], c[1], c[2], c[3]
        assert got[key][:7] == (expected, received, on_time, late, c[4], c[5], c[6]), key
        comp, time_ = got[key][7:]
        if expected == 0:
            assert comp is None and time_ is None
        else:
            assert comp == pytest.approx(received * 100 / expected)
            assert time_ == pytest.approx(on_time * 100 / expected)
    con.close()


# like status_rows_st, but a facility's network may change month to month
moving_rows_st = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(PERIODS), st.sampled_from(["tb", "ptm"]),
              st.sampled_from(["on_time", "late", "missing", "pending", "unexpected"]),
              st.sampled_from(["N1", "N2"])),
    max_size=30, unique_by=lambda r: r[:3],
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=moving_rows_st, order=st.permutations(PERIODS[1:]))
def test_month_by_month_equals_all_at_once(rows, order):
    """The incremental path (YTD carried forward from the stored YTD of the month before, months
    without a unit row, a facility changing network mid-year) gives the same table as one run
    over all months, which counts every status row directly."""
    def build(periods_runs):
        con = duckdb.connect()
        ensure_schema(con)
        for i, period, form, status, net in rows:
            con.execute("""INSERT INTO compliance.report_status (kode_faskes, period, form,
                                   expected, status, jenis_faskes, kode_jejaring, kode_kec,
                                   kode_kabkota, kode_prov)
                           VALUES (?, ?, ?, ?, ?, 'tpmd', ?, '36.72.01', '36.72', '36')""",
                        [f"F{i}", period, form, status != "unexpected", status, net])
        for run in periods_runs:
            compliance.build_reporting_rates(con, _SETTINGS, run)
        out = sorted(con.execute("SELECT * FROM compliance.reporting_rate").fetchall(), key=repr)
        con.close()
        return out

    together = build([PERIODS])
    # month by month in calendar order (carry path), then again in a shuffled order of re-runs
    assert build([[p] for p in PERIODS]) == together
    assert build([[p] for p in PERIODS] + [[p] for p in order]) == together
