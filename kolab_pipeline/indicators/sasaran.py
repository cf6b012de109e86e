"""Sasaran (denominators) → `indicators.sasaran_resolved`, one row per sasaran code × unit × year
with the value used, how it was obtained (`method`: `official`, `sum_of_children`,
`formula:<metode>` or `mixed:official=x%;formula=y%`; `metode`/`params` the detail) and the
denominator-consistency warning (an official figure far from the sum of the units below it).

Bottom-up per unit × year × sasaran: the unit's official figure, else — when a unit below it is
official and every child resolves — the sum of its children, else the formula on its own base.
Tree: desa → kecamatan; network → the kecamatan of its puskesmas; kecamatan → kab/kota →
provinsi; a province held only partly by the registry is always the sum of its kab/kota. Design:
docs/design/indicators.md, "Sasaran resolution".
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import load_sasaran_formulas, sasaran_codes
from kolab_pipeline.warehouse import Staging, bind, ensure_schema, replace_rows

# Every unit that can carry a sasaran, with its parent. Desa are units only in a kecamatan where
# sasaran.csv gives some desa a figure; then every desa of that kecamatan is a child.
_UNITS_SQL = """
    WITH registry_kab AS (
        SELECT DISTINCT kode_kabkota, kode_prov FROM reference.facility
         WHERE length(kode_kabkota) = 5
    ), networks AS (
        SELECT DISTINCT member.kode_jejaring AS unit_code, puskesmas.kode_kec AS parent_code
          FROM reference.facility member
          LEFT JOIN reference.facility puskesmas ON puskesmas.kode_faskes = member.kode_jejaring
         WHERE member.kode_jejaring IS NOT NULL
        UNION
        SELECT DISTINCT assignment.kode_puskesmas_induk, puskesmas.kode_kec
          FROM reference.form_assignment assignment
          JOIN reference.facility puskesmas
            ON puskesmas.kode_faskes = assignment.kode_puskesmas_induk
    ), desa_official AS (
        SELECT DISTINCT official.kode_unit
          FROM reference.sasaran official
          JOIN registry_kab kab ON kab.kode_kabkota = substr(official.kode_unit, 1, 5)
         WHERE official.unit_level = 'desa' AND length(official.kode_unit) = 13
    ), desa AS (
        SELECT kode_unit AS unit_code FROM desa_official
        UNION
        SELECT wilayah.kode FROM reference.wilayah wilayah
         WHERE wilayah.level = 'desa'
           AND wilayah.kode_kec IN (SELECT substr(kode_unit, 1, 8) FROM desa_official)
    ), kecamatan AS (
        SELECT kode_kec AS unit_code FROM reference.facility WHERE length(kode_kec) = 8
        UNION SELECT parent_code FROM networks WHERE length(parent_code) = 8
        UNION SELECT substr(unit_code, 1, 8) FROM desa
        UNION SELECT wilayah.kode FROM reference.wilayah wilayah
               JOIN registry_kab kab ON kab.kode_kabkota = wilayah.kode_kabkota
              WHERE wilayah.level = 'kecamatan'
        UNION SELECT official.kode_unit FROM reference.sasaran official
               JOIN registry_kab kab ON kab.kode_kabkota = substr(official.kode_unit, 1, 5)
              WHERE official.unit_level = 'kecamatan' AND length(official.kode_unit) = 8
    )
    SELECT 'desa' AS unit_level, unit_code, 'kecamatan' AS parent_level,
           substr(unit_code, 1, 8) AS parent_code FROM desa
    UNION ALL SELECT 'puskesmas_network', unit_code, 'kecamatan',
                     CASE WHEN length(parent_code) = 8 THEN parent_code END FROM networks
    UNION ALL SELECT 'kecamatan', unit_code, 'kabkota', substr(unit_code, 1, 5) FROM kecamatan
    UNION ALL SELECT 'kabkota', kode_kabkota, 'provinsi', kode_prov FROM registry_kab
    UNION ALL SELECT DISTINCT 'provinsi', kode_prov, NULL, NULL FROM registry_kab
