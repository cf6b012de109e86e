"""Configuration: `KOLAB_HOME`, the paths under it, and `kolab.yaml` merged over the shipped
defaults (`kolab_pipeline/defaults/kolab.yaml`): every tunable rule (due days, thresholds, time
zones, sasaran formulas) in one place. Secrets are read from the environment by the Dagster
resources, never stored here.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, Field, field_validator

from kolab_pipeline.catalog import FORMS

DEFAULTS_FILE = Path(__file__).parent / "defaults" / "kolab.yaml"
DEFAULT_HOME = "./data"


class DueDays(BaseModel):
    network_to_pkm: int = Field(5, ge=1, le=28)
    pkm_to_dinkes: int = Field(10, ge=1, le=28)


ReportScope = Literal["faskes", "wilayah"]
REPORT_SCOPES: tuple[str, ...] = ("faskes", "wilayah")


def _check_scope_forms(value: dict[str, str], key: str) -> dict[str, str]:
    """Form codes of a scope mapping must be forms of the catalogue (they become SQL values)."""
    for form in value:
        if form not in FORMS:
            raise ValueError(f"{key}: {form!r} is not a form (expected one of {', '.join(FORMS)})")
    return value


class RecapDetection(BaseModel):
    """When a puskesmas report in the default scope (`faskes`) looks like an area recap
    (warning L03; README "Definitions pinned"): summed over the monthly elements its network
    reported that month, its value V ≥ its usual own level U + its network's sum N ×
    (1 − `tolerance_pct` %) — i.e. equal to or above network + usual level, allowing the own
    part to vary by up to `tolerance_pct` % of N — in its last `months_running` reports. U =
    median of its own-services values in its last `baseline_months` reports before (at least
    `min_baseline_months` of them); only judged when N ≥ `min_network_pct` % of U."""

    months_running: int = Field(3, ge=1, le=24)
    baseline_months: int = Field(12, ge=1, le=60)
    min_baseline_months: int = Field(6, ge=1, le=60)
    tolerance_pct: float = Field(50, ge=0, lt=100)
    min_network_pct: float = Field(40, ge=0)


class ReportingConfig(BaseModel):
    due_day: DueDays = DueDays()
    grace_days: int = Field(0, ge=0)
    cutoff_months_after_period: int = Field(1, ge=1)
    expected_rule: Literal["whole_period", "period_end"] = "whole_period"
    as_of: datetime | date | None = None
    # Report scope of a puskesmas's own row per form when the row has no `lingkup_laporan`:
    # `faskes` (its own services, the default) or `wilayah` (recap of its whole working area).
    puskesmas_scope: dict[str, ReportScope] = {}
    # The same per kab/kota (Kemendagri code `64.71` → form → scope), over `puskesmas_scope`.
    puskesmas_scope_by_kabkota: dict[str, dict[str, ReportScope]] = {}
    recap_detection: RecapDetection = RecapDetection()

    @field_validator("puskesmas_scope")
    @classmethod
    def _scope_forms(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_scope_forms(value, "reporting.puskesmas_scope")

    @field_validator("puskesmas_scope_by_kabkota")
    @classmethod
    def _scope_kabkota(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for kab, forms in value.items():
            if not (isinstance(kab, str) and re.fullmatch(r"\d{2}\.\d{2}", kab)):
                raise ValueError(f"reporting.puskesmas_scope_by_kabkota: {kab!r} is not a "
                                 "kab/kota code (Kemendagri, e.g. '64.71')")
            _check_scope_forms(forms, f"reporting.puskesmas_scope_by_kabkota.{kab}")
        return value

    def scope_rows(self) -> list[tuple[str, str, str]]:
        """(kode_kabkota, form, scope) of every declared default; kode_kabkota '' = every
        kab/kota. A kab/kota's own entry wins over the general one."""
        rows = [("", form, scope) for form, scope in sorted(self.puskesmas_scope.items())]
        rows += [(kab, form, scope)
                 for kab, forms in sorted(self.puskesmas_scope_by_kabkota.items())
                 for form, scope in sorted(forms.items())]
        return rows

    @field_validator("as_of", mode="before")
    @classmethod
    def _date_stays_a_date(cls, value: object) -> object:
        """`"2025-04-30"` (a quoted date, as YAML writes a date string) is a *date*, the end of
        that day: without this pydantic reads it as the naive timestamp 2025-04-30T00:00, which
        made `as_of` 00:00 UTC and ignored everything received that day."""
        if isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value):
            return date.fromisoformat(value.strip())
        return value

    def as_of_utc(self, tz: str = "Asia/Jakarta") -> datetime:
        """The evaluation moment in UTC for a kab/kota in time zone `tz` (default WIB), or now.

        A date means the end of that day (23:59:59.999999) in `tz`; a timestamp without an
        offset is local time in `tz`; a timestamp with an offset is that instant everywhere.
        Callers pass the facility's or kab/kota's zone (`reference.facility.timezone`), so
        2025-04-30 ends at 16:59:59.999999 UTC in Cilegon (WIB) and at 15:59:59.999999 UTC in
        Balikpapan (WITA)."""
        if self.as_of is None:
            return datetime.now(UTC)
        if isinstance(self.as_of, datetime):
            if self.as_of.tzinfo is None:
                return self.as_of.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
            return self.as_of.astimezone(UTC)
        end_of_day = datetime.combine(self.as_of, time.max, tzinfo=ZoneInfo(tz))
        return end_of_day.astimezone(UTC)

    def as_of_text(self) -> str:
        """`as_of` as a person reads it: `2025-04-30 (end of the day, local time)`, or `now`."""
        if self.as_of is None:
            return "now"
        if isinstance(self.as_of, datetime):
            return self.as_of.isoformat() + ("" if self.as_of.tzinfo else " (local time)")
        return f"{self.as_of.isoformat()} (end of the day, local time)"


