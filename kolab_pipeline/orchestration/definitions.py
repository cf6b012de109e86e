"""The one Dagster code location: assets (per layer), asset checks, jobs, schedules, sensors and
resources, wired explicitly. Loaded by `dagster dev -w workspace.yaml`, `dg`, and `kolab run`."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import dagster as dg

import assets
import data_quality
import sensors
from kolab_pipeline.config import Settings
from kolab_pipeline.orchestration.jobs import apply_orchestration_policies, build_jobs_and_schedules
from kolab_pipeline.orchestration.resources import build_resources


def _modules(package: ModuleType) -> list[ModuleType]:
    return [importlib.import_module(f"{package.__name__}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]


def _sensors() -> list[dg.SensorDefinition]:
    found: dict[str, dg.SensorDefinition] = {}
    for module in _modules(sensors):
        for value in vars(module).values():
            if isinstance(value, dg.SensorDefinition):
                found[value.name] = value
    return list(found.values())


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.load()
    # YTD self-dependencies and the evaluation freshness policy are added here (jobs.py), so the
    # asset modules stay thin and owned by their layer.
    all_assets = apply_orchestration_policies(dg.load_assets_from_package_module(assets), settings)
    checks = [*dg.load_asset_checks_from_package_module(assets),
              *dg.load_asset_checks_from_package_module(data_quality)]
    jobs, schedules = build_jobs_and_schedules(settings)
    return dg.Definitions(
        assets=all_assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=_sensors(),
        resources=build_resources(settings),
    )


defs = build_definitions()
