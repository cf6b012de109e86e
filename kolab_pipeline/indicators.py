"""Indicator engine: sasaran (denominators), indicator values per unit × month / year-to-date,
and the network contribution (puskesmas vs Klinik Pratama vs TPMD).

Everything the engine knows about an indicator is in `catalog/indicators.csv` (one row per
indicator: numerator / denominator expressions, factor, annual target, aggregation rule,
direction, levels). Adding an indicator means editing that file. Expressions are parsed here with
a whitelist of data-element codes (`catalog/data_elements.csv`): a code, or codes joined by `+`
and `-`; a denominator may instead be `sasaran:<code>`, or empty for a plain count. Nothing is
evaluated by Python; codes become SQL column identifiers after `warehouse.ident()`.

Tables written (grain in `catalog/tables.yaml`):

- `indicators.sasaran_resolved` — sasaran code × unit × year: the denominator actually used and
  **how it was obtained** (`metode`, `params`), see `resolve_sasaran`.
- `indicators.indicator_value` — indicator × unit (facility, puskesmas_network, kecamatan,
  kabkota, provinsi) × period × period type (`month`, `ytd`), see `compute_indicator_values`.
- `indicators.network_contribution` — unit × period × period type × program × volume element ×
  facility type, see `compute_network_contribution`.

Conventions pinned here (and why):

- **Ratios of sums.** A unit's numerator and denominator are sums over the facilities of the unit;
  the value is numerator ÷ denominator × factor. A mean of facility percentages would weight a
  TPMD with 2 patients like a puskesmas with 200.
- **Facility rows are the base.** Every facility × indicator × month with a reported numerator is
  stored at level `facility` (value only when `facility` is in the indicator's `levels`; else the
  row just carries the numerator contribution). All higher levels and all year-to-date rows are
  sums of those stored facility rows — YTD is computed from the stored monthly numerators, never by
  re-reading submissions of earlier months. This makes `kab/kota numerator = Σ facility numerators`
  true by construction and checkable (`data_quality/indicator_checks.py`).
- **Element denominators** (e.g. TB_SPM_TERDUGA: diperiksa ÷ ditemukan): a facility-month
  contributes only when numerator *and* denominator are reported, so a facility that left the
  denominator blank does not inflate the ratio.
- **Sasaran denominators (PWS convention, domain.md §4.3).** Month rows: month numerator ÷ the
  **annual** sasaran × factor, compared with target ÷ 12 (`pws_target`). YTD rows: cumulative
  numerator Jan..M ÷ the **annual** sasaran × factor. For `PWS` indicators the YTD value is compared
  with the cumulative PWS line target × M/12; for `SUM_YTD` / `UNIQUE_YTD` ones with the annual
  target itself (progress towards it). The sasaran is never prorated: the line is.
  Sasaran exist for networks and wilayah, not for single facilities (value NULL there).
- **Unknown denominators stay unknown.** No sasaran ⇒ denominator NULL and value NULL (never 0);
  `denominator_method` says `<sasaran>:missing`.
- **Coverage above 100 %** (`factor = 100`, value > 100) is flagged in `above_100`, never clipped:
  SPM counts residents while facilities report people served (domain.md §5).
- **Attainment** = value ÷ target × 100 (÷ `pws_target` where one is set). For `decreasing`
  indicators (drop-out, deaths) an attainment ≤ 100 is good.

Aggregation keys (catalogue column `aggregation`):

- `SUM_YTD`: month and YTD rows, sums of monthly numerators (and element denominators).
- `PWS`: as SUM_YTD with a sasaran denominator, YTD compared with the PWS line target × M/12.
- `SUM_MONTH`: month rows only (a monthly ratio such as HT controlled ÷ HT served; a YTD sum of
  person-month counts has no meaning there).
- `RATIO_YTD`: ratio of two element expressions, month and YTD (drop-out rates).
- `SHARE`: numerator counted only from non-puskesmas facilities (Klinik Pratama, TPMD, …),
  denominator from all facilities: the network's share.
- `UNIQUE_YTD`: SPM counts unique persons per year. The form asks for `*_ytd_unik` (unique persons
  served since January, as of the month). Approximation: per facility, the **maximum** over the
  months Jan..M of the reported value (robust to a missing or lowered month), summed over
  facilities — a person served at two facilities is counted twice. YTD rows only above facility
  level (the facility month rows carry the reported value).
- `UCI`: UCI desa/kelurahan needs desa-level data, but reports are per facility. Approximation:
  % of **puskesmas networks** of the unit whose YTD IDL coverage (catalogue numerator ÷ network
  sasaran × 100) is ≥ `thresholds.uci_threshold_pct`; numerator = networks reaching it,
  denominator = networks with a known coverage (a network without sasaran or without any IDL
  report is not counted). A network belongs to the kecamatan of its puskesmas. YTD rows only;
  early in the year few networks reach the annual threshold (as in the real UCI definition).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.calendar import add_months, year_start
from kolab_pipeline.config import SasaranConfig, Settings
from kolab_pipeline.warehouse import ensure_schema, ident, replace_rows

INDICATORS_FILE = catalog.INDICATORS
SASARAN_FORMULAS_FILE = catalog.SASARAN_FORMULAS
CONTRIBUTION_FILE = catalog.CONTRIBUTION_ELEMENTS

LEVELS = ("facility", "puskesmas_network", "kecamatan", "kabkota", "provinsi")
AGGREGATIONS = ("SUM_MONTH", "SUM_YTD", "PWS", "RATIO_YTD", "SHARE", "UCI", "UNIQUE_YTD")
DIRECTIONS = ("increasing", "decreasing")
# Sasaran codes of domain.md §8.4 that may be supplied officially (formulas add their own codes).
OFFICIAL_SASARAN = ("pend_total", "pend_15plus", "pend_15_59", "pend_60plus", "bumil", "bulin",
                    "bufas", "lahir_hidup", "bayi", "baduta", "balita", "est_penderita_ht_15plus",
                    "est_penderita_dm_15plus", "est_insiden_tb", "est_terduga_tb",
                    "kontak_serumah_tb")
PARAM_TRANSFORMS = ("as_is", "per_1000", "per_100k", "one_minus_per_1000")


CatalogueError = catalog.CatalogueError


# --- expressions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Expression:
    """A signed sum of data elements, e.g. `imun_dpt1 - imun_dpt3`."""

    terms: tuple[tuple[int, str], ...]

    @property
    def codes(self) -> list[str]:
        return [code for _, code in self.terms]

    def sql(self, prefix: str = "") -> str:
        """SQL over columns named by the element codes (NULL if any term is NULL)."""
        parts = []
        for i, (sign, code) in enumerate(self.terms):
            col = f"{prefix}{ident(code)}"
            parts.append(col if i == 0 else f"{'+' if sign > 0 else '-'} {col}")
        return "(" + " ".join(parts) + ")"

    def __str__(self) -> str:
        return " ".join(c if i == 0 else f"{'+' if s > 0 else '-'} {c}"
                        for i, (s, c) in enumerate(self.terms))


_TOKEN = re.compile(r"\s*([+-])\s*")


def parse_expression(text: str, known: Iterable[str], where: str) -> Expression:
    """Parse `a`, `a + b`, `a - b - c` over known element codes (no eval; anything else is an error).

    `where` names the place for the error message (file, row, column).
    """
    known = set(known)
    tokens = [t.strip() for t in _TOKEN.split(text.strip())]
    if not tokens or len(tokens) % 2 == 0:
        raise CatalogueError(f"{where}: cannot parse expression {text!r} (expected codes joined by + or -)")
    terms: list[tuple[int, str]] = []
    sign = 1
    for i, tok in enumerate(tokens):
        if i % 2 == 1:
            sign = 1 if tok == "+" else -1
            continue
        if not re.fullmatch(r"[a-z][a-z0-9_]*", tok):
            raise CatalogueError(f"{where}: {tok!r} in {text!r} is not a data-element code")
        if tok not in known:
            raise CatalogueError(f"{where}: unknown data element {tok!r} (not in {catalog.DATA_ELEMENTS.name})")
        terms.append((sign, tok))
    return Expression(tuple(terms))


# --- catalogue -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Indicator:
    """One row of `catalog/indicators.csv`, parsed and validated."""

    code: str
    program: str
    name_id: str
    name_en: str
    numerator: Expression
    denominator: Expression | None   # element denominator
    sasaran: str | None              # `sasaran:<code>` denominator
    factor: float
    target: float | None
    target_source: str
    aggregation: str
    direction: str
    levels: tuple[str, ...]

    @property
    def den_kind(self) -> str:
        return "element" if self.denominator else ("sasaran" if self.sasaran else "none")

    @property
    def den_text(self) -> str:
        if self.denominator:
            return str(self.denominator)
        return f"sasaran:{self.sasaran}" if self.sasaran else ""


def _float(text: str, where: str, required: bool) -> float | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise CatalogueError(f"{where}: a number is required")
        return None
    try:
        return float(text)
    except ValueError:
        raise CatalogueError(f"{where}: {text!r} is not a number") from None


def load_catalogue(path: Path = INDICATORS_FILE) -> list[Indicator]:
    """Read and validate the indicator catalogue; errors name the file, row and column."""
    known = catalog.element_codes()
    sasaran_codes = set(OFFICIAL_SASARAN) | {f.sasaran for f in load_sasaran_formulas()}
    out: list[Indicator] = []
    seen: set[str] = set()
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        def at(col: str, rowno: int = rowno) -> str:
            return f"{path.name}: row {rowno}, column {col}"
        code = (row.get("code") or "").strip()
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", code):
            raise CatalogueError(f"{at('code')}: {code!r} is not an indicator code (A-Z, 0-9, _)")
        if code in seen:
            raise CatalogueError(f"{at('code')}: duplicate indicator {code}")
        seen.add(code)
        num = parse_expression(row["numerator"], known, at("numerator"))
        den_text = (row.get("denominator") or "").strip()
        den, sas = None, None
        if den_text.startswith("sasaran:"):
            sas = den_text.split(":", 1)[1].strip()
            if sas not in sasaran_codes:
                raise CatalogueError(f"{at('denominator')}: unknown sasaran code {sas!r}")
        elif den_text:
            den = parse_expression(den_text, known, at("denominator"))
        agg = row["aggregation"].strip()
        if agg not in AGGREGATIONS:
            raise CatalogueError(f"{at('aggregation')}: {agg!r} not one of {', '.join(AGGREGATIONS)}")
        direction = row["direction"].strip()
        if direction not in DIRECTIONS:
            raise CatalogueError(f"{at('direction')}: {direction!r} not one of {', '.join(DIRECTIONS)}")
        levels = tuple(x.strip() for x in row["levels"].split(";") if x.strip())
        bad = [x for x in levels if x not in LEVELS]
        if bad or not levels:
            raise CatalogueError(f"{at('levels')}: {bad or 'empty'} not in {', '.join(LEVELS)}")
        if agg in ("PWS", "UCI", "UNIQUE_YTD") and sas is None:
            raise CatalogueError(f"{at('denominator')}: {agg} needs a sasaran:<code> denominator")
        if agg in ("RATIO_YTD", "SHARE") and den is None:
            raise CatalogueError(f"{at('denominator')}: {agg} needs a data-element denominator")
        factor = _float(row["factor"], at("factor"), required=True)
        if factor is None or factor <= 0:
            raise CatalogueError(f"{at('factor')}: must be > 0")
        out.append(Indicator(
            code=code, program=row["program"].strip(), name_id=row["name_id"].strip(),
            name_en=row["name_en"].strip(), numerator=num, denominator=den, sasaran=sas,
            factor=factor, target=_float(row.get("target", ""), at("target"), required=False),
            target_source=(row.get("target_source") or "").strip(), aggregation=agg,
            direction=direction, levels=levels,
        ))
    return out


def catalogue_frame(indicators: Sequence[Indicator]) -> pd.DataFrame:
    """The catalogue as a small DataFrame to join in SQL (one row per indicator)."""
    return pd.DataFrame({
        "indicator_code": [i.code for i in indicators],
        "program": [i.program for i in indicators],
        "factor": [i.factor for i in indicators],
        "target": [i.target for i in indicators],
        "aggregation": [i.aggregation for i in indicators],
        "den_kind": [i.den_kind for i in indicators],
        "sasaran_code": [i.sasaran for i in indicators],
        "den_text": [i.den_text for i in indicators],
        "levels": [list(i.levels) for i in indicators],
    })


@dataclass(frozen=True)
class SasaranFormula:
    """One row of `catalog/sasaran_formulas.csv`: nilai = base × constant × f(param)."""

    sasaran: str
    base: str
    metode: str
    param: str
    param_transform: str
    constant: float

    def coefficient(self, cfg: SasaranConfig) -> tuple[float, float]:
        """(multiplier applied to the base, raw parameter value from kolab.yaml)."""
        p = float(getattr(cfg, self.param))
        scaled = {"as_is": p, "per_1000": p / 1000, "per_100k": p / 100_000,
                  "one_minus_per_1000": 1 - p / 1000}[self.param_transform]
        return self.constant * scaled, p


@cache
def load_sasaran_formulas(path: Path = SASARAN_FORMULAS_FILE) -> tuple[SasaranFormula, ...]:
    """Formulas in dependency order (a base must be pend_total or defined on an earlier row)."""
    out: list[SasaranFormula] = []
    defined = {"pend_total"}
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        where = f"{path.name}: row {rowno}"
        f = SasaranFormula(row["sasaran"].strip(), row["base"].strip(), row["metode"].strip(),
                           row["param"].strip(), row["param_transform"].strip(),
                           float(row["constant"]))
        if f.param not in SasaranConfig.model_fields:
            raise CatalogueError(f"{where}, column param: {f.param!r} is not a key of kolab.yaml `sasaran:`")
        if f.param_transform not in PARAM_TRANSFORMS:
            raise CatalogueError(f"{where}, column param_transform: {f.param_transform!r} not in {PARAM_TRANSFORMS}")
        if f.base not in defined:
            raise CatalogueError(f"{where}, column base: {f.base!r} is not defined on an earlier row")
        defined.add(f.sasaran)
        out.append(f)
    return tuple(out)


@cache
def contribution_elements(path: Path = CONTRIBUTION_FILE) -> tuple[tuple[str, str], ...]:
    """(program, data element) pairs whose volume is split by facility type."""
    known = catalog.element_codes()
    rows = [(r["program"], r["data_element"]) for r in catalog.read_rows(path)]
    for i, (_, code) in enumerate(rows, start=2):
        if code not in known:
            raise CatalogueError(f"{path.name}: row {i}, column data_element: unknown code {code!r}")
    return tuple(rows)


# --- shared SQL helpers --------------------------------------------------------------------


def create_facility_units(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `_fac_unit`: facility → every unit it counts in (itself, its network, its
    kecamatan, kab/kota, provinsi). Units come from the facility's own wilayah, so a clinic
    located in another kecamatan than its puskesmas counts in its own kecamatan."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _fac_unit AS
        SELECT kode_faskes, jenis_faskes, 'facility' AS unit_level, kode_faskes AS unit_code FROM reference.facility
        UNION ALL SELECT kode_faskes, jenis_faskes, 'puskesmas_network', kode_jejaring FROM reference.facility WHERE kode_jejaring IS NOT NULL
        UNION ALL SELECT kode_faskes, jenis_faskes, 'kecamatan', kode_kec FROM reference.facility WHERE length(kode_kec) = 8
        UNION ALL SELECT kode_faskes, jenis_faskes, 'kabkota', kode_kabkota FROM reference.facility WHERE length(kode_kabkota) = 5
        UNION ALL SELECT kode_faskes, jenis_faskes, 'provinsi', kode_prov FROM reference.facility WHERE length(kode_prov) = 2
    """)


