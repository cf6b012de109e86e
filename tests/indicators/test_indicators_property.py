"""Property test: for random facilities and values, unit numerators are sums of their facilities'
numerators and every value is numerator ÷ denominator × factor."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kolab_pipeline import indicators
from kolab_pipeline.config import KolabConfig, Paths, Settings
from kolab_pipeline.warehouse import connect, ensure_schema
from tests.support.indicators import add_facility, add_value

SETTINGS = Settings(paths=Paths(home=Path("/nonexistent")), config=KolabConfig())
PERIODS = ("2025-01", "2025-02")
# a small catalogue slice: one sasaran (PWS) indicator and one element-ratio indicator
CATALOGUE = [i for i in indicators.load_catalogue()
             if i.code in ("KIA_K1", "TB_TERDUGA_DIPERIKSA")]

value = st.one_of(st.none(), st.integers(min_value=0, max_value=500))
facility = st.fixed_dictionaries({
    "kab": st.sampled_from(["99.01", "99.02"]),
    "network": st.integers(min_value=0, max_value=2),
    "jenis": st.sampled_from(["klinik_pratama", "tpmd"]),
    "values": st.fixed_dictionaries({
        (p, e): value for p in PERIODS
        for e in ("kia_k1", "tb_terduga_ditemukan", "tb_terduga_diperiksa")}),
})


@hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facilities=st.lists(facility, min_size=1, max_size=6),
       bumil=st.one_of(st.none(), st.integers(min_value=1, max_value=2000)))
def test_unit_numerators_are_sums_and_values_follow_the_formula(facilities, bumil):
    con = connect(":memory:")
    try:
        ensure_schema(con)
        # one puskesmas per (kab, network index); network facilities hang below it
        for kab in ("99.01", "99.02"):
            for n in range(3):
                add_facility(con, f"P{kab[-1]}{n}", "puskesmas", None, f"{kab}.0{n + 1}")
        for i, f in enumerate(facilities):
            pkm = f"P{f['kab'][-1]}{f['network']}"
            add_facility(con, f"F{i}", f["jenis"], pkm, f"{f['kab']}.0{f['network'] + 1}")
            for (period, element), v in f["values"].items():
                if v is not None:
                    add_value(con, f"F{i}", period, element, v)
        if bumil is not None:
            con.execute("INSERT INTO reference.sasaran "
                        "VALUES (2025, 'kabkota', '99.01', 'bumil', ?, 'manual', NULL)", [bumil])
        indicators.compute_indicator_values(con, SETTINGS, list(PERIODS), CATALOGUE)

        def unit_numerator(code, kab, period, ptype):
            got = con.execute("""SELECT numerator FROM indicators.indicator_value
                                  WHERE indicator_code = ? AND unit_level = 'kabkota'
                                    AND unit_code = ? AND period = ? AND period_type = ?""",
                              [code, kab, period, ptype]).fetchall()
            return got[0][0] if got else None

        for kab in ("99.01", "99.02"):
            mine = [f for f in facilities if f["kab"] == kab]
            for period, months in (("2025-01", PERIODS[:1]), ("2025-02", PERIODS)):
                k1 = [f["values"][(m, "kia_k1")] for f in mine for m in months]
                k1 = [v for v in k1 if v is not None]
                # TB: only facility-months reporting both found and tested count
                pairs = [(f["values"][(m, "tb_terduga_diperiksa")],
                          f["values"][(m, "tb_terduga_ditemukan")])
                         for f in mine for m in months]
                tested = [a for a, b in pairs if a is not None and b is not None]
                assert unit_numerator("KIA_K1", kab, period, "ytd") == (sum(k1) if k1 else None)
                assert (unit_numerator("TB_TERDUGA_DIPERIKSA", kab, period, "ytd")
                        == (sum(tested) if tested else None))
        assert indicators.reconcile_totals(con, "2025-02").empty
        rows = con.execute("""SELECT numerator, denominator, factor, value, denominator_method
                                FROM indicators.indicator_value
                               WHERE value IS NOT NULL""").fetchall()
        for num, den, factor, val, method in rows:
            assert den is not None and den > 0, method
            assert abs(val - num / den * factor) <= 1e-9 * max(1.0, abs(val))
        # kab/kota 99.02 has no sasaran (no official row, no population): KIA_K1 value stays NULL
        assert con.execute("""SELECT count(*) FROM indicators.indicator_value
                               WHERE indicator_code = 'KIA_K1' AND unit_code = '99.02'
                                 AND value IS NOT NULL""").fetchone()[0] == 0

    finally:
        con.close()
