"""The writes: the five `clean.*` tables and `clean.build_state` replaced from the staged tables
in one transaction — everything (full build) or what the dirty files touched (incremental).
"""

from __future__ import annotations

from kolab_pipeline.clean.flags import Relations, stage_ytd, validation_flags
from kolab_pipeline.clean.scope import STATE
from kolab_pipeline.warehouse import Params, Staging, bind, table, transaction

CLEAN_TABLES = ("clean.submission", "clean.submission_value", "clean.submission_value_history",
                "clean.quarantine", "clean.validation_flag")

# --- incremental: what the dirty files touched goes -----------------------------------------------

DELETE_TOUCHED_KEYS = """DELETE FROM {table} AS old USING _clean_keys touched
 WHERE old.kode_faskes = touched.kode_faskes AND old.period = touched.period
   AND old.form = touched.form"""

DELETE_TOUCHED_QUARANTINE = """DELETE FROM clean.quarantine WHERE raw_row_id IS NULL
   OR file_id IN (SELECT file_id FROM _clean_dirty)
   OR raw_row_id IN (SELECT raw_row_id FROM _clean_scope)"""

DELETE_TOUCHED_FLAGS = """DELETE FROM clean.validation_flag AS old USING _clean_groups touched
 WHERE old.kode_faskes = touched.kode_faskes AND old.form = touched.form
   AND substr(old.period, 1, 4) = touched.year"""

DELETE_DIRTY_STATE = f"DELETE FROM {STATE} WHERE file_id IN (SELECT file_id FROM _clean_dirty)"

# --- the new rows ---------------------------------------------------------------------------------

SUBMISSIONS = """
SELECT submission_id, kode_faskes, period, form, version, version = n_versions AS is_current,
       received_at, received_source, is_nil AS is_nil_report, source_kind, raw_row_id, file_id,
       source_path, sheet, row_number
  FROM _clean_kept"""

# every version's values; a blank cell stays NULL unless the row is a nil report
CELLS_OF_KEPT = """
SELECT kept.submission_id, kept.kode_faskes, kept.period, kept.form, kept.version,
       cell.data_element, CASE WHEN kept.is_nil THEN coalesce(cell.value, 0) ELSE cell.value END
         AS value
  FROM _clean_kept kept JOIN _clean_cell cell ON cell.rk = kept.rk
 WHERE {where}"""

# only groups with several versions need the (sorting) window for the previous value
VALUE_HISTORY = f"""
SELECT submission_id, kode_faskes, period, form, version, data_element, value,
       NULL::BIGINT AS previous_value, false AS changed
  FROM ({CELLS_OF_KEPT.format(where="kept.n_versions = 1")})
UNION ALL
SELECT submission_id, kode_faskes, period, form, version, data_element, value,
       CASE WHEN prev_version = version - 1 THEN prev_value END AS previous_value,
       version > 1 AND (prev_version IS DISTINCT FROM version - 1
                        OR value IS DISTINCT FROM prev_value) AS changed
  FROM (SELECT *, lag(version) OVER by_version AS prev_version,
               lag(value) OVER by_version AS prev_value
          FROM ({CELLS_OF_KEPT.format(where="kept.n_versions > 1")})
        WINDOW by_version AS (PARTITION BY kode_faskes, period, form, data_element
                              ORDER BY version))"""

CURRENT_VALUES = f"""
SELECT submission_id, kode_faskes, period, form, data_element, value
  FROM ({CELLS_OF_KEPT.format(where="kept.version = kept.n_versions")})"""

# the facility the row names, as written when it did not resolve
_KODE = "coalesce(staged.kode_faskes, staged.kode_written, staged.nama_faskes)"


def _file_reason_id(path: str) -> str:
    """The Indonesian reason of a row of a file the raw layer rejected (rules F01…F10): the
    catalogue's `message_id` and the file — Indonesian only (the raw layer's detail of what was
    wrong is English: it stays in `reason_en`). `path` is a SQL expression."""
    return f"concat_ws(' — ', rule.message_id, 'berkas ' || {path})"