# --- sasaran -------------------------------------------------------------------------------

def resolve_sasaran(con: duckdb.DuckDBPyConnection, settings: Settings, years: Sequence[int]) -> int:
    """Resolve every sasaran for every unit of the registry and year into `indicators.sasaran_resolved`.

    Precedence, bottom-up (each step only fills what is still missing):

    1. puskesmas_network: official (`reference.sasaran`), then formulas from the network's own
       official population. A network has no population of its own otherwise (the registry gives
       no wilayah kerja), so it usually needs official rows.
    2. kecamatan: official; else `sum_of_children` over the networks whose puskesmas lies in the
       kecamatan — only when **every** such network has the value (a partial sum would understate
       the denominator and inflate coverage); then formulas.
    3. kabkota: official; else `pend_total` = `reference.wilayah.penduduk` (`penduduk_dukcapil`);
       then formulas (`catalog/sasaran_formulas.csv`, parameters from kolab.yaml `sasaran:`).
    4. provinsi: official; else `sum_of_children` over the registry's kab/kota of the province
       (the province's own population would cover kab/kota whose facilities are not in this
       warehouse, deflating coverage); then formulas.

    Formulas apply to the resolved base (official or derived), so an official `pend_15plus` is
    used for the HT estimate. `params` records the inputs as JSON. Returns rows written.
    """
    ensure_schema(con)
    years = sorted({int(y) for y in years})
    cfg = settings.config.sasaran
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _units AS
        SELECT DISTINCT 'puskesmas_network' AS unit_level, f.kode_jejaring AS unit_code, p.kode_kec AS parent_code
          FROM reference.facility f LEFT JOIN reference.facility p ON p.kode_faskes = f.kode_jejaring
         WHERE f.kode_jejaring IS NOT NULL
        UNION SELECT DISTINCT 'kecamatan', kode_kec, kode_kabkota FROM reference.facility WHERE length(kode_kec) = 8
        UNION SELECT DISTINCT 'kabkota', kode_kabkota, kode_prov FROM reference.facility WHERE length(kode_kabkota) = 5
        UNION SELECT DISTINCT 'provinsi', kode_prov, NULL FROM reference.facility WHERE length(kode_prov) = 2
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _sas (tahun INTEGER, unit_level VARCHAR, kode_unit VARCHAR,
            sasaran VARCHAR, nilai DOUBLE, metode VARCHAR, params VARCHAR)
    """)
    missing = """NOT EXISTS (SELECT 1 FROM _sas t WHERE t.tahun = x.tahun AND t.unit_level = x.unit_level
                                AND t.kode_unit = x.kode_unit AND t.sasaran = x.sasaran)"""

    def official(level: str) -> None:
        # duplicates in sasaran.csv: the first by metode, then the largest value (deterministic)
        con.execute(f"""
            INSERT INTO _sas SELECT * FROM (
                SELECT s.tahun, s.unit_level, s.kode_unit, s.sasaran, s.nilai,
                       coalesce(s.metode, 'official') AS metode, s.params
                  FROM reference.sasaran s JOIN _units u ON u.unit_level = s.unit_level AND u.unit_code = s.kode_unit
                 WHERE s.unit_level = ? AND list_contains(?, s.tahun) AND s.nilai IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY s.tahun, s.kode_unit, s.sasaran ORDER BY s.metode, s.nilai DESC) = 1
            ) x WHERE {missing}""", [level, years])

    def children(level: str, child_level: str) -> None:
        con.execute(f"""
            INSERT INTO _sas SELECT * FROM (
                SELECT c.tahun, ? AS unit_level, u.parent_code AS kode_unit, c.sasaran, sum(c.nilai) AS nilai,
                       'sum_of_children' AS metode,
                       json_object('child_level', ?, 'n_children', count(*),
                                   'children', string_agg(c.kode_unit || '=' || c.nilai, ';' ORDER BY c.kode_unit)) AS params
                  FROM _units u JOIN _sas c ON c.unit_level = u.unit_level AND c.kode_unit = u.unit_code
                 WHERE u.unit_level = ? AND u.parent_code IS NOT NULL
                 GROUP BY c.tahun, u.parent_code, c.sasaran
                HAVING count(*) = (SELECT count(*) FROM _units k WHERE k.unit_level = ? AND k.parent_code = u.parent_code)
            ) x WHERE {missing}""", [level, child_level, child_level, child_level])

    def formulas(level: str) -> None:
        for f in load_sasaran_formulas():
            coef, raw = f.coefficient(cfg)
            con.execute(f"""
                INSERT INTO _sas SELECT * FROM (
                    SELECT b.tahun, b.unit_level, b.kode_unit, ? AS sasaran, b.nilai * ? AS nilai, ? AS metode,
                           json_object('base', ?, 'base_value', b.nilai, 'base_metode', b.metode,
                                       ?, ?, 'constant', ?) AS params
                      FROM _sas b WHERE b.unit_level = ? AND b.sasaran = ?
                ) x WHERE {missing}""",
                [f.sasaran, coef, f.metode, f.base, f.param, raw, f.constant, level, f.base])

    official("puskesmas_network")
    formulas("puskesmas_network")
    official("kecamatan")
    children("kecamatan", "puskesmas_network")
    formulas("kecamatan")
    official("kabkota")
    con.execute(f"""
        INSERT INTO _sas SELECT * FROM (
            SELECT y.tahun, 'kabkota' AS unit_level, w.kode AS kode_unit, 'pend_total' AS sasaran,
                   CAST(w.penduduk AS DOUBLE) AS nilai, 'penduduk_dukcapil' AS metode,
                   json_object('source', 'reference.wilayah.penduduk', 'source_version', w.source_version) AS params
              FROM reference.wilayah w JOIN _units u ON u.unit_level = 'kabkota' AND u.unit_code = w.kode
             CROSS JOIN (SELECT unnest(?::INTEGER[]) AS tahun) y
             WHERE w.level = 'kabkota' AND w.penduduk IS NOT NULL
        ) x WHERE {missing}""", [years])
    formulas("kabkota")
    official("provinsi")
    children("provinsi", "kabkota")
    formulas("provinsi")
    return replace_rows(con, "indicators.sasaran_resolved", "SELECT * FROM _sas",
                        where="list_contains(?, tahun)", params=[years])


# --- indicator values ----------------------------------------------------------------------

def _create_wide(con: duckdb.DuckDBPyConnection, period: str, codes: Sequence[str]) -> None:
    """Temp table `_wide`: one row per facility reporting in `period`, one column per element."""
    cols = sorted(set(codes))
    select = ", ".join(f"max(value) FILTER (WHERE data_element = ?) AS {ident(c)}" for c in cols)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _wide AS
        SELECT kode_faskes, {select} FROM clean.submission_value
         WHERE period = ? AND value IS NOT NULL GROUP BY kode_faskes
    """, [*cols, period])