"""

# Provinces of the registry: kab/kota held vs kab/kota of the province (`reference.wilayah`).
_PROVINCES_SQL = """
    SELECT registry.kode_prov, count(*) AS n_kabkota,
           max(coalesce(in_wilayah.n, 0)) AS n_kabkota_wilayah,
           max(coalesce(in_wilayah.n, 0)) > count(*) AS partial
      FROM (SELECT DISTINCT kode_prov, kode_kabkota FROM reference.facility
             WHERE length(kode_kabkota) = 5) registry
      LEFT JOIN (SELECT kode_prov, count(*) AS n FROM reference.wilayah
                  WHERE level = 'kabkota' GROUP BY kode_prov) in_wilayah
        ON in_wilayah.kode_prov = registry.kode_prov
     GROUP BY registry.kode_prov
"""

# Where each code of $codes (a `kode_unit` of sasaran.csv) lands in the tree of `_UNITS_SQL`:
# `placed`, `not_puskesmas` (a facility that heads no network), `partial_province` (its figure is
# the sum of its kab/kota, its own row unused) or `outside` (no kab/kota of the registry).
PLACEMENT_SQL = """
    WITH registry_kab AS (
        SELECT DISTINCT kode_kabkota FROM reference.facility WHERE length(kode_kabkota) = 5
    )
    SELECT code.kode_unit,
           CASE WHEN facility.jenis_faskes = 'puskesmas' THEN 'placed'
                WHEN facility.kode_faskes IS NOT NULL THEN 'not_puskesmas'
                WHEN length(code.kode_unit) = 2 AND province.partial THEN 'partial_province'
                WHEN length(code.kode_unit) = 2 AND province.kode_prov IS NOT NULL THEN 'placed'
                WHEN length(code.kode_unit) IN (5, 8, 13) AND kab.kode_kabkota IS NOT NULL
                THEN 'placed'
                ELSE 'outside' END AS placement
      FROM (SELECT DISTINCT unnest($codes::VARCHAR[]) AS kode_unit) code
      LEFT JOIN reference.facility facility ON facility.kode_faskes = code.kode_unit
      LEFT JOIN ({provinces}) province ON province.kode_prov = code.kode_unit
      LEFT JOIN registry_kab kab ON kab.kode_kabkota = substr(code.kode_unit, 1, 5)
"""

_RESOLVED_COLUMNS = """(tahun INTEGER, unit_level VARCHAR, kode_unit VARCHAR, sasaran VARCHAR,
                       nilai DOUBLE, metode VARCHAR, params VARCHAR, method VARCHAR,
                       official_part DOUBLE, has_official BOOLEAN)"""

# Each step inserts `candidate` rows only where nothing is resolved yet.
_INSERT_MISSING = """
    INSERT INTO {resolved} SELECT * FROM ({candidates}) candidate
     WHERE NOT EXISTS (SELECT 1 FROM {resolved} done
                        WHERE done.tahun = candidate.tahun
                          AND done.unit_level = candidate.unit_level
                          AND done.kode_unit = candidate.kode_unit
                          AND done.sasaran = candidate.sasaran)
"""

# Official numbers of `reference.sasaran`; duplicates: the first by metode, then the largest.
# A partial province's own number is not used (it covers kab/kota absent from the registry).
_OFFICIAL_SQL = """
    SELECT official.tahun, official.unit_level, official.kode_unit, official.sasaran,
           official.nilai, coalesce(official.metode, 'official') AS metode, official.params,
           'official' AS method, official.nilai AS official_part, true AS has_official
      FROM reference.sasaran official
      JOIN {units} unit
        ON unit.unit_level = official.unit_level AND unit.unit_code = official.kode_unit
     WHERE official.unit_level = $level AND list_contains($years, official.tahun)
       AND official.nilai IS NOT NULL
       AND NOT list_contains($partial::VARCHAR[], official.kode_unit)
    QUALIFY row_number() OVER (PARTITION BY official.tahun, official.kode_unit, official.sasaran
                               ORDER BY official.metode, official.nilai DESC) = 1