class TimezoneConfig(BaseModel):
    default: str = "Asia/Jakarta"
    by_province: dict[str, str] = {}

    @field_validator("default")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value, "timezones.default")

    @field_validator("by_province")
    @classmethod
    def _known_zones(cls, value: dict[str, str]) -> dict[str, str]:
        """Province codes are two digits and zones real IANA names. Why: both become SQL literals
        (the registry's time-zone CASE), so only these shapes may ever get there."""
        for prov, zone in value.items():
            if not (isinstance(prov, str) and len(prov) == 2 and prov.isdigit()):
                raise ValueError(
                    f"timezones.by_province: {prov!r} is not a two-digit province code")
            _check_zone(zone, f"timezones.by_province.{prov}")
        return value

    def for_wilayah(self, kode_wilayah: str | None) -> str:
        """Time zone of a Kemendagri code (any level): looked up by its 2-digit province."""
        prov = (kode_wilayah or "")[:2]
        return self.by_province.get(prov, self.default)


def _check_zone(zone: str, key: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", zone or ""):
        raise ValueError(f"{key}: {zone!r} is not a time zone (IANA name such as Asia/Makassar)")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{key}: {zone!r} is not a time zone (IANA name such as Asia/Makassar)") from None
    return zone


class Thresholds(BaseModel):
    completeness_pct: float = 90
    timeliness_pct: float = 75
    uci_threshold_pct: float = 80
    dropout_max_pct: float = 5
    outlier_moderate_sd: float = 2
    outlier_extreme_sd: float = 3
    outlier_modified_z: float = 3.5
    related_indicator_pct: float = 10
    consistency_over_time_pct: float = 33
    # WHO DQR choices of indicators/dq/ (README "Definitions pinned"; docs/design/indicators.md)
    consistency_compare_with: Literal["kabkota", "one"] = "kabkota"
    outlier_min_months: int = Field(6, ge=2, le=12)
    outlier_min_abs_deviation: float = Field(2, ge=0)
    outlier_count_bounds: Literal["poisson", "none"] = "poisson"
    content_completeness_pct: float = 90
    completeness_consistency_pct: float = 33
    denominator_consistency_pct: float = 10


class SasaranConfig(BaseModel):
    """Parameters of the sasaran formulas (`catalog/sasaran_formulas.csv`) and of the bottom-up
    resolution (`indicators/sasaran.py`)."""

    cbr_per_1000: float = 16.0
    imr_per_1000: float = 16.9
    prevalence_ht_15plus: float = 0.30
    prevalence_dm_15plus: float = 0.02
    share_15plus: float = 0.72
    share_15_59: float = 0.64
    tb_incidence_per_100k: float = 387
    tb_terduga_per_kasus: float = 10
    # An official figure differing from the sum of its children by more than this is used, and
    # flagged (indicators.sasaran_resolved.consistency_warning).
    consistency_tolerance_pct: float = Field(5, ge=0)


class IngestConfig(BaseModel):
    max_file_mb: float = 50
    max_columns: int = 500
    max_rows_per_file: int = 200_000
    # An XLSX is a zip: its parts may expand to far more than the file size (zip bomb).
    max_xlsx_uncompressed_mb: float = 200


class PartitionConfig(BaseModel):
    start: date | None = None


class EvaluationConfig(BaseModel):
    """Evaluation layer (scorecards, exports, report)."""

    # Indicator codes shown on the scorecard and in the report, in display order.
    key_indicators: list[str] = ["KIA_K1", "KIA_K6", "IMUN_IDL", "IMUN_DPT3",
                                 "PTM_SPM_HT", "PTM_SPM_DM", "TB_SPM_TERDUGA", "TB_TC"]
    # Rows per chunk when copying tables to the PostgreSQL warehouse.
    pg_chunk_rows: int = Field(50_000, ge=1_000)
    # Months of a run that get an Excel workbook and an HTML report per kab/kota: `latest` (the
    # last month of the run — what the evaluation meeting reads) or `all` (every month of a
    # backfill; 12 × every kab/kota documents a year at national scale).
    documents: Literal["latest", "all"] = "latest"

    def document_periods(self, periods: list[str]) -> list[str]:
        """The months of `periods` that get workbooks and reports."""
        return sorted(periods) if self.documents == "all" else sorted(periods)[-1:]


class KolabConfig(BaseModel):
    """The parsed, validated `kolab.yaml` (defaults merged with the user's file)."""

    reporting: ReportingConfig = ReportingConfig()
    timezones: TimezoneConfig = TimezoneConfig()
    thresholds: Thresholds = Thresholds()
    sasaran: SasaranConfig = SasaranConfig()
    ingest: IngestConfig = IngestConfig()
    partitions: PartitionConfig = PartitionConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    def as_of_utc(self, tz: str | None = None) -> datetime:
        """`reporting.as_of` in UTC for time zone `tz` (default: `timezones.default`)."""
        return self.reporting.as_of_utc(tz or self.timezones.default)

    def as_of_by_zone(self) -> dict[str, datetime]:
        """`as_of` in UTC for every zone the configuration knows (default and per province)."""
        zones = {self.timezones.default, *self.timezones.by_province.values()}
        return {zone: self.reporting.as_of_utc(zone) for zone in sorted(zones)}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class ConfigError(ValueError):
    """`kolab.yaml` is unreadable or invalid; the message names the file and the key."""


def load_config(home: Path | None = None) -> KolabConfig:
    """Shipped defaults, overridden by `<home>/kolab.yaml` when it exists."""
    data = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    user_file = (home or kolab_home()) / "kolab.yaml"
    if user_file.exists():
        try:
            user = yaml.safe_load(user_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{user_file}: not valid YAML ({exc})") from exc
        if not isinstance(user, dict):
            raise ConfigError(f"{user_file}: expected a mapping of sections at the top level")
        data = _deep_merge(data, user)
    try:
        return KolabConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError: name the file
        raise ConfigError(f"{user_file}: {exc}") from exc


def kolab_home() -> Path:
    """`KOLAB_HOME` (default `./data`), absolute."""
    return Path(os.environ.get("KOLAB_HOME", DEFAULT_HOME)).expanduser().resolve()


class Paths(BaseModel):
    """Every folder and file the pipeline reads or writes, all under one `KOLAB_HOME`."""

    home: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(home=kolab_home())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def received_manifest(self) -> Path:
        return self.landing / "_diterima.csv"

    @property
    def registry(self) -> Path:
        return self.home / "registry"

    @property
    def warehouse(self) -> Path:
        return self.home / "kolab.duckdb"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def data_docs(self) -> Path:
        return self.home / "data_docs"

    @property
    def ground_truth(self) -> Path:
        """Sample generator's answer key, deliberately outside the landing folder."""
        return self.home / "ground_truth"

    @property
    def alerts(self) -> Path:
        return self.home / "alerts.log"

    def confine(self, path: Path | str) -> Path:
        """Resolve `path` and refuse anything outside `KOLAB_HOME` (symlinks, `..`)."""
        resolved = (self.home / path).resolve()
        if resolved != self.home and self.home not in resolved.parents:
            raise PermissionError(f"{path}: outside KOLAB_HOME ({self.home}); refused")
        return resolved


class Settings(BaseModel):
    """Paths plus parsed config: the one settings argument of the pure domain functions."""

    paths: Paths
    config: KolabConfig

    model_config = {"arbitrary_types_allowed": True, "ignored_types": (cached_property,)}

    @classmethod
    def load(cls, home: Path | str | None = None) -> Settings:
        paths = Paths(home=Path(home).resolve()) if home else Paths.from_env()
        return cls(paths=paths, config=load_config(paths.home))


WORKERS_ENV = "KOLAB_WORKERS"


def document_workers() -> int:
    """Worker processes that parse landed workbooks and write the documents (Excel workbooks,
    HTML reports): `KOLAB_WORKERS`, a whole number ≥ 1 (1 = in the run's own process); default
    min(2, CPUs) — a national month is ~500 of each document, and the target server has 2
    cores."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if not raw:
        return max(1, min(2, os.cpu_count() or 1))
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number ≥ 1, got {raw!r}")
    return n
