"""The follow-up list (`evaluation.followup`) on the compliance of `tests/support/compliance.py`
`network_home`: October–December 2024 of a small network, as of 2025-01-12."""

from __future__ import annotations

from datetime import datetime

import pytest

from kolab_pipeline import evaluation
from kolab_pipeline.config import Settings
from tests.support.compliance import NETWORK_PERIODS, network_home


@pytest.fixture
def network(con, kolab_home):
    network_home(con, kolab_home)
    evaluation.build_followup(con, Settings.load(kolab_home), NETWORK_PERIODS)
    return con


def test_followup_list(network):
    con = network
    cur = con.execute("""
        SELECT kode_faskes, form, kode_puskesmas_induk, nama_puskesmas_induk, months_missing,
               months_late, consecutive_missing, missing_periods, last_received_period,
               latest_status, pending_overdue
          FROM evaluation.followup WHERE as_of_period = '2024-11' ORDER BY 1, 2""")
    assert cur.fetchall() == [
        ("K1", "tb", "P1", "Faskes P1", 1, 0, 0, "2024-10", "2024-11", "on_time", False),
        ("P1", "ptm", "P1", "Faskes P1", 1, 1, 0, "2024-10", "2024-11", "late", False),
        ("P2", "tb", "P2", "Faskes P2", 1, 0, 1, "2024-11", "2024-10", "missing", False),
        ("T1", "tb", "P1", "Faskes P1", 2, 0, 2, "2024-10, 2024-11", None, "missing", False),
    ]
    dec = {r[0] + "/" + r[1]: r[2:] for r in con.execute("""
        SELECT kode_faskes, form, consecutive_missing, latest_status, pending_overdue,
               last_received_at
          FROM evaluation.followup WHERE as_of_period = '2024-12'""").fetchall()}
    # December is pending and overdue for every report at the as-of: P1 tb (all on time) is
    # listed too; T1 tb: Oct + Nov missing + Dec overdue = 3 months in a row without a report
    assert set(dec) == {"K1/tb", "P1/ptm", "P1/tb", "P2/tb", "T1/tb"}
    assert dec["T1/tb"][:3] == (3, "pending", True)
    assert dec["P1/tb"][:3] == (1, "pending", True)
    assert dec["P1/tb"][3] == datetime.fromisoformat("2024-12-10T20:00:00+07:00")


def test_followup_rerun_is_idempotent(network, kolab_home):
    con = network
    settings = Settings.load(kolab_home)
    first = sorted(con.execute("SELECT * FROM evaluation.followup").fetchall(), key=repr)
    assert first
    evaluation.build_followup(con, settings, NETWORK_PERIODS)
    evaluation.build_followup(con, settings, ["2024-11"])
    assert sorted(con.execute("SELECT * FROM evaluation.followup").fetchall(), key=repr) == first