"""

# Per parent unit of $level × year × sasaran, the sum over one set of its children (resolved
# earlier): how many children, how many resolved, how much of the sum is official. A kecamatan
# has two sets (networks, desa): the one with an official figure is taken, networks first.
# Sums run in child order: a parallel sum of formula values (doubles) could differ in the last
# bit from run to run, and the table must be identical on a re-run.
_CHILD_SUMS_SQL = """
    WITH kids AS (
        SELECT unit.parent_code, unit.unit_level AS child_level, unit.unit_code AS child_code,
               year.tahun, code.sasaran, child.nilai, child.official_part, child.has_official
          FROM {units} unit
         CROSS JOIN (SELECT unnest($years::INTEGER[]) AS tahun) year
         CROSS JOIN (SELECT unnest($codes::VARCHAR[]) AS sasaran) code
          LEFT JOIN {resolved} child
            ON child.unit_level = unit.unit_level AND child.kode_unit = unit.unit_code
           AND child.tahun = year.tahun AND child.sasaran = code.sasaran
         WHERE unit.parent_level = $level AND unit.parent_code IS NOT NULL
    )
    SELECT $level AS parent_level, parent_code, child_level, tahun, sasaran,
           count(*) AS n_children, count(nilai) AS n_resolved,
           sum(nilai ORDER BY child_code) AS nilai,
           sum(official_part ORDER BY child_code) AS official_part,
           coalesce(bool_or(has_official), false) AS has_official,
           string_agg(child_code || '=' || nilai, ';' ORDER BY child_code) AS children
      FROM kids GROUP BY parent_code, child_level, tahun, sasaran
    QUALIFY row_number() OVER (PARTITION BY parent_code, tahun, sasaran
                               ORDER BY coalesce(bool_or(has_official), false) DESC,
                                        child_level = 'puskesmas_network' DESC) = 1
"""

# Sum of children where some unit below has an official figure (or the province is partial)
# and every child resolved. `official_part` ÷ nilai is the official share behind the sum.
_CHILDREN_SQL = """
    SELECT child_sum.tahun, $level AS unit_level, child_sum.parent_code AS kode_unit,
           child_sum.sasaran, child_sum.nilai, 'sum_of_children' AS metode,
           json_object('child_level', child_sum.child_level,
                       'n_children', child_sum.n_children,
                       'official_share', round(child_sum.official_part
                                               / nullif(child_sum.nilai, 0), 4),
                       'children', child_sum.children) AS params,
           CASE WHEN child_sum.nilai = 0
                  OR child_sum.official_part >= child_sum.nilai * (1 - 1e-9)
                THEN 'sum_of_children'
                ELSE 'mixed:official=' || printf('%.1f', 100 * child_sum.official_part
                                                           / child_sum.nilai)
                     || '%;formula=' || printf('%.1f', 100 - 100 * child_sum.official_part
                                                                 / child_sum.nilai) || '%'
           END AS method,
           child_sum.official_part, child_sum.has_official
      FROM {child_sums} child_sum
     WHERE child_sum.parent_level = $level AND child_sum.n_resolved = child_sum.n_children
       AND (child_sum.has_official OR list_contains($partial::VARCHAR[], child_sum.parent_code))
"""

# One formula of `catalog/sasaran_formulas.csv` applied to the resolved base of `$level`, in the
# same year or (offset −1) the previous one. A previous-year base is used only when it rests on
# official figures: a formula on the same population gives nothing a same-year base does not.
_FORMULA_SQL = """
    SELECT base.tahun - $offset AS tahun, base.unit_level, base.kode_unit, $sasaran AS sasaran,
           base.nilai * $coefficient AS nilai, $metode AS metode,
           json_object('base', $base, 'base_year', base.tahun, 'base_value', base.nilai,
                       'base_method', base.method, 'param', $param,
                       'param_value', $param_value, 'constant', $constant) AS params,
           'formula:' || $metode AS method, 0.0 AS official_part, false AS has_official
      FROM {resolved} base
     WHERE base.unit_level = $level AND base.sasaran = $base
       AND list_contains($years, base.tahun - $offset)
       AND ($offset = 0 OR base.official_part > 0)