def _facility_month_sql(indicators: Sequence[Indicator]) -> tuple[str, list[object]]:
    """SQL for the facility × indicator numerators (and element denominators) of `_wide`."""
    parts, params = [], []
    for ind in indicators:
        num = ind.numerator.sql("w.")
        if ind.aggregation == "SHARE":
            # the network's part: a puskesmas contributes 0, never NULL, when it reported
            num = f"CASE WHEN {num} IS NULL THEN NULL WHEN f.jenis_faskes = 'puskesmas' THEN 0 ELSE {num} END"
        den = ind.denominator.sql("w.") if ind.denominator else "NULL"
        cond = f"{num} IS NOT NULL" + (f" AND {den} IS NOT NULL" if ind.denominator else "")
        parts.append(f"""SELECT ? AS indicator_code, w.kode_faskes, CAST({num} AS DOUBLE) AS numerator,
                                CAST({den} AS DOUBLE) AS denominator
                           FROM _wide w JOIN reference.facility f ON f.kode_faskes = w.kode_faskes
                          WHERE {cond}""")
        params.append(ind.code)
    return "\nUNION ALL\n".join(parts), params


_VALUE_SQL = """
    WITH base AS (
        SELECT r.period_type, r.indicator_code, r.unit_level, r.unit_code, r.numerator,
               r.denominator AS elem_den, r.n_facilities, c.program, c.factor, c.target, c.aggregation,
               c.den_kind, c.den_text, c.sasaran_code,
               list_contains(c.levels, r.unit_level) AS meaningful,
               s.nilai AS sasaran_nilai, s.metode AS sasaran_metode
          FROM _unit_rows r JOIN _ind_cat c USING (indicator_code)
          LEFT JOIN indicators.sasaran_resolved s
            ON c.den_kind = 'sasaran' AND s.tahun = ? AND s.unit_level = r.unit_level
           AND s.kode_unit = r.unit_code AND s.sasaran = c.sasaran_code
    ), den AS (
        SELECT *,
               CASE den_kind WHEN 'element' THEN elem_den WHEN 'sasaran' THEN sasaran_nilai END AS denominator,
               CASE WHEN den_kind = 'element' THEN 'data_element:' || den_text
                    WHEN den_kind = 'none' THEN 'count'
                    WHEN unit_level = 'facility' THEN 'sasaran:not_defined_for_facility'
                    ELSE sasaran_code || ':' || coalesce(sasaran_metode, 'missing') END AS denominator_method
          FROM base
    ), val AS (
        SELECT *,
               CASE WHEN NOT meaningful THEN NULL
                    WHEN den_kind = 'none' THEN numerator * factor
                    WHEN denominator > 0 THEN numerator / denominator * factor END AS value,
               CASE WHEN NOT meaningful THEN NULL
                    WHEN den_kind = 'sasaran' AND period_type = 'month' THEN target / 12
                    WHEN aggregation = 'PWS' AND period_type = 'ytd' THEN target * ? / 12 END AS pws_target
          FROM den
    )
    SELECT indicator_code, program, unit_level, unit_code, ? AS period, period_type, numerator,
           denominator, factor, value, CASE WHEN meaningful THEN target END AS target, pws_target,
           value / nullif(coalesce(pws_target, CASE WHEN meaningful THEN target END), 0) * 100 AS attainment,
           denominator_method, coalesce(factor = 100 AND value > 100, false) AS above_100,
           CAST(n_facilities AS INTEGER) AS n_facilities
      FROM val
"""

