"""Sasaran (denominators) → `indicators.sasaran_resolved`, one row per sasaran code × unit × year
with the value used and how it was obtained (`metode`, `params` as JSON); and the facility → unit
map every indicator step joins on.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import load_sasaran_formulas
from kolab_pipeline.warehouse import Staging, bind, ensure_schema, replace_rows

# facility → every unit it counts in (itself, its network, kecamatan, kab/kota, provinsi). Units
# come from the facility's own wilayah: a clinic located in another kecamatan than its puskesmas
# counts in its own kecamatan.
FACILITY_UNITS_SQL = """
    SELECT kode_faskes, jenis_faskes, 'facility' AS unit_level, kode_faskes AS unit_code
      FROM reference.facility
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'puskesmas_network', kode_jejaring
      FROM reference.facility WHERE kode_jejaring IS NOT NULL
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'kecamatan', kode_kec
      FROM reference.facility WHERE length(kode_kec) = 8
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'kabkota', kode_kabkota
      FROM reference.facility WHERE length(kode_kabkota) = 5
    UNION ALL
    SELECT kode_faskes, jenis_faskes, 'provinsi', kode_prov
      FROM reference.facility WHERE length(kode_prov) = 2
"""


def facility_units(stage: Staging) -> str:
    """Temp table `<prefix>_fac_unit` (kode_faskes, jenis_faskes, unit_level, unit_code): each
    facility × every unit it counts in. Returns its name."""
    return stage.create("fac_unit", FACILITY_UNITS_SQL)


# Every unit that can carry a sasaran, with its parent (a network's parent is the kecamatan of
# its puskesmas).
_UNITS_SQL = """
    SELECT DISTINCT 'puskesmas_network' AS unit_level, member.kode_jejaring AS unit_code,
           puskesmas.kode_kec AS parent_code
      FROM reference.facility member
      LEFT JOIN reference.facility puskesmas ON puskesmas.kode_faskes = member.kode_jejaring
     WHERE member.kode_jejaring IS NOT NULL
    UNION SELECT DISTINCT 'kecamatan', kode_kec, kode_kabkota
            FROM reference.facility WHERE length(kode_kec) = 8
    UNION SELECT DISTINCT 'kabkota', kode_kabkota, kode_prov
            FROM reference.facility WHERE length(kode_kabkota) = 5
    UNION SELECT DISTINCT 'provinsi', kode_prov, NULL
            FROM reference.facility WHERE length(kode_prov) = 2
"""

_RESOLVED_COLUMNS = """(tahun INTEGER, unit_level VARCHAR, kode_unit VARCHAR, sasaran VARCHAR,
                       nilai DOUBLE, metode VARCHAR, params VARCHAR)"""

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
_OFFICIAL_SQL = """
    SELECT official.tahun, official.unit_level, official.kode_unit, official.sasaran,
           official.nilai, coalesce(official.metode, 'official') AS metode, official.params
      FROM reference.sasaran official
      JOIN {units} unit
        ON unit.unit_level = official.unit_level AND unit.unit_code = official.kode_unit
     WHERE official.unit_level = $level AND list_contains($years, official.tahun)
       AND official.nilai IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY official.tahun, official.kode_unit, official.sasaran
                               ORDER BY official.metode, official.nilai DESC) = 1
"""

# Sum over the children, only when every child of the parent has the value.
_CHILDREN_SQL = """
    SELECT child.tahun, $level AS unit_level, unit.parent_code AS kode_unit, child.sasaran,
           sum(child.nilai) AS nilai, 'sum_of_children' AS metode,
           json_object('child_level', $child_level, 'n_children', count(*),
                       'children', string_agg(child.kode_unit || '=' || child.nilai, ';'
                                              ORDER BY child.kode_unit)) AS params
      FROM {units} unit
      JOIN {resolved} child
        ON child.unit_level = unit.unit_level AND child.kode_unit = unit.unit_code

     WHERE unit.unit_level = $child_level AND unit.parent_code IS NOT NULL
     GROUP BY child.tahun, unit.parent_code, child.sasaran
    HAVING count(*) = (SELECT count(*) FROM {units} sibling
                        WHERE sibling.unit_level = $child_level
                          AND sibling.parent_code = unit.parent_code)
