"""Run a GX 1.x suite on a pandas frame (an ephemeral data context, a whole-dataframe batch) and
turn the result into a Dagster `AssetCheckResult`; optionally build GX Data Docs into a folder
(cleared first, so it holds the latest run only). GX is imported inside the functions.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

SAMPLE_ROWS = 10


@dataclass
class FrameValidation:
    """A GX validation result plus what the check metadata needs (the frame, the docs index)."""

    result: Any                       # great_expectations ExpectationSuiteValidationResult
    frame: pd.DataFrame
    suite_name: str
    docs_index: Path | None = None
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


def validate_frame(df: pd.DataFrame, suite: Any, docs_dir: Path | None = None) -> FrameValidation:
    """Validate `df` with `suite` (a `gx.ExpectationSuite`); optionally build Data Docs into
    `docs_dir` (its `index.html` is returned as `docs_index`)."""
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
    write_docs_index(docs_dir.parent)
    return FrameValidation(result, df, name, docs_index=index if index.exists() else None)


def write_docs_index(root: Path) -> Path:
    """`root/index.html` linking every suite's Data Docs site below `root` (one folder per suite),
    so one link in the asset metadata reaches all of them."""
    sites = sorted(p.parent.name for p in Path(root).glob("*/index.html"))
    items = "\n".join(f'<li><a href="{name}/index.html">{name}</a></li>' for name in sites)
    page = ("<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\">"
            "<title>kolab_pipeline — Great Expectations Data Docs</title></head><body>"
            "<h1>Great Expectations Data Docs</h1><p>Hasil validasi terakhir per suite "
            "(latest validation per suite):</p>"
            f"<ul>\n{items}\n</ul></body></html>\n")
    out = Path(root) / "index.html"
    out.write_text(page, encoding="utf-8")
    return out


def _condition_text(cond: Any) -> str:
    """GX 1.24 stores a pandas row condition as `{'pass_through_filter': …}`: show the filter."""
    if isinstance(cond, dict):
        return str(cond.get("pass_through_filter") or cond)
    return "" if cond is None else str(cond)


def expectation_rows(result: Any) -> list[dict[str, Any]]:
    """One dict per expectation: type, column(s), success, unexpected count, sample values."""
    rows = []
    for er in result.results:
        kwargs = er.expectation_config.kwargs
        column = kwargs.get("column") or ", ".join(kwargs.get("column_list") or [])
        res = er.result or {}
        rows.append({
            "expectation": er.expectation_config.type,
            "column": column,
            "condition": _condition_text(kwargs.get("row_condition")),
            "success": bool(er.success),
            "unexpected_count": int(res.get("unexpected_count") or 0),
            "element_count": int(res.get("element_count") or 0),
            "sample": ", ".join(str(v) for v in (res.get("partial_unexpected_list") or [])[:5]),
            "_index": list(res.get("unexpected_index_list") or [])[:SAMPLE_ROWS],
        })
    return rows


def to_check_result(validation: FrameValidation | Any, *, asset_key: Any = None,
                    check_name: str | None = None,
                    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
                    extra_metadata: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    """A Dagster check result: passed = GX success; metadata = evaluated / failed counts, the
    unexpected total, a markdown table per expectation, a sample of failing rows, and the Data
    Docs index when built. Accepts a `FrameValidation` or a bare GX result."""
    if isinstance(validation, FrameValidation):
        result, frame, docs = validation.result, validation.frame, validation.docs_index
    else:
        result, frame, docs = validation, None, None
    rows = expectation_rows(result)
    stats = result.statistics
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_index"} for r in rows])
    failing_idx: list[Any] = []
    for r in rows:
        if not r["success"]:
            failing_idx += [i for i in r["_index"] if i not in failing_idx]
    metadata: dict[str, Any] = {
        "evaluated": dg.MetadataValue.int(int(stats["evaluated_expectations"])),
        "failed": dg.MetadataValue.int(int(stats["unsuccessful_expectations"])),
        "unexpected_total": dg.MetadataValue.int(int(sum(r["unexpected_count"] for r in rows))),
        "rows_validated": dg.MetadataValue.int(len(frame) if frame is not None else
                                               max((r["element_count"] for r in rows), default=0)),
        "expectations": dg.MetadataValue.md(
            table.to_markdown(index=False) if len(table) else "_(none)_"),
    }
    if frame is not None and failing_idx:
        sample = frame.loc[[i for i in failing_idx[:SAMPLE_ROWS] if i in frame.index]]
        metadata["failing_rows_sample"] = dg.MetadataValue.md(sample.to_markdown(index=False))
    if docs is not None:
        metadata["data_docs"] = dg.MetadataValue.path(str(docs))
    metadata.update(extra_metadata or {})
    kwargs: dict[str, Any] = {}
    if asset_key is not None:
        kwargs["asset_key"] = asset_key
    if check_name is not None:
        kwargs["check_name"] = check_name
    return dg.AssetCheckResult(passed=bool(result.success), severity=severity, metadata=metadata,
                               **kwargs)