_UCI_SQL = """
    WITH cov AS (  -- YTD coverage of each network, from the UCI indicator's own numerator and sasaran
        SELECT r.indicator_code, r.unit_code AS kode_jejaring,
               r.numerator / s.nilai * c.factor AS coverage
          FROM _unit_rows r JOIN _ind_cat c USING (indicator_code)
          JOIN indicators.sasaran_resolved s
            ON s.tahun = ? AND s.unit_level = 'puskesmas_network' AND s.kode_unit = r.unit_code
           AND s.sasaran = c.sasaran_code AND s.nilai > 0
         WHERE c.aggregation = 'UCI' AND r.period_type = 'ytd' AND r.unit_level = 'puskesmas_network'
    ), up AS (
        SELECT cov.*, u.unit_level, u.unit_code
          FROM cov JOIN reference.facility p ON p.kode_faskes = cov.kode_jejaring
          JOIN (SELECT kode_faskes, 'kecamatan' AS unit_level, kode_kec AS unit_code FROM reference.facility
                UNION ALL SELECT kode_faskes, 'kabkota', kode_kabkota FROM reference.facility
                UNION ALL SELECT kode_faskes, 'provinsi', kode_prov FROM reference.facility) u
            ON u.kode_faskes = p.kode_faskes
    )
    SELECT up.indicator_code, c.program, up.unit_level, up.unit_code, ? AS period, 'ytd' AS period_type,
           CAST(count(*) FILTER (WHERE up.coverage >= ?) AS DOUBLE) AS numerator,
           CAST(count(*) AS DOUBLE) AS denominator, 100.0 AS factor,
           count(*) FILTER (WHERE up.coverage >= ?) * 100.0 / count(*) AS value,
           any_value(c.target) AS target, NULL::DOUBLE AS pws_target,
           (count(*) FILTER (WHERE up.coverage >= ?) * 100.0 / count(*)) / nullif(any_value(c.target), 0) * 100 AS attainment,
           'puskesmas_network_idl_ytd>=' || ? || '%' AS denominator_method, false AS above_100,
           CAST(count(*) AS INTEGER) AS n_facilities
      FROM up JOIN _ind_cat c USING (indicator_code)
     WHERE list_contains(c.levels, up.unit_level)
     GROUP BY up.indicator_code, c.program, up.unit_level, up.unit_code
"""


