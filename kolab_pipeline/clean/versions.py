"""Versions: the staged rows without any error (`_clean_kept`, one kept raw row), numbered per
facility × period × form in the order they were received; the last version is current.
"""

from __future__ import annotations

from kolab_pipeline.warehouse import Staging

# rows without any error, with the number of versions of their key
OK_ROWS = """
WITH ok AS (SELECT * FROM _clean_rows staged
             ANTI JOIN _clean_err err ON err.raw_row_id = staged.raw_row_id)
SELECT ok.rk, ok.raw_row_id, ok.file_id, ok.source_kind, ok.source_path, ok.sheet,
       ok.row_number, ok.kode_faskes, ok.period, ok.form, ok.is_nil, ok.received_at,
       ok.received_source, ok.file_received_at, ok.dinkes_source, ok.declared_at,
       ok.reporting_level, ok.lingkup_written, per_key.n_versions
  FROM ok
  JOIN (SELECT kode_faskes, period, form, count(*) AS n_versions FROM ok GROUP BY ALL) per_key
    ON per_key.kode_faskes = ok.kode_faskes AND per_key.period = ok.period
   AND per_key.form = ok.form
"""

# Most keys have one version: only keys with several are sorted (the window). Order: the row's
# received time at its reporting stage (a network facility's `tanggal_lapor`, a puskesmas's
# receipt at the Dinkes), then the receipt at the Dinkes, then where the row sits (see
# docs/design/clean.md).
KEPT = """
SELECT numbered.* EXCLUDE (file_received_at), numbered.file_received_at AS received_dinkes_at,
       md5(concat_ws('|', numbered.kode_faskes, numbered.period, numbered.form,
                     CAST(numbered.version AS VARCHAR))) AS submission_id
  FROM (
    SELECT *, 1 AS version FROM _clean_ok WHERE n_versions = 1
    UNION ALL
    SELECT *, CAST(row_number() OVER received AS INTEGER) AS version
      FROM _clean_ok WHERE n_versions > 1
    WINDOW received AS (PARTITION BY kode_faskes, period, form
                        ORDER BY received_at NULLS FIRST, file_received_at NULLS FIRST,
                                 source_path, sheet, row_number, raw_row_id)
  ) numbered
"""


def stage_kept(stage: Staging) -> None:
    """`_clean_kept`: the rows without any error, with `version`, `n_versions` and
    `submission_id = md5(kode_faskes|period|form|version)`."""
    ok = stage.create("ok", OK_ROWS)
    stage.create("kept", KEPT)
    stage.con.execute(f"DROP TABLE {ok}")  # can be large; not needed past this step
