"""The indicator layer's catalogues, parsed and validated: indicators (`catalog/indicators.csv`),
sasaran formulas, contribution elements and DQ relations. Files are read through
`kolab_pipeline.catalog`; errors name the file, row and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.config import SasaranConfig, Thresholds
from kolab_pipeline.warehouse import Staging, ident

LEVELS = ("facility", "puskesmas_network", "kecamatan", "kabkota", "provinsi")
AGGREGATIONS = ("SUM_MONTH", "SUM_YTD", "PWS", "RATIO_YTD", "SHARE", "UCI", "UCI_DESA",
                "UNIQUE_YTD", "ANNUALISED", "COHORT")
DIRECTIONS = ("increasing", "decreasing")
# Sasaran codes of docs/domain.md §8.4 that may be supplied officially (formulas add their own).
OFFICIAL_SASARAN = ("pend_total", "pend_15plus", "pend_15_59", "pend_60plus", "bumil", "bulin",
                    "bufas", "lahir_hidup", "bayi", "baduta", "balita", "est_penderita_ht_15plus",
                    "est_penderita_dm_15plus", "est_insiden_tb", "est_terduga_tb",
                    "kontak_serumah_tb")
PARAM_TRANSFORMS = ("as_is", "per_1000", "per_100k", "one_minus_per_1000")
BASE_YEARS = {"same": 0, "previous": -1}
RELATION_TYPES = ("eq", "aGTb", "do")
# Aggregations whose denominator must be `sasaran:<code>` / a data-element expression.
NEEDS_SASARAN = ("PWS", "UCI", "UCI_DESA", "UNIQUE_YTD", "ANNUALISED")
NEEDS_ELEMENT_DENOMINATOR = ("RATIO_YTD", "SHARE", "COHORT")
# Cumulative indicators: their year-to-date rows are judged against the pro-rata (PWS) line
# target × months ÷ 12 (a sasaran denominator is an annual figure).
PRO_RATA = ("PWS", "SUM_YTD", "UNIQUE_YTD")
# `target` may name a kolab.yaml `thresholds:` key instead of a number (`config:<key>`).
TARGET_FROM_CONFIG = "config:"

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


_OPERATOR = re.compile(r"\s*([+-])\s*")
_ELEMENT_CODE = re.compile(r"[a-z][a-z0-9_]*")
_INDICATOR_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def parse_expression(text: str, known: Iterable[str], where: str) -> Expression:
    """Parse `a`, `a + b`, `a - b - c` over known element codes (no eval; anything else is an
    error). `where` names the place for the error message (file, row, column)."""
    known = set(known)
    tokens = [t.strip() for t in _OPERATOR.split(text.strip())]
    if not tokens or len(tokens) % 2 == 0:
        raise CatalogueError(f"{where}: cannot parse expression {text!r} "
                             "(expected codes joined by + or -)")
    terms: list[tuple[int, str]] = []
    sign = 1
    for i, tok in enumerate(tokens):
        if i % 2 == 1:
            sign = 1 if tok == "+" else -1
            continue
        if not _ELEMENT_CODE.fullmatch(tok):
            raise CatalogueError(f"{where}: {tok!r} in {text!r} is not a data-element code")
        if tok not in known:
            raise CatalogueError(f"{where}: unknown data element {tok!r} "
                                 f"(not in {catalog.DATA_ELEMENTS.name})")
        terms.append((sign, tok))
    return Expression(tuple(terms))


# --- indicators ----------------------------------------------------------------------------

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
    form: str = ""                   # the form whose reports carry the numerator
    target_ref: str | None = None    # `config:<thresholds key>` when the target is configured
    lag_months: int = 0              # COHORT: months between the denominator and the numerator
    source: str = ""                 # official source of the definition
    description: str = ""            # numerator and denominator in words

    def target_value(self, thresholds: Thresholds | None = None) -> float | None:
        """The annual target: the catalogue number, or the configured threshold it names."""
        if self.target_ref is None:
            return self.target
        return float(getattr(thresholds or Thresholds(), self.target_ref))

    @property
    def den_kind(self) -> str:
        return "element" if self.denominator else ("sasaran" if self.sasaran else "none")

    @property
    def den_text(self) -> str:
        if self.denominator:
            return str(self.denominator)
        return f"sasaran:{self.sasaran}" if self.sasaran else ""


class _Where:
    """`file: row N, column C` for error messages."""

    def __init__(self, path: Path, rowno: int) -> None:
        self.path, self.rowno = path, rowno

    def __call__(self, column: str) -> str:
        return f"{self.path.name}: row {self.rowno}, column {column}"


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


def _one_of(value: str, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise CatalogueError(f"{where}: {value!r} not one of {', '.join(allowed)}")
    return value


def _target(text: str, at: _Where) -> tuple[float | None, str | None]:
    """(number, None) or (None, thresholds key) from the `target` cell."""
    text = (text or "").strip()
    if text.startswith(TARGET_FROM_CONFIG):
        key = text[len(TARGET_FROM_CONFIG):].strip()
        if key not in Thresholds.model_fields:
            raise CatalogueError(f"{at('target')}: {key!r} is not a key of kolab.yaml "
                                 "`thresholds:`")
        return None, key
    return _float(text, at("target"), required=False), None


def _form_of(expr: Expression, at: _Where) -> str:
    forms = {catalog.element_forms()[c] for c in expr.codes}
    if len(forms) != 1:
        raise CatalogueError(f"{at('numerator')}: elements of more than one form ({sorted(forms)})")
    return forms.pop()


def _parse_indicator(row: dict[str, str], at: _Where, known: frozenset[str],
                     sasaran_codes: set[str]) -> Indicator:
    """One catalogue row → `Indicator` (the code was checked by the caller)."""
    num = parse_expression(row["numerator"], known, at("numerator"))
    den_text = (row.get("denominator") or "").strip()
    den, sas = None, None
    if den_text.startswith("sasaran:"):
        sas = den_text.split(":", 1)[1].strip()
        if sas not in sasaran_codes:
            raise CatalogueError(f"{at('denominator')}: unknown sasaran code {sas!r}")
    elif den_text:
        den = parse_expression(den_text, known, at("denominator"))
    agg = _one_of(row["aggregation"].strip(), AGGREGATIONS, at("aggregation"))
    direction = _one_of(row["direction"].strip(), DIRECTIONS, at("direction"))
    levels = tuple(x.strip() for x in row["levels"].split(";") if x.strip())
    bad = [x for x in levels if x not in LEVELS]
    if bad or not levels:
        raise CatalogueError(f"{at('levels')}: {bad or 'empty'} not in {', '.join(LEVELS)}")
    if agg in NEEDS_SASARAN and sas is None:
        raise CatalogueError(f"{at('denominator')}: {agg} needs a sasaran:<code> denominator")
    if agg in NEEDS_ELEMENT_DENOMINATOR and den is None:
        raise CatalogueError(f"{at('denominator')}: {agg} needs a data-element denominator")
    factor = _float(row["factor"], at("factor"), required=True)
    if factor is None or factor <= 0:
        raise CatalogueError(f"{at('factor')}: must be > 0")
    lag = _float(row.get("lag_months", ""), at("lag_months"), required=False) or 0
    if lag != int(lag) or lag < 0 or (agg == "COHORT") != (lag > 0):
        raise CatalogueError(f"{at('lag_months')}: a whole number of months > 0 for COHORT "
                             "(the cohort's start), empty otherwise")
    target, target_ref = _target(row.get("target", ""), at)
    return Indicator(
        code=row["code"].strip(), program=row["program"].strip(),
        name_id=row["name_id"].strip(), name_en=row["name_en"].strip(),
        numerator=num, denominator=den, sasaran=sas, factor=factor, target=target,
        target_source=(row.get("target_source") or "").strip(), aggregation=agg,
        direction=direction, levels=levels, form=_form_of(num, at), target_ref=target_ref,
        lag_months=int(lag), source=(row.get("source") or "").strip(),
        description=(row.get("description") or "").strip(),
    )


def load_catalogue(path: Path = catalog.INDICATORS) -> list[Indicator]:
    """Read and validate the indicator catalogue; errors name the file, row and column."""
    known = catalog.element_codes()
    known_sasaran = set(sasaran_codes())
    out: list[Indicator] = []
    seen: set[str] = set()
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        at = _Where(path, rowno)
        code = (row.get("code") or "").strip()
        if not _INDICATOR_CODE.fullmatch(code):
            raise CatalogueError(f"{at('code')}: {code!r} is not an indicator code (A-Z, 0-9, _)")
        if code in seen:
            raise CatalogueError(f"{at('code')}: duplicate indicator {code}")
        seen.add(code)
        out.append(_parse_indicator(row, at, known, known_sasaran))
    return out


def catalogue_frame(indicators: Sequence[Indicator],
                    thresholds: Thresholds | None = None) -> pd.DataFrame:
    """The catalogue as a small DataFrame to join in SQL (one row per indicator); configured
    targets (`config:<key>`) resolved from `thresholds` (the shipped defaults when None)."""
    return pd.DataFrame({
        "indicator_code": [i.code for i in indicators],
        "program": [i.program for i in indicators],
        "form": [i.form for i in indicators],
        "factor": [i.factor for i in indicators],
        "target": pd.Series([i.target_value(thresholds) for i in indicators], dtype="float64"),
        "aggregation": [i.aggregation for i in indicators],
        "direction": [i.direction for i in indicators],
        "pro_rata": [i.aggregation in PRO_RATA and i.den_kind == "sasaran" for i in indicators],
        "den_kind": [i.den_kind for i in indicators],
        "sasaran_code": [i.sasaran for i in indicators],
        "den_text": [i.den_text for i in indicators],
        "lag_months": [i.lag_months for i in indicators],
        "levels": [list(i.levels) for i in indicators],
    })


def stage_frame(stage: Staging, short: str, frame: pd.DataFrame) -> str:
    """Temp table `<prefix>_<short>` holding `frame` (a catalogue slice to join in SQL)."""
    view = f"{stage.name(short)}_frame"
    stage.con.register(view, frame)
    try:
        return stage.create(short, f"SELECT * FROM {view}")
    finally:
        stage.con.unregister(view)


# --- sasaran formulas ----------------------------------------------------------------------

@dataclass(frozen=True)
class SasaranFormula:
    """One row of `catalog/sasaran_formulas.csv`: nilai = base × constant × f(param), the base
    taken in the same year or the previous one (`base_year`); `param` may be empty (constant
    only). Several rows may define one sasaran: each fills only what the earlier rows left."""

    sasaran: str
    base: str
    metode: str
    param: str
    param_transform: str
    constant: float
    base_year: str = "same"

    @property
    def year_offset(self) -> int:
        """0 (same year) or −1 (the base of the previous year)."""
        return BASE_YEARS[self.base_year]

    def coefficient(self, cfg: SasaranConfig) -> tuple[float, float | None]:
        """(multiplier applied to the base, raw parameter value from kolab.yaml or None)."""
        if not self.param:
            return self.constant, None
        p = float(getattr(cfg, self.param))
        scaled = {"as_is": p, "per_1000": p / 1000, "per_100k": p / 100_000,
                  "one_minus_per_1000": 1 - p / 1000}[self.param_transform]
        return self.constant * scaled, p


@cache
def load_sasaran_formulas(path: Path = catalog.SASARAN_FORMULAS) -> tuple[SasaranFormula, ...]:
    """Formulas in dependency order (a base must be pend_total or defined on an earlier row)."""
    out: list[SasaranFormula] = []
    defined = {"pend_total"}
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        at = _Where(path, rowno)
        f = SasaranFormula(row["sasaran"].strip(), row["base"].strip(), row["metode"].strip(),
                           row["param"].strip(), row["param_transform"].strip(),
                           float(row["constant"]), (row.get("base_year") or "same").strip())
        if f.param and f.param not in SasaranConfig.model_fields:
            raise CatalogueError(f"{at('param')}: {f.param!r} "
                                 "is not a key of kolab.yaml `sasaran:`")
        if f.param_transform not in PARAM_TRANSFORMS:
            raise CatalogueError(f"{at('param_transform')}: {f.param_transform!r} "
                                 f"not in {PARAM_TRANSFORMS}")
        if f.base_year not in BASE_YEARS:
            raise CatalogueError(f"{at('base_year')}: {f.base_year!r} not in "
                                 f"{tuple(BASE_YEARS)}")
        if f.base not in defined:
            raise CatalogueError(f"{at('base')}: {f.base!r} is not defined on an earlier row")
        defined.add(f.sasaran)
        out.append(f)
    return tuple(out)


def sasaran_codes() -> tuple[str, ...]:
    """Every sasaran code an indicator may use: the official ones and the formulas'."""
    formulas = [f.sasaran for f in load_sasaran_formulas()]
    return tuple(dict.fromkeys([*OFFICIAL_SASARAN, *formulas]))