"""

# Kab/kota population from `reference.wilayah` for every year (an official figure).
_PENDUDUK_SQL = """
    SELECT year.tahun, 'kabkota' AS unit_level, wilayah.kode AS kode_unit,
           'pend_total' AS sasaran, CAST(wilayah.penduduk AS DOUBLE) AS nilai,
           'penduduk_dukcapil' AS metode,
           json_object('source', 'reference.wilayah.penduduk',
                       'source_version', wilayah.source_version) AS params,
           'official' AS method, CAST(wilayah.penduduk AS DOUBLE) AS official_part,
           true AS has_official
      FROM reference.wilayah wilayah
      JOIN {units} unit ON unit.unit_level = 'kabkota' AND unit.unit_code = wilayah.kode
     CROSS JOIN (SELECT unnest($years::INTEGER[]) AS tahun) year
     WHERE wilayah.level = 'kabkota' AND wilayah.penduduk IS NOT NULL
"""

# The rows written: resolved figures with the sum of their children (when every child resolved)
# and the consistency warning: an official figure, with some unit below it official, differing
# from that sum by more than the tolerance (strict).
_WRITE_SQL = """
    WITH judged AS (
        SELECT done.tahun, done.unit_level, done.kode_unit, done.sasaran, done.nilai,
               done.metode, done.params, done.method,
               child_sum.nilai AS children_sum, child_sum.child_level,
               CAST(child_sum.n_children AS INTEGER) AS n_children,
               (done.nilai - child_sum.nilai) / nullif(child_sum.nilai, 0) * 100
                   AS children_diff_pct,
               coalesce(province.partial, false) AS partial,
               done.method = 'official' AND coalesce(child_sum.has_official, false)
                   AS comparable
          FROM {resolved} done
          LEFT JOIN {child_sums} child_sum
            ON child_sum.parent_level = done.unit_level
           AND child_sum.parent_code = done.kode_unit AND child_sum.tahun = done.tahun
           AND child_sum.sasaran = done.sasaran AND child_sum.n_resolved = child_sum.n_children
          LEFT JOIN {provinces} province
            ON done.unit_level = 'provinsi' AND province.kode_prov = done.kode_unit
         WHERE list_contains($write_years, done.tahun)
    )
    SELECT tahun, unit_level, kode_unit, sasaran, nilai, metode, params, method, children_sum,
           n_children, children_diff_pct,
           coalesce(comparable AND round(abs(children_diff_pct), 9) > $tolerance, false)
               AS consistency_warning,
           CASE WHEN comparable AND round(abs(children_diff_pct), 9) > $tolerance
                THEN 'Sasaran resmi ' || sasaran || ' ' || tahun || ' ' || unit_level || ' '
                     || kode_unit || ' = ' || CAST(round(nilai) AS BIGINT) || ' berbeda '
                     || printf('%.1f', children_diff_pct) || ' % dari jumlah ' || n_children
                     || ' ' || child_level || ' di bawahnya = '
                     || CAST(round(children_sum) AS BIGINT) || ' (toleransi '
                     || printf('%g', CAST($tolerance AS DOUBLE)) || ' %); angka resmi dipakai'
           END AS consistency_message,
           partial
      FROM judged
"""

# Warnings for the DQ helper and the report (one row per flagged official figure).
WARNINGS_SQL = """
    SELECT tahun, unit_level, kode_unit, sasaran, nilai, children_sum, children_diff_pct,
           n_children, consistency_message
      FROM indicators.sasaran_resolved
     WHERE consistency_warning AND list_contains($years, tahun)
     ORDER BY tahun, unit_level, kode_unit, sasaran
