"""Onboarding a Dinkes's own data: `kolab init` (starter registry, sasaran skeleton, kolab.yaml,
templates), `kolab check` (pre-flight findings with file, row and column) and the run feedback
`kolab run` prints at its end (what was received from which source, quarantined, ignored).

Reference data is read through the reference layer's own loaders into an in-memory DuckDB
(`reference_db`), so the BPS↔Kemendagri bridge rule lives in one place (`reference.py`).
"""

from __future__ import annotations

import duckdb

from kolab_pipeline import reference


def reference_db() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse holding `reference.wilayah`, `reference.bps_bridge`,
    `reference.puskesmas_2019` and `reference.data_element` (about half a second)."""
    con = duckdb.connect()
    reference.load_wilayah(con)
    reference.load_catalogues(con)
    return con
