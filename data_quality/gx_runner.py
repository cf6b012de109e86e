"""Run a GX 1.x suite on a pandas frame (an ephemeral data context, a whole-dataframe batch) and
turn the result into a Dagster `AssetCheckResult`; optionally build, into a folder cleared first
(so it holds the latest run only), GX Data Docs and the project's own offline page of the run
(`validation_page.py`: pass/fail per expectation in Indonesian, no CDN). GX is imported inside
the functions.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from data_quality import validation_page
from kolab_pipeline import labels

SAMPLE_ROWS = 10


@dataclass
class FrameValidation:
    """A GX validation result plus what the check metadata needs (the frame, the docs index)."""

    result: Any                       # great_expectations ExpectationSuiteValidationResult
    frame: pd.DataFrame
    suite_name: str
    docs_index: Path | None = None
    page: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return bool(self.result.success)


def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.enable_analytics(False)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def validate_frame(df: pd.DataFrame, suite: Any, docs_dir: Path | None = None, *,
                   table: str | None = None, table_rows: int | None = None,
                   zone: str = "Asia/Jakarta") -> FrameValidation:
    """Validate `df` with `suite` (a `gx.ExpectationSuite`); optionally build Data Docs into
    `docs_dir` (its `index.html` is returned as `docs_index`) and the offline page of the run
    (`page`; `table`, its `table_rows` and the time `zone` are shown on it)."""
    import great_expectations as gx

    ctx = _context()
    name = suite.name
    batch_def = (ctx.data_sources.add_pandas("kolab").add_dataframe_asset(name)
                 .add_batch_definition_whole_dataframe("whole"))
    # a fresh copy: a suite object can belong to one context only
    suite = ctx.suites.add(gx.ExpectationSuite(
        name=name, expectations=[e.copy(update={"id": None}) for e in suite.expectations]))
    result_format = {"result_format": "COMPLETE", "partial_unexpected_count": SAMPLE_ROWS}
    if docs_dir is None:
        result = batch_def.get_batch(batch_parameters={"dataframe": df}).validate(
            suite, result_format=result_format)
        return FrameValidation(result, df, name)
    docs_dir = Path(docs_dir)
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    docs_dir.mkdir(parents=True)
    ctx.add_data_docs_site(site_name="kolab", site_config={
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
    })
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"{name}_checkpoint", validation_definitions=[vd], result_format=result_format,
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["kolab"])]))
    run = checkpoint.run(batch_parameters={"dataframe": df})
    result = next(iter(run.run_results.values()))
    index = docs_dir / "index.html"
    validation = FrameValidation(result, df, name, docs_index=index if index.exists() else None)
    validation.page = validation_page.write_page(
        docs_dir / validation_page.PAGE_NAME, name, expectation_rows(result),
        failing_rows(validation), table=table, table_rows=table_rows, zone=zone)
    write_docs_index(docs_dir.parent)
    return validation


def write_docs_index(root: Path) -> Path:
    """`root/index.html` linking, per suite folder below `root`, the offline page of its latest
    run and its GX Data Docs site, so one link in the asset metadata reaches all of them."""
    return validation_page.write_index(Path(root))


def _condition_text(cond: Any) -> str:
    """GX 1.24 stores a pandas row condition as `{'pass_through_filter': …}`: show the filter."""
    if isinstance(cond, dict):
        return str(cond.get("pass_through_filter") or cond)
    return "" if cond is None else str(cond)


def _range_text(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"antara {labels.auto_number(low)} dan {labels.auto_number(high)}"
    if low is not None:
        return f"paling kecil {labels.auto_number(low)}"
    return f"paling besar {labels.auto_number(high)}" if high is not None else "sembarang"


def expectation_text(kind: str, kwargs: dict[str, Any]) -> str:
    """An expectation in Indonesian words (template per type in `catalog/labels_id.csv`, kind
    `gx_expectation`; an unknown type is shown as its code)."""
    column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or [])
    return labels.label("gx_expectation", kind).format(
        kolom=column, rentang=_range_text(kwargs.get("min_value"), kwargs.get("max_value")),
        n_nilai=labels.number(len(kwargs.get("value_set") or [])), pola=kwargs.get("regex", ""))


def _error_text(info: Any) -> str:
    """The exception GX caught while evaluating an expectation ("" when none)."""
    infos = [info] if isinstance(info, dict) and "raised_exception" in info else (
        list(info.values()) if isinstance(info, dict) else [])
    return "; ".join(str(i.get("exception_message") or "") for i in infos
                     if isinstance(i, dict) and i.get("raised_exception"))


def expectation_rows(result: Any) -> list[dict[str, Any]]:
    """One dict per expectation: type and its Indonesian description, column(s), success,
    unexpected count and share, sample values, the error GX caught (if any)."""
    rows = []
    for er in result.results:
        kwargs = er.expectation_config.kwargs
        column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or [])
        res = er.result or {}
        rows.append({
            "expectation": er.expectation_config.type,
            "description": expectation_text(er.expectation_config.type, kwargs),
            "column": column,
            "condition": _condition_text(kwargs.get("row_condition")),
            "success": bool(er.success),
            "unexpected_count": int(res.get("unexpected_count") or 0),
            "unexpected_percent": res.get("unexpected_percent"),
            "element_count": int(res.get("element_count") or 0),
            "observed_value": res.get("observed_value"),
            "sample": ", ".join("(kosong)" if v is None else str(v)
                                for v in (res.get("partial_unexpected_list") or [])[:5]),
            "error": _error_text(er.exception_info),
            "_index": list(res.get("unexpected_index_list") or [])[:SAMPLE_ROWS],
        })
    return rows


def failing_rows(validation: FrameValidation) -> pd.DataFrame:
    """Up to `SAMPLE_ROWS` rows of the frame that failed an expectation (empty when none)."""
    index: list[Any] = []
    for r in expectation_rows(validation.result):
        if not r["success"]:
            index += [i for i in r["_index"] if i not in index]
    return validation.frame.loc[[i for i in index[:SAMPLE_ROWS] if i in validation.frame.index]]


def summary_text(rows: list[dict[str, Any]]) -> str:
    """One Indonesian sentence: how many expectations held, which failed."""
    failed = [r for r in rows if not r["success"]]
    if not failed:
        return f"Semua {labels.number(len(rows))} harapan terpenuhi"
    names = "; ".join(f"{r['description']} ({labels.number(r['unexpected_count'])} tidak sesuai)"
                      for r in failed[:3])
    more = f"; dan {labels.number(len(failed) - 3)} lainnya" if len(failed) > 3 else ""
    return (f"{labels.number(len(failed))} dari {labels.number(len(rows))} harapan gagal: "
            f"{names}{more}")


def expectations_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The expectations as the check metadata shows them (Indonesian headings, code last)."""
    return pd.DataFrame({
        "Status": [labels.label("gx_status", _status(r)) for r in rows],
        "Harapan": [r["description"] for r in rows],
        "Kolom": [r["column"] for r in rows],
        "Kondisi": [r["condition"] for r in rows],
        "Diperiksa": [labels.number(r["element_count"]) for r in rows],
        "Tidak sesuai": [labels.number(r["unexpected_count"]) for r in rows],
        "Contoh": [r["sample"] for r in rows],
        "Kode harapan": [r["expectation"] for r in rows],
    })


