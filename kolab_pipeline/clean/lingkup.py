"""Report scope (lingkup laporan): the scope of every kept row, and the one place a puskesmas's
area recap becomes its own share, so nothing downstream counts a network twice.

A row is the facility's own services (`faskes`, the default) or — a puskesmas only — the recap
of its working area (`wilayah`): its `lingkup_laporan` cell, else kolab.yaml
`reporting.puskesmas_scope*`. For a `wilayah` recap `clean.submission_value` keeps
`reported_value`, the network's sum that month in `network_value` (the network of the month:
`reference.network_of_month_sql`) and in `value` the own share max(reported − network, 0);
warnings L02 (recap below its network) and L03 (a `faskes` row that looks like a recap, settings
`config.RecapDetection`). Design: docs/design/clean.md, "Report scope".

Staged tables (grain): `_clean_scope_config` (kab/kota or '' × form), `_clean_lingkup` (kept
row), `_clean_recap_pairs` (puskesmas × form recomputed), `_clean_recap_sub` and
`_clean_network_sub` (current submission), `_clean_network_sum` (network × period × form ×
element).
"""

from __future__ import annotations

from kolab_pipeline.clean.flags import FLAGS
from kolab_pipeline.config import Settings
from kolab_pipeline.reference import network_of_month_sql
from kolab_pipeline.warehouse import Staging, table

SCOPE_RULES = ("L02", "L03")   # the warnings `derive` owns (L01 is an error, L04 in flags.py)

# L01: a lingkup_laporan cell that names no scope (appended to `_clean_err` by `stage_errors`)
SCOPE_ERRORS = """
INSERT INTO _clean_err
SELECT raw_row_id, 'L01', 'lingkup_laporan', lingkup_written
  FROM _clean_rows WHERE kolab_report_scope(lingkup_written) = '#'
"""

CONFIG_TABLE = """SELECT NULL::VARCHAR AS kode_kabkota, NULL::VARCHAR AS form,
       NULL::VARCHAR AS lingkup LIMIT 0"""

# The scope of each kept row: only a puskesmas reports for an area; the row's column wins over
# the kab/kota's kolab.yaml entry, which wins over the general one.
LINGKUP = """
SELECT kept.rk, kept.submission_id,
       CASE WHEN facility.jenis_faskes <> 'puskesmas' THEN 'faskes'
            ELSE coalesce(written.lingkup, by_kabkota.lingkup, general.lingkup, 'faskes')
       END AS lingkup_laporan,
       CASE WHEN written.lingkup IS NOT NULL THEN 'column'
            WHEN facility.jenis_faskes = 'puskesmas'
                 AND coalesce(by_kabkota.lingkup, general.lingkup) IS NOT NULL THEN 'kolab.yaml'
            ELSE 'default' END AS lingkup_source
  FROM _clean_kept kept
  JOIN reference.facility facility ON facility.kode_faskes = kept.kode_faskes
  LEFT JOIN (SELECT DISTINCT lingkup_written, kolab_report_scope(lingkup_written) AS lingkup
               FROM _clean_kept) written
         ON written.lingkup_written = kept.lingkup_written
  LEFT JOIN _clean_scope_config by_kabkota
         ON by_kabkota.kode_kabkota = facility.kode_kabkota AND by_kabkota.form = kept.form
  LEFT JOIN _clean_scope_config general
         ON general.kode_kabkota = '' AND general.form = kept.form
"""


def stage_lingkup(stage: Staging, settings: Settings) -> None:
    """`_clean_lingkup`: the scope in force of every kept row (`lingkup_laporan`) and what
    decided it (`lingkup_source`: column | kolab.yaml | default)."""
    config = stage.create("scope_config", CONFIG_TABLE)
    rows = settings.config.reporting.scope_rows()
    if rows:
        stage.con.executemany(f"INSERT INTO {config} VALUES (?, ?, ?)", rows)
    stage.create("lingkup", LINGKUP)


# --- which puskesmas × form to recompute ---------------------------------------------------------

ALL_PAIRS = """
SELECT DISTINCT submission.kode_faskes AS kode_puskesmas, submission.form
  FROM clean.submission submission
  JOIN reference.facility facility ON facility.kode_faskes = submission.kode_faskes
 WHERE submission.is_current AND facility.jenis_faskes = 'puskesmas'
"""

# the networks of the keys the dirty files touched (a puskesmas key is its own network)
TOUCHED_PAIRS = f"""
SELECT DISTINCT network.kode_jejaring AS kode_puskesmas, network.form
  FROM ({network_of_month_sql("_clean_keys")}) network
  JOIN reference.facility puskesmas
    ON puskesmas.kode_faskes = network.kode_jejaring AND puskesmas.jenis_faskes = 'puskesmas'
"""