def _expand_periods(con: duckdb.DuckDBPyConnection, periods: Sequence[str]) -> list[str]:
    """The requested periods plus any earlier month of the same year that has submissions but no
    stored facility rows yet, so YTD always sums complete months (in month order)."""
    if not periods:
        return []
    submitted = {m for (m,) in con.execute(
        "SELECT DISTINCT period FROM clean.submission_value WHERE period >= ? AND period < ?",
        [year_start(min(periods)), max(periods)]).fetchall()}
    stored = {m for (m,) in con.execute(
        "SELECT DISTINCT period FROM indicators.indicator_value "
        "WHERE unit_level = 'facility' AND period_type = 'month' AND period >= ? AND period < ?",
        [year_start(min(periods)), max(periods)]).fetchall()}
    out = set(periods)
    for p in periods:
        out.update(m for m in submitted - stored if year_start(p) <= m < p)
    return sorted(out)


def _has_facility_ytd(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    return con.execute("SELECT count(*) > 0 FROM (SELECT 1 FROM indicators.indicator_value "
                       "WHERE period = ? AND period_type = 'ytd' AND unit_level = 'facility' LIMIT 1)",
                       [period]).fetchone()[0]


def compute_indicator_values(con: duckdb.DuckDBPyConnection, settings: Settings,
                             periods: Sequence[str],
                             indicators: Sequence[Indicator] | None = None) -> dict[str, int]:
    """Write `indicators.indicator_value` and `indicators.network_contribution` for `periods`.

    Per period P (YYYY-MM): facility month rows from `clean.submission_value`; YTD facility rows =
    stored facility month rows Jan..P−1 + P (sum, or max for UNIQUE_YTD); every unit row = sum of
    its facilities' rows. Each period is replaced as a whole (delete-then-insert in one
    transaction), so re-running a month gives the same rows. Earlier months of the year that were
    never computed are computed first. Sasaran of the year are resolved if absent.
    Returns rows written per period.
    """
    ensure_schema(con)
    indicators = list(indicators or load_catalogue())
    con.register("_ind_cat_df", catalogue_frame(indicators))
    con.execute("CREATE OR REPLACE TEMP TABLE _ind_cat AS SELECT * FROM _ind_cat_df")
    con.unregister("_ind_cat_df")
    create_facility_units(con)
    codes = sorted({c for i in indicators for c in (i.numerator.codes + (i.denominator.codes if i.denominator else []))})
    fac_sql, fac_params = _facility_month_sql(indicators)
    written: dict[str, int] = {}
    previous: str | None = None
    for year in sorted({int(p[:4]) for p in periods}):
        n = con.execute("SELECT count(*) FROM indicators.sasaran_resolved WHERE tahun = ?", [year]).fetchone()[0]
        if n == 0:
            resolve_sasaran(con, settings, [year])
    for period in _expand_periods(con, periods):
        year, month = int(period[:4]), int(period[5:7])
        _create_wide(con, period, codes)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _fac_month AS {fac_sql}", fac_params)
        if previous is not None and previous == add_months(period, -1) and month > 1:
            # the YTD of the month before, still in memory, stands for January..P−1 (a running
            # sum, or max for UNIQUE_YTD), so a year costs one pass instead of re-reading months
            earlier = "SELECT indicator_code, kode_faskes, numerator, denominator FROM _fac_ytd_prev"
            earlier_params: list[object] = []
        elif month > 1 and _has_facility_ytd(con, add_months(period, -1)):
            # one new month after a stored year so far: the stored facility YTD of P−1 stands for
            # January..P−1; UCI facility YTD rows are not stored, so UCI re-reads its months
            earlier = """SELECT indicator_code, unit_code AS kode_faskes, numerator, denominator
                           FROM indicators.indicator_value
                          WHERE unit_level = 'facility' AND period_type = 'ytd' AND period = ?
                         UNION ALL
                         SELECT indicator_code, unit_code, numerator, denominator
                           FROM indicators.indicator_value
                          WHERE unit_level = 'facility' AND period_type = 'month' AND period >= ? AND period < ?
                            AND indicator_code IN (SELECT indicator_code FROM _ind_cat WHERE aggregation = 'UCI')"""
            earlier_params = [add_months(period, -1), year_start(period), period]
        else:
            earlier = """SELECT indicator_code, unit_code AS kode_faskes, numerator, denominator
                           FROM indicators.indicator_value
                          WHERE unit_level = 'facility' AND period_type = 'month' AND period >= ? AND period < ?"""
            earlier_params = [year_start(period), period]
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _fac_ytd AS
            WITH months AS (
                {earlier}
                UNION ALL SELECT indicator_code, kode_faskes, numerator, denominator FROM _fac_month
            )
            SELECT m.indicator_code, m.kode_faskes,
                   CASE WHEN any_value(c.aggregation) = 'UNIQUE_YTD' THEN max(m.numerator) ELSE sum(m.numerator) END AS numerator,
                   sum(m.denominator) AS denominator
              FROM months m JOIN _ind_cat c USING (indicator_code)
             WHERE c.aggregation <> 'SUM_MONTH'
             GROUP BY m.indicator_code, m.kode_faskes
        """, earlier_params)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _unit_rows AS
            WITH fac AS (
                SELECT 'month' AS period_type, * FROM _fac_month
                UNION ALL SELECT 'ytd', * FROM _fac_ytd
            )
            SELECT r.period_type, r.indicator_code, u.unit_level, u.unit_code,
                   sum(r.numerator) AS numerator, sum(r.denominator) AS denominator, count(*) AS n_facilities
              FROM fac r JOIN _fac_unit u ON u.kode_faskes = r.kode_faskes
              JOIN _ind_cat c ON c.indicator_code = r.indicator_code
             WHERE u.unit_level = 'facility'
                OR (list_contains(c.levels, u.unit_level)
                    AND NOT (c.aggregation = 'UNIQUE_YTD' AND r.period_type = 'month')
                    AND c.aggregation <> 'UCI')
                -- networks' YTD numerators feed the UCI count
                OR (c.aggregation = 'UCI' AND u.unit_level = 'puskesmas_network' AND r.period_type = 'ytd')
             GROUP BY ALL
        """)
        select = f"""
            SELECT * FROM ({_VALUE_SQL}) v
             WHERE NOT (v.indicator_code IN (SELECT indicator_code FROM _ind_cat WHERE aggregation = 'UCI')
                        AND (v.unit_level <> 'facility' OR v.period_type = 'ytd'))
            UNION ALL SELECT * FROM ({_UCI_SQL}) uci
        """
        thr = settings.config.thresholds.uci_threshold_pct
        n = replace_rows(con, "indicators.indicator_value", select, where="period = ?",
                         params=[period, year, month, period, year, period, thr, thr, thr, f"{thr:g}"])
        written[period] = n
        compute_network_contribution(con, period)
        con.execute("DROP TABLE IF EXISTS _fac_ytd_prev")
        con.execute("ALTER TABLE _fac_ytd RENAME TO _fac_ytd_prev")
        previous = period
    con.execute("DROP TABLE IF EXISTS _fac_ytd_prev")
    return written


