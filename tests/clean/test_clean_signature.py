"""The build signature: a change of `CLEAN_LOGIC_VERSION` or of a rule forces a full clean build;
nothing else does — not other settings, not new raw files, not editing the code's text."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from kolab_pipeline import clean
from kolab_pipeline import rules as rule_catalogue
from kolab_pipeline.clean import signature
from kolab_pipeline.clean.stage import PREFIX, stage_catalogue
from kolab_pipeline.config import Settings
from kolab_pipeline.warehouse import Staging
from tests.support.clean import Raw, q, raw_fixture, ref_con_fixture  # noqa: F401  (fixtures)

CHANGED = ("full", "rules, settings, reference or code changed")


def _relations() -> list:
    return [(r.rule_id, rel) for r in rule_catalogue.rules().values() if r.severity == "warning"
            for rel in r.relations]


def _mode(raw: Raw, settings: Settings) -> tuple[str, str | None]:
    summary = clean.build_clean(raw.con, settings)
    return summary["mode"], summary["full_reason"]


@pytest.fixture
def built(raw: Raw, settings: Settings) -> Raw:
    """One file cleaned once, so the next build is incremental unless the signature changed."""
    raw.file("a.csv")
    raw.row("a.csv", 2, "tb", "2025-03", "KP3672001", {"tb_skrining": "4"})
    assert _mode(raw, settings) == ("full", "no previous build")
    assert _mode(raw, settings) == ("incremental", None)
    return raw


def test_a_new_logic_version_forces_one_full_build(built: Raw, settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signature, "CLEAN_LOGIC_VERSION", signature.CLEAN_LOGIC_VERSION + 1)
    assert _mode(built, settings) == CHANGED
    assert _mode(built, settings) == ("incremental", None)


def test_a_changed_rule_forces_one_full_build(built: Raw, settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = rule_catalogue.rules()
    reworded = {rid: dataclasses.replace(r, message_en=r.message_en + " (reworded)")
                if rid == "V06" else r for rid, r in shipped.items()}
    monkeypatch.setattr(rule_catalogue, "rules", lambda: reworded)
    assert _mode(built, settings) == CHANGED
    assert _mode(built, settings) == ("incremental", None)


def test_other_settings_and_new_files_keep_the_build_incremental(built: Raw,
                                                                 settings: Settings) -> None:
    settings.config.reporting.grace_days = 3
    settings.config.thresholds.completeness_pct = 50
    built.file("b.csv", received_at="2025-04-05T10:00:00+07:00")
    built.row("b.csv", 2, "tb", "2025-03", "P3672010201", {"tb_skrining": "7"})
    summary = clean.build_clean(built.con, settings)
    assert (summary["mode"], summary["files_cleaned"]) == ("incremental", 1)


def test_the_signature_is_the_declared_inputs_and_nothing_else(built: Raw,
                                                               settings: Settings) -> None:
    """Stored signature = version + rules + relations + default zone + reference rows + the
    report-scope settings (puskesmas_scope, recap_detection)."""
    stored = q(built.con, "SELECT DISTINCT fingerprint FROM clean.build_state")
    with Staging(built.con, PREFIX) as stage:
        stage_catalogue(stage)
        declared = signature.signature_of(
            version=signature.CLEAN_LOGIC_VERSION, rules=rule_catalogue.rules_rows(),
            relations=_relations(), default_timezone=settings.config.timezones.default,
            reference=signature.reference_digest(built.con),
            report_scope=signature.report_scope_settings(settings))
    assert stored == [(declared,)]


def test_editing_the_code_text_keeps_the_signature(built: Raw, settings: Settings,
                                                   tmp_path: Path) -> None:
    """A copy of the signature module with a comment added computes the same signature (the
    signature used to hash the module's own source, so any edit forced a full rebuild)."""
    source = Path(signature.__file__).read_text(encoding="utf-8")
    edited = tmp_path / "signature_edited.py"
    edited.write_text(source + "\n# a comment changes nothing the build computes\n",
                      encoding="utf-8")
    spec = importlib.util.spec_from_file_location("signature_edited", edited)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    with Staging(built.con, PREFIX) as stage:
        stage_catalogue(stage)
        original = signature.build_signature(built.con, settings, _relations())
        assert copy.build_signature(built.con, settings, _relations()) == original
    assert q(built.con, "SELECT DISTINCT fingerprint FROM clean.build_state") == [(original,)]


def test_a_changed_report_scope_setting_forces_one_full_build(built: Raw,
                                                              settings: Settings) -> None:
    """The own share of a recap depends on `reporting.puskesmas_scope`: a change re-derives."""
    settings.config.reporting.puskesmas_scope = {"kia": "wilayah"}
    assert _mode(built, settings) == CHANGED
    assert _mode(built, settings) == ("incremental", None)
    settings.config.reporting.recap_detection.months_running = 4
    assert _mode(built, settings) == CHANGED


def test_a_changed_network_membership_forces_one_full_build(built: Raw,
                                                            settings: Settings) -> None:
    """A clinic moved to another puskesmas changes whose recap its reports are subtracted
    from."""
    built.con.execute("UPDATE reference.form_assignment SET kode_puskesmas_induk = 'P6471010101' "
                      "WHERE kode_faskes = 'KP3672001'")
    assert _mode(built, settings) == CHANGED