def _status(row: dict[str, Any]) -> str:
    return "error" if row["error"] else ("passed" if row["success"] else "failed")


def to_check_result(validation: FrameValidation | Any, *, asset_key: Any = None,
                    check_name: str | None = None,
                    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
                    extra_metadata: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """A Dagster check result: passed = GX success; an Indonesian description; metadata =
    evaluated / failed counts, the unexpected total, a markdown table per expectation, a sample
    of failing rows, and the offline page and Data Docs index when built. Accepts a
    `FrameValidation` or a bare GX result."""
    if isinstance(validation, FrameValidation):
        result, frame, docs = validation.result, validation.frame, validation.docs_index
        page = validation.page
        sample = failing_rows(validation)
    else:
        result, frame, docs, page, sample = validation, None, None, None, pd.DataFrame()
    rows = expectation_rows(result)
    stats = result.statistics
    metadata: dict[str, Any] = {
        "evaluated": dg.MetadataValue.int(int(stats["evaluated_expectations"])),
        "failed": dg.MetadataValue.int(int(stats["unsuccessful_expectations"])),
        "unexpected_total": dg.MetadataValue.int(int(sum(r["unexpected_count"] for r in rows))),
        "rows_validated": dg.MetadataValue.int(len(frame) if frame is not None else
                                               max((r["element_count"] for r in rows), default=0)),
        "expectations": dg.MetadataValue.md(
            expectations_table(rows).to_markdown(index=False, disable_numparse=True)
            if rows else "_(tidak ada)_"),
    }
    if len(sample):
        metadata["failing_rows_sample"] = dg.MetadataValue.md(sample.to_markdown(index=False))
    if page is not None:
        metadata["validation_page"] = dg.MetadataValue.path(str(page))
    if docs is not None:
        metadata["data_docs"] = dg.MetadataValue.path(str(docs))
    metadata.update(extra_metadata or {})
    kwargs: dict[str, Any] = {}
    if asset_key is not None:
        kwargs["asset_key"] = asset_key
    if check_name is not None:
        kwargs["check_name"] = check_name
    return dg.AssetCheckResult(passed=bool(result.success), severity=severity, metadata=metadata,
                               description=summary_text(rows), **kwargs)