"""

# One formula of `catalog/sasaran_formulas.csv` applied to the resolved base of `$level`.
_FORMULA_SQL = """
    SELECT base.tahun, base.unit_level, base.kode_unit, $sasaran AS sasaran,
           base.nilai * $coefficient AS nilai, $metode AS metode,
           json_object('base', $base, 'base_value', base.nilai, 'base_metode', base.metode,
                       $param, $param_value, 'constant', $constant) AS params
      FROM {resolved} base WHERE base.unit_level = $level AND base.sasaran = $base
"""

# Kab/kota population from `reference.wilayah` for every year.
_PENDUDUK_SQL = """
    SELECT years.tahun, 'kabkota' AS unit_level, wilayah.kode AS kode_unit,
           'pend_total' AS sasaran, CAST(wilayah.penduduk AS DOUBLE) AS nilai,
           'penduduk_dukcapil' AS metode,
           json_object('source', 'reference.wilayah.penduduk',
                       'source_version', wilayah.source_version) AS params
      FROM reference.wilayah wilayah
      JOIN {units} unit ON unit.unit_level = 'kabkota' AND unit.unit_code = wilayah.kode
     CROSS JOIN (SELECT unnest($years::INTEGER[]) AS tahun) years
     WHERE wilayah.level = 'kabkota' AND wilayah.penduduk IS NOT NULL
"""


def resolve_sasaran(con: duckdb.DuckDBPyConnection, settings: Settings,
                    years: Sequence[int]) -> int:
    """Resolve every sasaran for every unit of the registry and year into
    `indicators.sasaran_resolved`; returns rows written.

    Precedence, bottom-up (each step only fills what is still missing): official
    (`reference.sasaran`), then `sum_of_children` (kecamatan from every network, provinsi from the
    registry's kab/kota; kab/kota `pend_total` from `reference.wilayah`), then formulas
    (`catalog/sasaran_formulas.csv`, parameters from kolab.yaml `sasaran:`) on the resolved base.
    """
    ensure_schema(con)
    years = sorted({int(y) for y in years})
    with Staging(con, "_sas") as stage:
        units = stage.create("units", _UNITS_SQL)
        resolved = stage.adopt("resolved")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {resolved} {_RESOLVED_COLUMNS}")

        def insert(candidates_sql: str, params: dict[str, object]) -> None:
            sql = _INSERT_MISSING.format(
                resolved=resolved,
                candidates=candidates_sql.format(units=units, resolved=resolved))
            con.execute(sql, bind(sql, params))

        def official(level: str) -> None:
            insert(_OFFICIAL_SQL, {"level": level, "years": years})

        def children(level: str, child_level: str) -> None:
            insert(_CHILDREN_SQL, {"level": level, "child_level": child_level})

        def formulas(level: str) -> None:
            for formula in load_sasaran_formulas():
                coefficient, raw = formula.coefficient(settings.config.sasaran)
                insert(_FORMULA_SQL, {
                    "sasaran": formula.sasaran, "coefficient": coefficient,
                    "metode": formula.metode, "base": formula.base, "param": formula.param,
                    "param_value": raw, "constant": formula.constant, "level": level})

        official("puskesmas_network")
        formulas("puskesmas_network")
        official("kecamatan")
        children("kecamatan", "puskesmas_network")
        formulas("kecamatan")
        official("kabkota")
        insert(_PENDUDUK_SQL, {"years": years})
        formulas("kabkota")
        official("provinsi")
        children("provinsi", "kabkota")
        formulas("provinsi")
        return replace_rows(con, "indicators.sasaran_resolved", f"SELECT * FROM {resolved}",
                            where="list_contains($years, tahun)", params={"years": years})