# --- network contribution ------------------------------------------------------------------

def compute_network_contribution(con: duckdb.DuckDBPyConnection, period: str) -> int:
    """Write `indicators.network_contribution` for one period: per unit (network, kecamatan,
    kab/kota, provinsi) × volume element, each facility type's volume and share of the total.

    Month rows from `clean.submission_value`; YTD rows = stored month rows Jan..P−1 + P. Share =
    volume ÷ total × 100 (NULL when the total is 0). Elements: `catalog/contribution_elements.csv`.
    """
    pairs = contribution_elements()
    con.register("_contrib_df", pd.DataFrame(pairs, columns=["program", "data_element"]))
    con.execute("CREATE OR REPLACE TEMP TABLE _contrib AS SELECT * FROM _contrib_df")
    con.unregister("_contrib_df")
    create_facility_units(con)
    sql = """
        WITH month AS (
            SELECT u.unit_level, u.unit_code, e.program, v.data_element, u.jenis_faskes,
                   CAST(sum(v.value) AS DOUBLE) AS volume
              FROM clean.submission_value v
              JOIN _contrib e ON e.data_element = v.data_element
              JOIN _fac_unit u ON u.kode_faskes = v.kode_faskes AND u.unit_level <> 'facility'
             WHERE v.period = ? AND v.value IS NOT NULL
             GROUP BY ALL
        ), ytd AS (
            SELECT unit_level, unit_code, program, data_element, jenis_faskes, sum(volume) AS volume
              FROM (SELECT unit_level, unit_code, program, data_element, jenis_faskes, volume
                      FROM indicators.network_contribution
                     WHERE period_type = 'month' AND period >= ? AND period < ?
                    UNION ALL SELECT * FROM month)
             GROUP BY ALL
        ), both_ AS (
            SELECT 'month' AS period_type, * FROM month UNION ALL SELECT 'ytd', * FROM ytd
        )
        SELECT unit_level, unit_code, ? AS period, period_type, program, data_element, jenis_faskes, volume,
               sum(volume) OVER w AS total,
               volume / nullif(sum(volume) OVER w, 0) * 100 AS share_pct
          FROM both_
        WINDOW w AS (PARTITION BY period_type, unit_level, unit_code, data_element)
    """
    return replace_rows(con, "indicators.network_contribution", sql, where="period = ?",
                        params=[period, period, year_start(period), period, period])


