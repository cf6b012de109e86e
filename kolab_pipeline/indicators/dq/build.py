"""One DQ run: the steps of every metric in order (`dq_sql`), the unit and catalogue tables they
join, and the write of `indicators.dq_flag`, `dq_metric` and `dq_summary` (each period replaced
whole)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb
import pandas as pd

from kolab_pipeline import catalog
from kolab_pipeline.config import Settings
from kolab_pipeline.indicators.catalogue import load_relations, load_sasaran_formulas, stage_frame
from kolab_pipeline.indicators.dq.completeness import completeness_steps
from kolab_pipeline.indicators.dq.consistency import consistency_steps
from kolab_pipeline.indicators.dq.denominators import LIVE_BIRTHS, denominator_steps
from kolab_pipeline.indicators.dq.months import (
    OUTLIER_WINDOW_MONTHS,
    PERIOD,
    PRIOR_YEARS,
    judged_months,
    month_no,
    period_of,
)
from kolab_pipeline.indicators.dq.outliers import (
    check_one_value_per_month,
    judge_frames,
    normal_tail,
    outlier_steps,
)
from kolab_pipeline.indicators.dq.summary import summary_step
from kolab_pipeline.indicators.dq.units import stage_units, unit_steps
from kolab_pipeline.warehouse import Staging, bind, ensure_schema, replace_rows

FLAGS_SQL = """
    SELECT * EXCLUDE (month_no) FROM {outlier} WHERE list_contains($periods, period)
    UNION ALL SELECT * FROM {relation}
    UNION ALL SELECT * FROM {time}
"""

METRICS_SQL = """
    SELECT * FROM {content} UNION ALL BY NAME SELECT * FROM {completeness_time}
    UNION ALL BY NAME SELECT * FROM {denominator} UNION ALL BY NAME SELECT * FROM {live_births}
    UNION ALL BY NAME SELECT * FROM {not_judged_metric}
"""

COUNTS_SQL = """
    SELECT period, count(*) FROM indicators.dq_flag
     WHERE list_contains($periods, period) GROUP BY period