RECAP_SUBMISSIONS = """
SELECT submission.submission_id, submission.kode_faskes AS kode_puskesmas, submission.period,
       submission.form, submission.lingkup_laporan,
       CAST(substr(submission.period, 1, 4) AS INTEGER) * 12
         + CAST(substr(submission.period, 6, 2) AS INTEGER) AS month_no
  FROM clean.submission submission
  SEMI JOIN _clean_recap_pairs pair
    ON pair.kode_puskesmas = submission.kode_faskes AND pair.form = submission.form
 WHERE submission.is_current
"""

# current reports of network facilities that were ever linked to one of the puskesmas (a cheap
# superset), then placed in the network of their month
NETWORK_SUBMISSIONS = f"""
WITH candidate AS (
    SELECT submission.submission_id, submission.kode_faskes, submission.period, submission.form
      FROM clean.submission submission
      JOIN reference.facility facility ON facility.kode_faskes = submission.kode_faskes
     WHERE submission.is_current AND facility.jenis_faskes <> 'puskesmas'
       AND submission.kode_faskes IN (
             SELECT kode_faskes FROM reference.facility
              WHERE kode_puskesmas_induk IN (SELECT kode_puskesmas FROM _clean_recap_pairs)
             UNION ALL
             SELECT kode_faskes FROM reference.form_assignment
              WHERE kode_puskesmas_induk IN (SELECT kode_puskesmas FROM _clean_recap_pairs))
)
SELECT candidate.submission_id, network.kode_jejaring, candidate.period, candidate.form
  FROM candidate
  JOIN ({network_of_month_sql("candidate")}) network
    ON network.kode_faskes = candidate.kode_faskes AND network.period = candidate.period
   AND network.form = candidate.form
  SEMI JOIN _clean_recap_pairs pair
    ON pair.kode_puskesmas = network.kode_jejaring AND pair.form = candidate.form
"""

# The join is MATERIALIZED before the sums: otherwise DuckDB 2.0 pushes a partial aggregate
# below the join, grouping every value by its own (submission, element) key — 3.4 s instead of
# 0.5 s at 1/8 national (same rows).
NETWORK_SUMS = """
WITH reported AS MATERIALIZED (
    SELECT network.kode_jejaring, network.period, network.form, reported.data_element,
           reported.reported_value
      FROM _clean_network_sub network
      JOIN clean.submission_value reported ON reported.submission_id = network.submission_id
     WHERE reported.reported_value IS NOT NULL
)
SELECT kode_jejaring, period, form, data_element, sum(reported_value) AS network_value
  FROM reported
 GROUP BY ALL
"""

# --- the own share --------------------------------------------------------------------------------

OWN_SHARE = """
UPDATE clean.submission_value AS target
   SET network_value = derived.network_value, value = derived.own_value
  FROM (SELECT recap_value.submission_id, recap_value.data_element,
               coalesce(network.network_value, 0) AS network_value,
               -- (greatest() skips NULLs: a blank recap cell must stay NULL)
               CASE WHEN recap_value.reported_value IS NOT NULL
                    THEN greatest(recap_value.reported_value - coalesce(network.network_value, 0),
                                  0) END AS own_value
          FROM clean.submission_value recap_value
          JOIN _clean_recap_sub recap
            ON recap.submission_id = recap_value.submission_id
           AND recap.lingkup_laporan = 'wilayah'
          LEFT JOIN _clean_network_sum network
            ON network.kode_jejaring = recap.kode_puskesmas AND network.period = recap.period
           AND network.form = recap.form AND network.data_element = recap_value.data_element
       ) derived
 WHERE target.submission_id = derived.submission_id
   AND target.data_element = derived.data_element
"""

DELETE_SCOPE_FLAGS = f"""
DELETE FROM clean.validation_flag AS old USING _clean_recap_pairs pair
 WHERE old.kode_faskes = pair.kode_puskesmas AND old.form = pair.form
   AND old.rule_id IN ('{SCOPE_RULES[0]}', '{SCOPE_RULES[1]}')
"""

# L02: per element of a wilayah recap below its network's sum
RECAP_BELOW_NETWORK = """
SELECT recap.submission_id, recap.kode_puskesmas AS kode_faskes, recap.period, recap.form,
       'L02' AS rule_id, recap_value.data_element AS column_name,
       printf('rekap %d < jejaring %d', recap_value.reported_value, recap_value.network_value)
         AS value_text, 'puskesmas' AS jenis, NULL::DATE AS received
  FROM _clean_recap_sub recap
  JOIN clean.submission_value recap_value ON recap_value.submission_id = recap.submission_id
 WHERE recap.lingkup_laporan = 'wilayah'
   AND recap_value.reported_value < recap_value.network_value
"""

