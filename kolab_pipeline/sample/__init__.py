"""`kolab sample-data`: a deterministic, realistic evaluation setting plus its answer key.

Writes into `KOLAB_HOME` (contract: `docs/SAMPLE_DATA.md`): `kolab.yaml` (partition start,
as-of), `registry/`, `landing/` and `ground_truth/`. Same seed + as_of + scale + months + messy
⇒ byte-identical files. `common` holds what both scales share; `kabupaten` (+ `kabupaten_writer`,
`formats`) the five messy places; `national` every kab/kota.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from kolab_pipeline.config import load_config
from kolab_pipeline.sample.common import Run, SampleDataError, sample_periods
from kolab_pipeline.sample.kabupaten import RECAP_SCOPE_BY_KABKOTA, build_kabupaten
from kolab_pipeline.sample.national import build_national, subset_places

__all__ = ["SampleDataError", "generate", "sample_periods", "subset_places"]


def _prepare_home(home: Path) -> None:
    """Remove the previous sample (landing/registry/ground_truth) so re-runs are byte-identical;
    refuse when landing/ holds files a previous `kolab sample-data` did not write."""
    gt = home / "ground_truth" / "summary.json"
    landing = home / "landing"
    if landing.exists() and any(landing.iterdir()) and not gt.exists():
        raise SampleDataError(f"{landing}: holds files not written by `kolab sample-data`; "
                              "move them away or choose another --home")
    for sub in ("landing", "registry", "ground_truth"):
        if (home / sub).exists():
            shutil.rmtree(home / sub)
    home.mkdir(parents=True, exist_ok=True)


def _write_kolab_yaml(home: Path, first_period: str, as_of: date, scale: str) -> None:
    path = home / "kolab.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise SampleDataError(f"{path}: expected a mapping at the top level; cannot merge")
    data.setdefault("partitions", {})
    data.setdefault("reporting", {})
    data["partitions"]["start"] = f"{first_period}-01"
    data["reporting"]["as_of"] = as_of.isoformat()
    # the kab/kota whose puskesmas send area recaps declared by kolab.yaml (the national scale
    # writes none)
    if scale == "kabupaten":
        data["reporting"]["puskesmas_scope_by_kabkota"] = RECAP_SCOPE_BY_KABKOTA
    else:
        data["reporting"].pop("puskesmas_scope_by_kabkota", None)
    path.write_text("# written by `kolab sample-data` (partitions.start, reporting.as_of, "
                    "reporting.puskesmas_scope_by_kabkota)\n"
                    + yaml.safe_dump(data, sort_keys=True, allow_unicode=True), encoding="utf-8")


def generate(home: Path, seed: int, as_of: date, scale: str, months: int, messy: bool,
             fraction: float = 1.0) -> str:
    """Generate the sample into `home`; returns a short human summary (where, how many).

    `fraction` (national scale only, 0 < f ≤ 1) keeps an evenly spread share of the kab/kota
    (`subset_places`), so the benchmark can measure how cost grows with the data.
    """
    if scale not in ("kabupaten", "national"):
        raise SampleDataError(f"--scale must be kabupaten or national (got {scale!r})")
    if not 0 < fraction <= 1:
        raise SampleDataError(f"fraction must be in (0, 1] (got {fraction!r})")
    home = Path(home).resolve()
    periods = sample_periods(as_of, months, load_config(home))
    _prepare_home(home)
    _write_kolab_yaml(home, periods[0], as_of, scale)
    cfg = load_config(home)
    run = Run(home=home, seed=seed, as_of=as_of, scale=scale, months=months, messy=messy, cfg=cfg,
              periods=periods, as_of_utc=cfg.reporting.as_of_utc(), fraction=fraction)
    return build_kabupaten(run) if scale == "kabupaten" else build_national(run)
