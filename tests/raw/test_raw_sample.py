"""Raw layer on the sample generator's messy output: every broken file of the answer key
(`ground_truth/broken_files.csv`) is rejected with its rule id, every other landing file is
ingested, and counts reconcile."""

from __future__ import annotations

from datetime import date

import pandas as pd

from kolab_pipeline import raw
from kolab_pipeline.config import Settings
from kolab_pipeline.sample import generate


def test_sample_data_broken_files_match_ground_truth(kolab_home, con):
    generate(kolab_home, seed=1, as_of=date(2025, 1, 20), scale="kabupaten", months=3, messy=True)
    settings = Settings.load(kolab_home)
    s = raw.ingest_landing(con, settings, run_id="sample")
    broken = pd.read_csv(kolab_home / "ground_truth" / "broken_files.csv", dtype=str)
    assert len(broken) > 0
    # a path's outcome is that of its content (two zero-byte files share one file_id)
    outcome = con.execute("""
        SELECT p.source_path, f.status, f.reject_rule
          FROM raw.landing_path p JOIN raw.landing_file f USING (file_id)
    """).df().set_index("source_path")
    for rec in broken.itertuples():
        assert outcome.loc[rec.file, "status"] == "rejected", rec.file
        assert outcome.loc[rec.file, "reject_rule"] == rec.rule_id, (rec.file, rec.what)
    others = outcome.drop(index=broken["file"])
    assert (others["status"] == "ingested").all(), others[others["status"] != "ingested"]
    # every submission file of landing/ is accounted for
    # (the manifest and the DHIS2 mapping are not submissions)
    assert len(outcome) == s.files_seen
    assert raw.unreconciled_files(con).empty