"""


STAGED = ("geo_unit", "moved", "fac_unit", "relations", "relation_side", "expected_element",
          "formulas", "candidate", "not_judged", "series", "outlier", "value_year", "summary",
          "not_judged_metric", "fac_set", "set_unit", "unit_year", "unit_parent",
          "expected_ratio", "relation", "time_ratio", "time", "content_year", "content",
          "completeness_time", "denominator", "live_births")


def dq_sql(settings: Settings, periods: Sequence[str], stage: Staging,
           judge: Sequence[int] | None = None) -> list[tuple[str, str, dict[str, object]]]:
    """The steps computing every DQ row of `periods`, in order: (short name of the temp table in
    `stage`, its SELECT, its named parameters). `judge`: the months (counters) whose outliers
    this pass judges (default: every month of `judged_months`); the flags of the others are
    read from `indicators.dq_flag`.

    The steps read the unit and catalogue tables `compute_dq_flags` stages first (`geo_unit`,
    `moved`, `fac_unit`, `relations`, `relation_side`, `expected_element`, `formulas`);
    `outliers.judge_frames` must run right after the first step (`series`). Profile one with
    `EXPLAIN ANALYZE` after running the ones before it.
    """
    periods = sorted(set(periods))
    bad = [p for p in periods if not PERIOD.fullmatch(p)]
    if bad:
        raise ValueError(f"periods must be YYYY-MM: {bad}")
    th = settings.config.thresholds
    months = judged_months(periods)
    first = months[0] - (OUTLIER_WINDOW_MONTHS - 1)
    first_year = int(periods[0][:4])
    values: dict[str, object] = {
        "last_period": periods[-1], "window_start": period_of(first), "first_month_no": first,
        "prior_years": PRIOR_YEARS, "unit_year_start": f"{first_year - PRIOR_YEARS}-01",
        "year_start": f"{first_year}-01", "first_year": first_year,
        "last_year": int(periods[-1][:4]), "periods": periods,
        "cumulative": [c for c, k in catalog.element_kinds().items() if k == "person_ytd"],
        "relation_elements": sorted({c for r in load_relations() for c in r.elements}),
        "extreme": float(th.outlier_extreme_sd), "moderate": float(th.outlier_moderate_sd),
        "modified_z": float(th.outlier_modified_z), "min_months": max(th.outlier_min_months, 2),
        "min_dev": float(th.outlier_min_abs_deviation),
        "alpha_extreme": normal_tail(th.outlier_extreme_sd),
        "alpha_moderate": normal_tail(th.outlier_moderate_sd),
        "alpha_modified_z": normal_tail(th.outlier_modified_z),
        "c_time": th.consistency_over_time_pct / 100,
        "compare_with_one": th.consistency_compare_with == "one",
        "content_pct": float(th.content_completeness_pct),
        "c_completeness": th.completeness_consistency_pct / 100,
        "c_denominator": th.denominator_consistency_pct / 100,
        "live_births_element": LIVE_BIRTHS[0], "live_births_sasaran": LIVE_BIRTHS[1],
        "live_births_subject": "/".join(LIVE_BIRTHS),
        "stored_periods": [period_of(m) for m in months
                           if judge is not None and m not in set(judge)],
    }
    tables = {short: stage.name(short) for short in STAGED}
    *outliers, not_judged = outlier_steps(settings, periods, months, first, tables)
    steps = [*outliers, summary_step(periods, tables), not_judged, *unit_steps(tables),
             *consistency_steps(periods, tables), *completeness_steps(periods, tables),
             *denominator_steps(periods, tables)]
    return [(short, sql, dict(bind(sql, values))) for short, sql in steps]


def stage_catalogues(stage: Staging, settings: Settings) -> None:
    """The catalogue slices the steps join: relations and their sides, the elements each facility
    type must report, the sasaran formulas with their coefficients."""
    th = settings.config.thresholds
    relations = load_relations()
    stage_frame(stage, "relations", pd.DataFrame({
        "relation_id": range(len(relations)), "a": [r.a for r in relations],
        "b": [r.b for r in relations],
        "kind": [r.kind for r in relations], "subject": [r.subject for r in relations],
        "a_text": [" + ".join((r.a, *r.add_to_a)) for r in relations],
        "b_text": [" + ".join((r.b, *r.add_to_b)) for r in relations],
        "sasaran_a": pd.Series([r.sasaran_a for r in relations], dtype="string"),
        "sasaran_b": pd.Series([r.sasaran_b for r in relations], dtype="string"),
        "has_sasaran": [r.sasaran_a is not None for r in relations],
        "tolerance": [(r.tolerance_pct if r.tolerance_pct is not None
                       else th.related_indicator_pct) / 100 for r in relations]}))
    sides = [(i, side, code) for i, r in enumerate(relations)
             for side, codes in (("a", (r.a,)), ("fa", r.add_to_a), ("b", (r.b,)),
                                 ("fb", r.add_to_b)) for code in codes]
    stage_frame(stage, "relation_side",
                pd.DataFrame(sides, columns=["relation_id", "side", "data_element"]))
    elements = catalog.data_elements()
    expected = [(row.form, row.code, jenis.strip()) for row in elements.itertuples()
                for jenis in str(row.expected_from or "").split(";") if jenis.strip()]
    stage_frame(stage, "expected_element",
                pd.DataFrame(expected, columns=["form", "data_element", "jenis_faskes"]))
    formulas = [(f.sasaran, f.base, f.metode, f.coefficient(settings.config.sasaran)[0])
                for f in load_sasaran_formulas()]
    stage_frame(stage, "formulas",
                pd.DataFrame(formulas, columns=["sasaran", "base", "metode", "coefficient"]))


def _release_after(steps: Sequence[tuple[str, str, dict[str, object]]],
                   names: dict[str, str]) -> dict[int, list[str]]:
    """Step index → the staged tables no statement after it reads (nor the final writes): they
    are dropped there, so the large early ones (the outlier series, ~2 M rows nationally) do
    not hold DuckDB's memory budget while the completeness and consistency steps run."""
    final = " ".join((FLAGS_SQL.format(**names), METRICS_SQL.format(**names), names["summary"]))
    last: dict[str, int] = {}
    for short, full in names.items():
        used = re.compile(rf"\b{re.escape(full)}\b")
        if used.search(final):
            continue
        readers = [i for i, (_, sql, _) in enumerate(steps) if used.search(sql)]
        made = [i for i, (s, _, _) in enumerate(steps) if s == short]
        if readers or made:
            last[short] = max(readers + made)
    out: dict[int, list[str]] = {}
    for short, i in last.items():
        out.setdefault(i, []).append(short)
    return out