# --- contribution elements and DQ relations ------------------------------------------------

def _known_element(code: str, at: _Where, column: str, message: str) -> None:
    if code not in catalog.element_codes():
        raise CatalogueError(f"{at(column)}: {message} {code!r}")


@cache
def contribution_elements(
        path: Path = catalog.CONTRIBUTION_ELEMENTS) -> tuple[tuple[str, str], ...]:
    """(program, data element) pairs whose volume is split by facility type."""
    rows = [(r["program"], r["data_element"]) for r in catalog.read_rows(path)]
    for rowno, (_, code) in enumerate(rows, start=2):
        _known_element(code, _Where(path, rowno), "data_element", "unknown code")
    return tuple(rows)


@dataclass(frozen=True)
class Relation:
    """One row of `catalog/dq_relations.csv` (WHO DQR 2c, consistency between related indicators).

    A = `a` + `add_to_a`, B = `b` + `add_to_b` (year-to-date sums; the added elements are the
    flows between the two, e.g. TB cases referred elsewhere for treatment count with the treated).
    With `sasaran_a` and `sasaran_b` the expected ratio A ÷ B is sasaran_a ÷ sasaran_b of the
    unit and year (two coverages compared), else 1. `tolerance_pct` None = kolab.yaml
    `thresholds.related_indicator_pct`.
    """

    a: str
    b: str
    kind: str
    add_to_a: tuple[str, ...] = ()
    add_to_b: tuple[str, ...] = ()
    sasaran_a: str | None = None
    sasaran_b: str | None = None
    tolerance_pct: float | None = None

    @property
    def subject(self) -> str:
        """`a/b`, the added elements joined with `+` (the `subject` of its dq_flag rows)."""
        return "/".join("+".join((main, *added)) for main, added in
                        ((self.a, self.add_to_a), (self.b, self.add_to_b)))

    @property
    def elements(self) -> tuple[str, ...]:
        return (self.a, *self.add_to_a, self.b, *self.add_to_b)