QUARANTINE = f"""
SELECT err.raw_row_id, staged.file_id, staged.source_path, staged.sheet, staged.row_number,
       err.rule_id, 'error' AS severity, err.column_name, err.value_text,
       CASE WHEN staged.file_status = 'rejected'
            THEN {_file_reason_id("staged.source_path")}
            ELSE kolab_fill(rule.template_id, err.value_text, err.column_name, {_KODE},
                            staged.period, staged.jenis_faskes, staged.received_local_date)
       END AS reason_id,
       CASE WHEN staged.file_status = 'rejected'
                 AND contains(coalesce(staged.file_reject_reason, ''), rule.message_en)
            THEN staged.file_reject_reason
            WHEN staged.file_status = 'rejected'
            THEN concat_ws(' — ', rule.message_en, staged.file_reject_reason)
            ELSE kolab_fill(rule.template_en, err.value_text, err.column_name, {_KODE},
                            staged.period, staged.jenis_faskes, staged.received_local_date)
       END AS reason_en,
       coalesce(staged.kode_faskes, staged.kode_written) AS kode_faskes, staged.period,
       staged.form
  FROM _clean_err err
  JOIN _clean_rows staged ON staged.raw_row_id = err.raw_row_id
  LEFT JOIN _clean_rule rule ON rule.rule_id = err.rule_id
UNION ALL
-- whole files the raw layer rejected: one quarantine row per path the content was seen at (two
-- empty files share one sha256, but both senders must hear about it). Small: rewritten by every
-- build, so a new path of an old rejected content is never missed.
SELECT NULL, landing.file_id, coalesce(paths.source_path, landing.source_path), NULL, NULL,
       coalesce(landing.reject_rule, 'F01'), 'error', NULL, NULL,
       {_file_reason_id("coalesce(paths.source_path, landing.source_path)")},
       -- the raw layer's reason already quotes the English catalogue message
       CASE WHEN contains(coalesce(landing.reject_reason, ''), rule.message_en)
            THEN landing.reject_reason
            ELSE concat_ws(' — ', rule.message_en, landing.reject_reason) END,
       NULL, NULL, NULL
  FROM raw.landing_file landing
  LEFT JOIN (SELECT DISTINCT file_id, source_path FROM raw.landing_path) paths
         ON paths.file_id = landing.file_id
  LEFT JOIN _clean_rule rule ON rule.rule_id = coalesce(landing.reject_rule, 'F01')
 WHERE landing.status = 'rejected'"""

BUILD_STATE = f"""INSERT INTO {STATE} (file_id, signature, n_rows, fingerprint, cleaned_at)
SELECT file_id, signature, n_rows, $signature, now() FROM _clean_file_now {{only_dirty}}"""


def insert(stage: Staging, key: str, select_sql: str, params: Params = ()) -> None:
    """INSERT the contract columns of `key` from `select_sql`. Used inside one transaction for
    all five tables (instead of `warehouse.replace_rows`, which commits per table) so a failed
    rebuild leaves the previous clean layer intact."""
    target = table(key)
    cols = ", ".join(target.column_names)
    sql = f"INSERT INTO {target.qualified} ({cols}) SELECT {cols} FROM ({select_sql}) AS src"
    stage.con.execute(sql, bind(sql, params))


def write(stage: Staging, relations: Relations, incremental: bool, signature: str) -> None:
    """Replace the clean rows in one transaction: everything (full) or the touched keys, the
    dirty files' quarantine rows and the touched facility × form × year warning groups
    (incremental)."""
    con = stage.con
    with transaction(con):
        if incremental:
            for key in ("clean.submission", "clean.submission_value",
                        "clean.submission_value_history"):
                con.execute(DELETE_TOUCHED_KEYS.format(table=table(key).qualified))
            con.execute(DELETE_TOUCHED_QUARANTINE)
            con.execute(DELETE_TOUCHED_FLAGS)
            con.execute(DELETE_DIRTY_STATE)
        else:
            for key in (*CLEAN_TABLES, STATE):
                con.execute(f"DELETE FROM {table(key).qualified}")
        insert(stage, "clean.submission", SUBMISSIONS)
        insert(stage, "clean.submission_value_history", VALUE_HISTORY)
        insert(stage, "clean.submission_value", CURRENT_VALUES)
        insert(stage, "clean.quarantine", QUARANTINE)
        # warnings, read back from the current versions just written (see `stage_ytd`)
        stage_ytd(stage, relations, groups=incremental)
        insert(stage, "clean.validation_flag", *validation_flags(relations, groups=incremental))
        sql = BUILD_STATE.format(
            only_dirty="SEMI JOIN _clean_dirty USING (file_id)" if incremental else "")
        con.execute(sql, {"signature": signature})
