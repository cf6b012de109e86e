"""`build_clean`: bring the five `clean.*` tables up to date with `raw.*` and `reference.*` —
incremental by default (only raw files changed since the last build, and the keys they touch),
a full rebuild when asked, on the first build, or when the build signature changed.
"""

from __future__ import annotations

from typing import Any

import duckdb

from kolab_pipeline.clean import scope
from kolab_pipeline.clean.parsers import install_macros
from kolab_pipeline.clean.queries import summarise
from kolab_pipeline.clean.signature import build_signature
from kolab_pipeline.clean.stage import (
    PREFIX,
    stage_catalogue,
    stage_errors,
    stage_rows,
    stage_rules,
)
from kolab_pipeline.clean.versions import stage_kept
from kolab_pipeline.clean.write import write
from kolab_pipeline.config import Settings
from kolab_pipeline.rules import rules
from kolab_pipeline.warehouse import Staging, ensure_schema

# Keys of `build_clean`'s summary that describe the build itself rather than the clean layer.
RUN_KEYS = ("mode", "full_reason", "files_cleaned", "rows_cleaned", "keys_recomputed")


def build_clean(con: duckdb.DuckDBPyConnection, settings: Settings,
                full: bool = False) -> dict[str, Any]:
    """Bring the five clean tables up to date with `raw.*` and `reference.*` (idempotent).

    Incremental by default: only raw files new, changed or gone since the last build
    (`clean.build_state`) are cleaned, and the facility × period × form keys they touch are
    recomputed whole, with the YTD warnings of the facility × form × years around them; the
    result equals a full rebuild exactly (tests/clean/test_clean_incremental.py). A full rebuild
    happens with `full=True`, on the first build, and whenever the build signature changed
    (`signature.py`: rules, settings, reference rows, `CLEAN_LOGIC_VERSION`).

    The tables are changed in one transaction, so readers never see a half-built clean layer.
    Returns a summary: counts of the whole clean layer, per rule, and what this build did
    (`RUN_KEYS`: `mode`, `full_reason`, `files_cleaned`, `rows_cleaned`, `keys_recomputed`).
    """
    ensure_schema(con)
    install_macros(con)
    relations = [(r.rule_id, rel) for r in rules().values() if r.severity == "warning"
                 for rel in r.relations]
    with Staging(con, PREFIX) as stage:
        stage_rules(stage)
        stage_catalogue(stage)
        signature = build_signature(con, settings, relations)
        n_files = scope.stage_files(stage)
        why_full = "asked for (full=True)" if full else scope.needs_full(stage, signature)
        incremental = why_full is None
        if incremental:
            n_files = scope.stage_scope(stage)
            stage_rows(stage, settings, scoped=True)
            stage_errors(stage)
            scope.widen_scope(stage)
        stage_rows(stage, settings, scoped=incremental)
        stage_errors(stage)
        stage_kept(stage)
        n_rows = con.execute("SELECT count(*) FROM _clean_rows").fetchone()[0]
        n_keys = con.execute(
            "SELECT count(*) FROM _clean_kept WHERE version = n_versions").fetchone()[0]
        write(stage, relations, incremental, signature, settings.config.timezones.default)
    summary = summarise(con)
    summary.update(mode="incremental" if incremental else "full", full_reason=why_full,
                   files_cleaned=n_files, rows_cleaned=n_rows, keys_recomputed=n_keys)
    return summary