def months_to_judge(con: duckdb.DuckDBPyConnection, periods: Sequence[str]) -> list[int]:
    """The months whose outliers a run for `periods` judges: the periods themselves, and the
    earlier months of their years (the year-to-date summary counts their flags) that have no
    stored month rows in `indicators.dq_summary` — never computed. The flags of the other
    earlier months are read back from `indicators.dq_flag` (a new month costs one month of
    outlier work, not a year's)."""
    months = judged_months(periods)
    stored = {p for (p,) in con.execute(
        "SELECT DISTINCT period FROM indicators.dq_summary "
        "WHERE period_type = 'month' AND list_contains($months, period)",
        {"months": [period_of(m) for m in months]}).fetchall()}
    requested = {month_no(p) for p in periods}
    return [m for m in months if m in requested or period_of(m) not in stored]


def compute_dq_flags(con: duckdb.DuckDBPyConnection, settings: Settings,
                     periods: Sequence[str]) -> dict[str, int]:
    """Write `indicators.dq_flag`, `indicators.dq_metric` and `indicators.dq_summary` for each
    period (each table's periods replaced whole in one transaction). Returns flags per period.

    Reads clean values and submissions, the registry, `indicators.sasaran_resolved` and
    `compliance.reporting_rate` (as the benchmark and the assets order them), and the stored
    outlier flags of earlier months of the year (`months_to_judge`). All periods are computed
    in one pass (`dq_sql`); the rows of a period do not depend on which other periods are
    computed with it.
    """
    periods = sorted(set(periods))
    ensure_schema(con)
    if not periods:
        return {}
    months = judged_months(periods)
    judge = months_to_judge(con, periods)
    with Staging(con, "_dq") as stage:
        steps = dq_sql(settings, periods, stage, judge)
        stage_units(stage, range(int(periods[0][:4]) - PRIOR_YEARS, int(periods[-1][:4]) + 1))
        stage_catalogues(stage, settings)
        names = {s: stage.name(s) for s in STAGED}
        release = _release_after(steps, names)
        for i, (short, sql, params) in enumerate(steps):
            name = stage.create(short, sql, params)
            if short == "series":
                check_one_value_per_month(con, name)
                judge_frames(stage, name, settings, months, judge,
                              months[0] - (OUTLIER_WINDOW_MONTHS - 1))
            for done in release.get(i, ()):
                stage.release(done)
        where, params = "list_contains($periods, period)", {"periods": periods}
        replace_rows(con, "indicators.dq_flag", FLAGS_SQL.format(**names), where=where,
                     params=params)
        replace_rows(con, "indicators.dq_metric", METRICS_SQL.format(**names), where=where,
                     params=params)
        replace_rows(con, "indicators.dq_summary", f"SELECT * FROM {names['summary']}",
                     where=where, params=params)
        counts = dict(con.execute(COUNTS_SQL, params).fetchall())
    return {p: counts.get(p, 0) for p in periods}