"""

LEVEL_ORDER = ("desa", "puskesmas_network", "kecamatan", "kabkota", "provinsi")


def resolve_sasaran(con: duckdb.DuckDBPyConnection, settings: Settings,
                    years: Sequence[int]) -> int:
    """Resolve every sasaran for every unit of the registry and year into
    `indicators.sasaran_resolved` (bottom-up, module docstring); returns rows written.

    The year before each requested year is resolved too (not written): `baduta` is the previous
    year's `bayi`.
    """
    ensure_schema(con)
    write_years = sorted({int(y) for y in years})
    all_years = sorted(set(write_years) | {y - 1 for y in write_years})
    cfg = settings.config.sasaran
    with Staging(con, "_sas") as stage:
        units = stage.create("units", _UNITS_SQL)
        provinces = stage.create("provinces", _PROVINCES_SQL)
        partial = [p for (p,) in con.execute(
            f"SELECT kode_prov FROM {provinces} WHERE partial").fetchall()]
        resolved = stage.adopt("resolved")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {resolved} {_RESOLVED_COLUMNS}")
        child_sums = stage.adopt("child_sums")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {child_sums} AS "
                    + _CHILD_SUMS_SQL.format(units=units, resolved=resolved) + " LIMIT 0",
                    {"level": "", "years": [], "codes": []})
        tables = {"units": units, "resolved": resolved, "child_sums": child_sums}
        base = {"years": all_years, "partial": partial, "codes": list(sasaran_codes())}

        def insert(candidates_sql: str, params: dict[str, object]) -> None:
            sql = _INSERT_MISSING.format(resolved=resolved,
                                         candidates=candidates_sql.format(**tables))
            con.execute(sql, bind(sql, {**base, **params}))

        def formulas(level: str) -> None:
            for formula in load_sasaran_formulas():
                coefficient, raw = formula.coefficient(cfg)
                insert(_FORMULA_SQL, {
                    "sasaran": formula.sasaran, "coefficient": coefficient,
                    "metode": formula.metode, "base": formula.base, "param": formula.param,
                    "param_value": raw, "constant": formula.constant, "level": level,
                    "offset": formula.year_offset})

        for level in LEVEL_ORDER:
            insert(_OFFICIAL_SQL, {"level": level})
            if level in ("kecamatan", "kabkota", "provinsi"):
                sql = f"INSERT INTO {child_sums} " + _CHILD_SUMS_SQL.format(**tables)
                con.execute(sql, bind(sql, {**base, "level": level}))
                insert(_CHILDREN_SQL, {"level": level})
            if level == "kabkota":
                insert(_PENDUDUK_SQL, {})
            formulas(level)
        return replace_rows(
            con, "indicators.sasaran_resolved",
            _WRITE_SQL.format(provinces=provinces, **tables),
            where="list_contains($write_years, tahun)",
            params={"write_years": write_years, "tolerance": cfg.consistency_tolerance_pct})


def sasaran_placement(con: duckdb.DuckDBPyConnection, codes: Sequence[str]) -> dict[str, str]:
    """`kode_unit` → where the resolution places it (`PLACEMENT_SQL`): placed | not_puskesmas |
    partial_province | outside. Reads the registry only, so it works before sasaran.csv loads."""
    sql = PLACEMENT_SQL.format(provinces=_PROVINCES_SQL)
    return dict(con.execute(sql, {"codes": list(codes)}).fetchall())


def denominator_warnings(con: duckdb.DuckDBPyConnection, years: Sequence[int]) -> pd.DataFrame:
    """Official sasaran that differ from the sum of their children by more than
    `sasaran.consistency_tolerance_pct` (the figure is used; the row names both numbers)."""
    return con.execute(WARNINGS_SQL, {"years": [int(y) for y in years]}).df()