# --- checks (pure; wrapped by data_quality/indicator_checks.py) ----------------------------

def reconcile_totals(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    """Units whose numerator (or element denominator) differs from the sum of their facilities'
    stored rows for `period` (month and YTD). Empty = the hierarchy adds up. UCI (a count of
    networks) is excluded."""
    create_facility_units(con)
    return con.execute("""
        WITH fac AS (
            SELECT i.indicator_code, i.period_type, u.unit_level, u.unit_code,
                   sum(i.numerator) AS fac_numerator, sum(i.denominator) FILTER (WHERE i.denominator_method LIKE 'data_element:%') AS fac_denominator
              FROM indicators.indicator_value i JOIN _fac_unit u ON u.kode_faskes = i.unit_code
             WHERE i.period = ? AND i.unit_level = 'facility' AND u.unit_level <> 'facility'
             GROUP BY ALL
        )
        SELECT i.indicator_code, i.period_type, i.unit_level, i.unit_code, i.numerator, f.fac_numerator,
               i.denominator, f.fac_denominator
          FROM indicators.indicator_value i
          LEFT JOIN fac f USING (indicator_code, period_type, unit_level, unit_code)
         WHERE i.period = ? AND i.unit_level <> 'facility' AND i.denominator_method NOT LIKE 'puskesmas_network_idl%'
           AND (f.fac_numerator IS NULL OR abs(i.numerator - f.fac_numerator) > 1e-6
                OR (i.denominator_method LIKE 'data_element:%' AND abs(i.denominator - f.fac_denominator) > 1e-6))
         ORDER BY ALL
    """, [period, period]).df()


def coverage_above_100(con: duckdb.DuckDBPyConnection, period: str) -> pd.DataFrame:
    """Rows of `period` whose coverage is above 100 % (flagged, not clipped)."""
    return con.execute("""
        SELECT indicator_code, unit_level, unit_code, period_type, numerator, denominator,
               round(value, 1) AS value, denominator_method
          FROM indicators.indicator_value
         WHERE period = ? AND above_100 ORDER BY indicator_code, unit_level, unit_code, period_type
    """, [period]).df()
