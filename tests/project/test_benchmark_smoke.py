"""The benchmark script runs end to end at a tiny scale and prints the lines the README promises.

No timing is asserted (timings depend on the machine and its load); only that every stage ran,
reported rows and memory, and that the floor, the incremental month and the scaling helpers work.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "run_benchmark.py"
sys.path.insert(0, str(REPO / "benchmarks"))

from run_benchmark import fit_exponent, hide, reveal  # noqa: E402


def test_hide_and_reveal_one_month_of_landing(tmp_path):
    landing, store = tmp_path / "landing", tmp_path / "held"
    for rel in ("3672_cilegon/tb/2025-01/rekap.csv", "3672_cilegon/tb/2025-02/rekap.csv",
                "3672_cilegon/kia/2025-02/KP01_kia_2025-02.csv", "_diterima.csv"):
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(rel, encoding="utf-8")
    # two month folders of 2025-02 hidden; January and the manifest stay
    assert hide(landing, "2025-02", store) == 2
    left = sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file())
    assert left == ["3672_cilegon/tb/2025-01/rekap.csv", "_diterima.csv"]
    reveal(landing, store)
    assert (landing / "3672_cilegon/kia/2025-02/KP01_kia_2025-02.csv").read_text() == \
        "3672_cilegon/kia/2025-02/KP01_kia_2025-02.csv"


def test_fit_exponent_recovers_known_powers():
    # y = 3·x² → log y = log 3 + 2 log x: the fitted slope is exactly 2
    assert fit_exponent([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    # y = 5·x (linear): slope 1
    assert fit_exponent([10, 20, 40], [50, 100, 200]) == pytest.approx(1.0)


def test_sample_fraction_keeps_an_even_share_of_kabkota():
    import pandas as pd

    from kolab_pipeline.sample import subset_places

    places = pd.DataFrame({"kode_kabkota": [f"{i:02d}" for i in range(16)]})
    # f = 1/4: rows i with floor((i+1)/4) > floor(i/4) → i = 3, 7, 11, 15
    assert subset_places(places, 0.25)["kode_kabkota"].tolist() == ["03", "07", "11", "15"]
    assert len(subset_places(places, 1.0)) == 16


def test_benchmark_runs_end_to_end_at_tiny_scale(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "national", "--fraction", "0.005", "--months", "1",
         "--no-dagster", "--no-incremental", "--workdir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert re.search(r"generation: [\d.]+ s, peak \d+ MB", out)
    assert re.search(r"floor \(DuckDB alone.*\): [\d.]+ s, peak \d+ MB, [\d,]+ rows in", out)
    # one line per stage with wall s, rows in, rows out, rows/s, peak MB — and a total
    for stage in ("reference", "ingest", "clean", "compliance", "indicators", "evaluation"):
        line = re.search(rf"^  {stage}\s+([\d.]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+(\d+)$",
                         out, re.M)
        assert line, stage
        assert int(line.group(2).replace(",", "")) > 0, stage       # rows in
        assert int(line.group(5)) > 0, stage                          # peak MB
    assert re.search(r"^  TOTAL\s+[\d.]+\s+[\d,]+", out, re.M)
    assert re.search(r"ratio pipeline ÷ floor: [\d.]+×", out)
    # the checks ran and passed on generated (clean) data
    assert "unreconciled=0" in out and "accounted=True" in out and "mismatches=0" in out
    # the temp work folder is removed without --keep (the home inside it)
    assert not any(tmp_path.glob("home_*"))
