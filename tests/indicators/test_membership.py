"""Dated network membership (issue 16 item 5): indicators, network contribution and the UCI proxy
count a facility in the network it belonged to each month, from the same
`reference.form_assignment` history compliance uses. Hand-worked on the shared world
(tests/support/indicators.py): KA1, a clinic of PA, moves to PB on 2025-02-01 (for every form),
and the registry now names PB as its induk.
"""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline import indicators
from kolab_pipeline.config import Settings
from tests.support.indicators import add_value, build_world

FORMS = ("tb", "ptm", "kia", "imun")


def move_ka1(con: duckdb.DuckDBPyConnection) -> None:
    """KA1: PA until 2025-02-01 (exclusive), PB from then; the registry's current induk PB."""
    for form in FORMS:
        con.execute("INSERT INTO reference.form_assignment VALUES "
                    "('KA1', ?, 'PA', NULL, DATE '2025-02-01', 'jejaring'), "
                    "('KA1', ?, 'PB', DATE '2025-02-01', NULL, 'jejaring')", [form, form])
    con.execute("UPDATE reference.facility SET kode_puskesmas_induk = 'PB', kode_jejaring = 'PB' "
                "WHERE kode_faskes = 'KA1'")


@pytest.fixture
def moved(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    build_world(con)
    move_ka1(con)
    add_value(con, "KA1", "2025-02", "kia_k1", 4)      # KA1's first K1 under PB
    add_value(con, "KA1", "2025-03", "kia_k1", 1)
    add_value(con, "PA", "2025-03", "kia_k1", 2)
    return con


def value(con, code, level, unit, period, ptype, column="numerator"):
    got = con.execute(f"""SELECT {column} FROM indicators.indicator_value
                           WHERE indicator_code = ? AND unit_level = ? AND unit_code = ?
                             AND period = ? AND period_type = ?""",
                      [code, level, unit, period, ptype]).fetchall()
    return got[0][0] if got else None


def base(con, code, unit, period, ptype):
    """A facility's numerator in `indicators.facility_base` (every indicator; indicator_value
    has facility rows only for indicators meaningful for one facility)."""
    got = con.execute("""SELECT numerator FROM indicators.facility_base
                          WHERE indicator_code = ? AND kode_faskes = ? AND period = ?
                            AND period_type = ?""", [code, unit, period, ptype]).fetchall()
    return got[0][0] if got else None


def test_a_moved_clinic_keeps_its_past_in_the_old_network(moved, settings: Settings):
    indicators.compute_indicator_values(moved, settings, ["2025-01", "2025-02", "2025-03"])
    # K1 January, KA1 still in PA: PA 5 + KA1 3 + DA1 2 = 10; PB 4 + KB1 1 = 5
    assert value(moved, "KIA_K1", "puskesmas_network", "PA", "2025-01", "month") == 10
    assert value(moved, "KIA_K1", "puskesmas_network", "PB", "2025-01", "month") == 5
    # February, KA1 in PB: PA 6 + DA1 1 = 7; PB 3 + KB1 2 + KA1 4 = 9
    assert value(moved, "KIA_K1", "puskesmas_network", "PA", "2025-02", "month") == 7
    assert value(moved, "KIA_K1", "puskesmas_network", "PB", "2025-02", "month") == 9
    # YTD February: PA 10 + 7 = 17, PB 5 + 9 = 14 (with the registry's current induk for every
    # month it would be PA 14, PB 17)
    assert value(moved, "KIA_K1", "puskesmas_network", "PA", "2025-02", "ytd") == 17
    assert value(moved, "KIA_K1", "puskesmas_network", "PB", "2025-02", "ytd") == 14
    # YTD March: PA 17 + 2 = 19, PB 14 + 1 = 15; the kab/kota is not split: 27 + 4 + 3 = 34
    assert value(moved, "KIA_K1", "puskesmas_network", "PA", "2025-03", "ytd") == 19
    assert value(moved, "KIA_K1", "puskesmas_network", "PB", "2025-03", "ytd") == 15
    assert value(moved, "KIA_K1", "kabkota", "99.01", "2025-03", "ytd") == 34
    # the facility's own YTD is whole: 3 + 4 + 1 = 8
    assert base(moved, "KIA_K1", "KA1", "2025-03", "ytd") == 8
    assert indicators.reconcile_totals(moved, "2025-02").empty
    assert indicators.reconcile_totals(moved, "2025-03").empty


def test_unique_persons_stay_with_the_network_that_served_them(moved, settings: Settings):
    indicators.compute_indicator_values(moved, settings, ["2025-01", "2025-02"])
    # ht_dilayani_standar_ytd_unik: KA1 reports 20 (Jan, in PA) then 30 (Feb, in PB): PA keeps
    # the 20 persons it served, PB gets the 30 − 20 = 10 added under it.
    # PA YTD Feb = PA max(100, 90) = 100 + 20 = 120; PB = PB 50 + 10 = 60; kab/kota 180 as before
    assert value(moved, "PTM_SPM_HT", "puskesmas_network", "PA", "2025-02", "ytd") == 120
    assert value(moved, "PTM_SPM_HT", "puskesmas_network", "PB", "2025-02", "ytd") == 60
    assert value(moved, "PTM_SPM_HT", "kabkota", "99.01", "2025-02", "ytd") == 180
    assert base(moved, "PTM_SPM_HT", "KA1", "2025-02", "ytd") == 30


def test_one_new_month_after_a_stored_year_gives_the_same_rows(moved, settings: Settings):
    # the scheduled run: January..February stored, then March alone (stored YTD + the mover's
    # months), against one pass over January..March
    indicators.compute_indicator_values(moved, settings, ["2025-01", "2025-02"])
    indicators.compute_indicator_values(moved, settings, ["2025-03"])
    incremental = moved.execute("SELECT * FROM indicators.indicator_value "
                                "WHERE period = '2025-03' ORDER BY ALL").fetchall()
    moved.execute("DELETE FROM indicators.indicator_value")
    moved.execute("DELETE FROM indicators.network_contribution")
    indicators.compute_indicator_values(moved, settings, ["2025-01", "2025-02", "2025-03"])
    one_pass = moved.execute("SELECT * FROM indicators.indicator_value "
                             "WHERE period = '2025-03' ORDER BY ALL").fetchall()
    assert incremental == one_pass


def test_contribution_and_uci_proxy_use_the_network_of_the_month(moved, settings: Settings):
    indicators.compute_indicator_values(moved, settings, ["2025-01", "2025-02"])

    def volume(unit, period, ptype, jenis="klinik_pratama"):
        return moved.execute("""SELECT volume FROM indicators.network_contribution
                                 WHERE unit_level = 'puskesmas_network' AND unit_code = ?
                                   AND data_element = 'kia_k1' AND period = ? AND period_type = ?
                                   AND jenis_faskes = ?""", [unit, period, ptype, jenis]
                             ).fetchone()[0]
    # K1 from Klinik Pratama: PA keeps KA1's January 3; PB YTD = KB1 1 + 2 + KA1's February 4
    assert volume("PA", "2025-02", "ytd") == 3
    assert volume("PB", "2025-02", "ytd") == 7
    assert volume("PB", "2025-02", "month") == 6


def test_uci_proxy_uses_the_network_of_the_month(moved, settings: Settings):
    for kode in ("PA", "PB"):
        add_value(moved, kode, "2025-12", "imun_idl", 0)
    indicators.compute_indicator_values(moved, settings, ["2025-12"])
    # December, threshold 80 %. KA1's January IDL 5 stays in PA: PA (20 + 5 + 15) / 48 = 83.3 %
    # reaches it, PB (10 + 12) / 29 = 75.9 % does not. (Moved with KA1 the 5 would give PA 72.9 %
    # and PB 93.1 %: the kecamatan below would swap.)
    assert value(moved, "IMUN_UCI", "kecamatan", "99.01.01", "2025-12", "ytd", "value") == 100
    assert value(moved, "IMUN_UCI", "kecamatan", "99.01.02", "2025-12", "ytd", "value") == 0