def _codes(cell: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (cell or "").split("+") if c.strip())


@cache
def load_relations(path: Path = catalog.DQ_RELATIONS) -> tuple[Relation, ...]:
    """The rows of `catalog/dq_relations.csv`, validated (codes, type, sasaran pair, tolerance)."""
    out = []
    for rowno, row in enumerate(catalog.read_rows(path), start=2):
        at = _Where(path, rowno)
        a, b, kind = row["element_a"].strip(), row["element_b"].strip(), row["type"].strip()
        add_a, add_b = _codes(row.get("add_to_a")), _codes(row.get("add_to_b"))
        for col, codes in (("element_a", (a,)), ("element_b", (b,)), ("add_to_a", add_a),
                           ("add_to_b", add_b)):
            for code in codes:
                _known_element(code, at, col, "unknown data element")
        if kind not in RELATION_TYPES:
            raise CatalogueError(f"{at('type')}: {kind!r} not in {RELATION_TYPES}")
        sas_a = (row.get("sasaran_a") or "").strip() or None
        sas_b = (row.get("sasaran_b") or "").strip() or None
        if (sas_a is None) != (sas_b is None):
            raise CatalogueError(f"{at('sasaran_a')}: sasaran_a and sasaran_b go together "
                                 "(the expected ratio is sasaran_a ÷ sasaran_b)")
        if sas_a and kind != "eq":
            raise CatalogueError(f"{at('sasaran_a')}: an expected ratio from the sasaran needs "
                                 f"type eq, not {kind!r}")
        if kind == "do" and (add_a or add_b):
            raise CatalogueError(f"{at('add_to_a')}: a drop-out (do) compares two elements only")
        tolerance = (row.get("tolerance_pct") or "").strip()
        try:
            tol = float(tolerance) if tolerance else None
        except ValueError:
            raise CatalogueError(f"{at('tolerance_pct')}: {tolerance!r} is not a number") from None
        if tol is not None and not 0 < tol < 100:
            raise CatalogueError(f"{at('tolerance_pct')}: {tol} must be between 0 and 100")
        out.append(Relation(a, b, kind, add_a, add_b, sas_a, sas_b, tol))
    return tuple(out)
