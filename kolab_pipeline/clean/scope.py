"""What a build must clean: the raw files and facility × period × form keys that changed since
the last build. Owns `clean.build_state` (one row per raw file cleaned, with its content
signature and the build signature), the base of incremental builds.
"""

from __future__ import annotations

from kolab_pipeline.warehouse import Staging

STATE = "clean.build_state"

# one row per raw file (landing_file and/or submission_row file_id), with a signature of
# everything the clean layer reads from it: the manifest row and every raw row
FILE_SIGNATURES = """
SELECT coalesce(landing.file_id, raw_rows.file_id) AS file_id,
       concat_ws(':', coalesce(raw_rows.n_rows, 0), coalesce(raw_rows.h, 0),
                 coalesce(landing.h, 0)) AS signature,
       coalesce(raw_rows.n_rows, 0) AS n_rows
  FROM (SELECT file_id,
               sum(hash(status, reject_rule, reject_reason, received_at, received_source,
                        source_kind, run_id, ingested_at)) AS h
          FROM raw.landing_file GROUP BY file_id) landing
  FULL JOIN (SELECT file_id, count(*) AS n_rows,
                    sum(hash(raw_row_id, source_kind, source_path, sheet, row_number, form,
                             periode, kode_faskes, nama_faskes, tanggal_lapor, laporan_nihil,
                             lingkup_laporan, received_at, run_id)) AS h
               FROM raw.submission_row GROUP BY file_id) raw_rows
    ON raw_rows.file_id = landing.file_id
"""

DIRTY_FILES = f"""
SELECT coalesce(now_file.file_id, built.file_id) AS file_id
  FROM _clean_file_now now_file FULL JOIN {STATE} built ON built.file_id = now_file.file_id
 WHERE now_file.signature IS DISTINCT FROM built.signature
"""

DIRTY_ROWS = """SELECT raw_row_id FROM raw.submission_row SEMI JOIN _clean_dirty USING (file_id)"""

# keys of the rows the dirty files hold now (kept) and of their rows the last build kept
TOUCHED_KEYS = """
SELECT DISTINCT kode_faskes, period, form FROM (
    SELECT kode_faskes, period, form FROM _clean_rows ANTI JOIN _clean_err USING (raw_row_id)
    UNION ALL
    SELECT kode_faskes, period, form FROM clean.submission SEMI JOIN _clean_dirty USING (file_id))
"""

# the other kept rows of those keys, from unchanged files
ADD_KEY_ROWS = """
INSERT INTO _clean_scope
SELECT kept.raw_row_id FROM clean.submission kept
  SEMI JOIN _clean_keys touched
    ON touched.kode_faskes = kept.kode_faskes AND touched.period = kept.period
   AND touched.form = kept.form
  ANTI JOIN _clean_dirty dirty ON dirty.file_id = kept.file_id
"""

TOUCHED_GROUPS = """SELECT DISTINCT kode_faskes, form, substr(period, 1, 4) AS year
  FROM _clean_keys"""


def stage_files(stage: Staging) -> int:
    """`_clean_file_now`: one row per raw file with the signature of what the clean layer reads
    from it. The raw layer writes a file's rows and cells in one transaction and never edits
    them (a changed file is a new file_id), so a file whose signature is unchanged needs no
    cleaning. Returns the number of files."""
    files = stage.create("file_now", FILE_SIGNATURES)
    return stage.con.execute(f"SELECT count(*) FROM {files}").fetchone()[0]


def needs_full(stage: Staging, signature: str) -> str | None:
    """Why an incremental build is not possible (None when it is)."""
    con = stage.con
    n_state, n_other = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE fingerprint <> $signature) FROM {STATE}",
        {"signature": signature}).fetchone()
    if n_state == 0:
        return "no previous build"
    if n_other:
        return "rules, settings, reference or code changed"
    if con.execute("SELECT count(*) FROM _clean_file_now WHERE file_id IS NULL").fetchone()[0]:
        return "raw rows without a file_id"
    if not con.execute("SELECT EXISTS (SELECT 1 FROM clean.submission) "
                       "OR EXISTS (SELECT 1 FROM clean.quarantine)").fetchone()[0]:
        return "clean tables are empty"
    return None


def stage_scope(stage: Staging) -> int:
    """`_clean_dirty` (files new, changed or gone since the last build) and `_clean_scope`
    (their raw rows). Returns the number of dirty files."""
    dirty = stage.create("dirty", DIRTY_FILES)
    stage.create("scope", DIRTY_ROWS)
    return stage.con.execute(f"SELECT count(*) FROM {dirty}").fetchone()[0]


def widen_scope(stage: Staging) -> None:
    """The keys touched by the dirty files — facility × period × form of their kept rows now
    and of their rows kept by the last build (`_clean_keys`) — go back to the versioning whole:
    add the other kept rows of those keys (from unchanged files) to the scope. Errors never
    depend on another file, so rows of unchanged files keep their verdict; only versions (and
    the YTD warnings of the facility × form × years in `_clean_groups`) move."""
    stage.create("keys", TOUCHED_KEYS)
    stage.con.execute(ADD_KEY_ROWS)
    stage.create("groups", TOUCHED_GROUPS)
