"""The one rule for a facility's puskesmas network in a month (`reference.network_of_month_sql`),
and the three layers that use it agreeing on it: compliance (expected reports), the clean
layer's own share of an area recap (`clean/lingkup.py`) and indicator membership."""

from __future__ import annotations

import duckdb
import pytest

from kolab_pipeline import compliance, reference
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.membership import moved_members
from kolab_pipeline.warehouse import Staging
from tests.support.indicators import add_facility

# K1, a Klinik Pratama whose registry induk is now P2. Its dated assignments (ends exclusive):
ASSIGNMENTS = [
    # tb: moves from P1 to P2 on 15 March 2025
    ("K1", "tb", "P1", None, "2025-03-15"), ("K1", "tb", "P2", "2025-03-15", None),
    # kia: moves on 31 May 2025, the month's last day
    ("K1", "kia", "P1", None, "2025-05-31"), ("K1", "kia", "P2", "2025-05-31", None),
    # ptm: with P1 from 2025-01-01 until 30 June (exclusive), then nothing
    ("K1", "ptm", "P1", "2025-01-01", "2025-06-30"),
    # a puskesmas is its own network whatever an assignment says
    ("P1", "tb", "P2", None, None),
]


@pytest.fixture
def world(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    for kode, jenis, induk in (("P1", "puskesmas", None), ("P2", "puskesmas", None),
                               ("K1", "klinik_pratama", "P2")):
        add_facility(con, kode, jenis, induk, "99.01.01")
    con.execute("UPDATE reference.facility SET reporting_level = CASE jenis_faskes "
                "WHEN 'puskesmas' THEN 'pkm_to_dinkes' ELSE 'network_to_pkm' END")
    for row in ASSIGNMENTS:
        con.execute("INSERT INTO reference.form_assignment VALUES (?, ?, ?, ?, ?, 'jejaring')",
                    row)
    return con


def network(con: duckdb.DuckDBPyConnection, kode: str, form: str, period: str) -> str | None:
    sql = reference.network_of_month_sql(
        "(SELECT $kode AS kode_faskes, $form AS form, $period AS period)")
    return con.execute(sql, {"kode": kode, "form": form, "period": period}).fetchone()[3]


@pytest.mark.parametrize(("kode", "form", "period", "expected"), [
    # changed on the 15th: February P1; March belongs to P2, in force on 31 March
    ("K1", "tb", "2025-02", "P1"), ("K1", "tb", "2025-03", "P2"), ("K1", "tb", "2025-04", "P2"),
    # changed on the last day: April P1; May P2 (in force on 31 May, for its last day only)
    ("K1", "kia", "2025-04", "P1"), ("K1", "kia", "2025-05", "P2"),
    # ended on 30 June (exclusive), nothing in force on 30 June: the latest overlapping one, P1
    ("K1", "ptm", "2025-06", "P1"),
    # no assignment that month (July; December 2024 before it began) or of that form (imun):
    # the registry's induk, P2
    ("K1", "ptm", "2025-07", "P2"), ("K1", "ptm", "2024-12", "P2"),
    ("K1", "imun", "2025-03", "P2"),
    # a puskesmas: itself
    ("P1", "tb", "2025-03", "P1"), ("P2", "kia", "2025-03", "P2"),
])
def test_the_network_of_the_month(world, kode, form, period, expected):
    assert network(world, kode, form, period) == expected


def test_compliance_and_membership_follow_the_rule(world, settings: Settings):
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    compliance.build_expected_reports(world, settings, months)
    expected = dict(((form, period), jejaring) for form, period, jejaring in world.execute(
        "SELECT form, period, kode_jejaring FROM compliance.expected_report "
        "WHERE kode_faskes = 'K1'").fetchall())
    with Staging(world, "_test") as stage:
        moved = world.execute(
            f"SELECT form, period, kode_jejaring FROM {moved_members(stage, ['2025-06'])} "
            "WHERE kode_faskes = 'K1' ORDER BY ALL").fetchall()
    # the registry says P2, so only P1's months are exceptions: tb Jan–Feb, kia Jan–Apr,
    # ptm Jan–Jun
    assert moved == sorted([("tb", p, "P1") for p in months[:2]]
                           + [("kia", p, "P1") for p in months[:4]]
                           + [("ptm", p, "P1") for p in months[:6]])
    # compliance: the same networks for the months the form is expected (tb, kia all year; ptm
    # only January–May, assigned on every day of the month)
    assert expected[("tb", "2025-02")] == "P1" and expected[("tb", "2025-03")] == "P2"
    assert expected[("kia", "2025-04")] == "P1" and expected[("kia", "2025-05")] == "P2"
    assert expected[("ptm", "2025-05")] == "P1" and ("ptm", "2025-06") not in expected
    for (form, period), jejaring in expected.items():
        assert jejaring == network(world, "K1", form, period), (form, period)