# L03: a faskes row that looks like an area recap (config.RecapDetection). Per puskesmas × form ×
# month, over the monthly elements (not the year-to-date `person_ytd` ones) its network reported
# (> 0) and that have a usual level: V = its values, N = the network's sums, U = its usual own
# levels (median of its own-services values — `value`, the own share in wilayah months — in its
# last $baseline reports before, ≥ $min_base of them; a ROWS frame: a median over a RANGE frame
# costs 5× more). Looks like a recap when N ≥ $min_network_pct %
# of U and V ≥ U + N × (1 − $tolerance %): above its usual level by (most of) the network's sum.
# Flagged when its last $running compared reports (months without one skipped) all look so.
LOOKS_LIKE_RECAP = """
WITH series AS (
    SELECT recap.submission_id, recap.kode_puskesmas, recap.period, recap.form,
           recap.lingkup_laporan, recap.month_no, own.data_element, own.value
      FROM _clean_recap_sub recap
      JOIN clean.submission_value own ON own.submission_id = recap.submission_id
      SEMI JOIN _clean_catalogue element
        ON element.code = own.data_element
       AND coalesce(element.person_or_event, '') <> 'person_ytd'
), usual AS (
    SELECT *, median(value) OVER baseline AS usual_value, count(value) OVER baseline AS n_base
      FROM series
    WINDOW baseline AS (PARTITION BY kode_puskesmas, form, data_element ORDER BY month_no
                        ROWS BETWEEN $baseline PRECEDING AND 1 PRECEDING)
), compared AS (
    SELECT usual.submission_id, usual.kode_puskesmas, usual.period, usual.form,
           any_value(usual.month_no) AS month_no,
           sum(usual.value) AS own_sum, sum(network.network_value) AS network_sum,
           sum(usual.usual_value) AS usual_sum,
           string_agg(usual.data_element, ', ' ORDER BY usual.data_element) AS elements
      FROM usual
      JOIN _clean_network_sum network
        ON network.kode_jejaring = usual.kode_puskesmas AND network.period = usual.period
       AND network.form = usual.form AND network.data_element = usual.data_element
     WHERE usual.lingkup_laporan = 'faskes' AND usual.value IS NOT NULL
       AND network.network_value > 0 AND usual.n_base >= $min_base
     GROUP BY usual.submission_id, usual.kode_puskesmas, usual.period, usual.form
), judged AS (
    SELECT *, network_sum >= $min_network_pct / 100.0 * usual_sum
              AND own_sum >= usual_sum + network_sum * (1 - $tolerance / 100.0) AS looks_recap
      FROM compared
), runs AS (
    SELECT *, sum(CASE WHEN looks_recap THEN 1 ELSE 0 END) OVER (
                  PARTITION BY kode_puskesmas, form ORDER BY month_no
                  ROWS BETWEEN $running - 1 PRECEDING AND CURRENT ROW) AS n_running
      FROM judged
)
SELECT submission_id, kode_puskesmas AS kode_faskes, period, form, 'L03' AS rule_id,
       elements AS column_name,
       printf('%d vs %d + %d', CAST(own_sum AS BIGINT), CAST(network_sum AS BIGINT),
              CAST(round(usual_sum) AS BIGINT)) AS value_text, 'puskesmas' AS jenis,
       NULL::DATE AS received
  FROM runs
 WHERE looks_recap AND n_running >= $running
"""


def derive(stage: Staging, settings: Settings, incremental: bool) -> None:
    """Inside the clean write transaction, after the current values are written: recompute, for
    every puskesmas × form whose figures may have moved (all of them in a full build; in an
    incremental one the networks of the touched keys — so a late network report re-derives its
    puskesmas's own share), the own share of its wilayah recaps in `clean.submission_value` and
    its L02 / L03 warnings. Reads only the clean tables as written, so a full and an incremental
    build give the same rows."""
    con = stage.con
    pairs = stage.create("recap_pairs", TOUCHED_PAIRS if incremental else ALL_PAIRS)
    if not con.execute(f"SELECT count(*) FROM {pairs}").fetchone()[0]:
        return   # no puskesmas network touched (or none at all)
    stage.create("recap_sub", RECAP_SUBMISSIONS)
    stage.create("network_sub", NETWORK_SUBMISSIONS)
    stage.create("network_sum", NETWORK_SUMS)
    con.execute(OWN_SHARE)
    con.execute(DELETE_SCOPE_FLAGS)
    detection = settings.config.reporting.recap_detection
    target = table("clean.validation_flag")
    cols = ", ".join(target.column_names)
    flags = FLAGS.format(flags=f"SELECT * FROM ({RECAP_BELOW_NETWORK}) AS below UNION ALL "
                               f"SELECT * FROM ({LOOKS_LIKE_RECAP}) AS looks")
    con.execute(f"INSERT INTO {target.qualified} ({cols}) SELECT {cols} FROM ({flags}) AS src", {
        "baseline": detection.baseline_months, "min_base": detection.min_baseline_months,
        "min_network_pct": detection.min_network_pct, "tolerance": detection.tolerance_pct,
        "running": detection.months_running})
