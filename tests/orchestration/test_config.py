"""Configuration: shipped defaults, user overrides, clear errors, calendar helpers, path
confinement."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kolab_pipeline.calendar import add_months, default_partition_start, month_end
from kolab_pipeline.config import ConfigError, Settings, load_config


def test_shipped_defaults(kolab_home):
    cfg = load_config(kolab_home)
    assert cfg.reporting.due_day.network_to_pkm == 5
    assert cfg.reporting.due_day.pkm_to_dinkes == 10
    assert (cfg.thresholds.completeness_pct, cfg.thresholds.timeliness_pct) == (90, 75)
    assert cfg.thresholds.uci_threshold_pct == 80
    # Balikpapan (64.71) is WITA; Cilegon (36.72) WIB; Jayapura (91.71) WIT
    assert cfg.timezones.for_wilayah("64.71.05.1002") == "Asia/Makassar"
    assert cfg.timezones.for_wilayah("36.72") == "Asia/Jakarta"
    assert cfg.timezones.for_wilayah("91.71") == "Asia/Jayapura"
    # sasaran parameters read by catalog/sasaran_formulas.csv and the bottom-up resolution
    assert (cfg.sasaran.share_15_59, cfg.sasaran.consistency_tolerance_pct) == (0.64, 5)


def test_old_idl_antigen_key_is_ignored(kolab_home):
    # `immunisation.idl_antigens` was never read (IDL is reported per child, not composed from
    # dose counts) and was dropped: a kolab.yaml that still has it keeps loading
    (kolab_home / "kolab.yaml").write_text(
        "immunisation:\n  idl_antigens:\n    - {from: '2000-01-01', antigens: [imun_hb0]}\n")
    assert not hasattr(load_config(kolab_home), "immunisation")


def test_user_file_overrides_only_its_keys(kolab_home):
    (kolab_home / "kolab.yaml").write_text(
        "reporting:\n  due_day:\n    network_to_pkm: 3\n  grace_days: 2\n")
    cfg = load_config(kolab_home)
    assert cfg.reporting.due_day.network_to_pkm == 3
    assert cfg.reporting.due_day.pkm_to_dinkes == 10  # untouched default
    assert cfg.reporting.grace_days == 2


@pytest.mark.parametrize("text, fragment", [
    ("reporting: [unclosed", "not valid YAML"),
    ("- a list", "expected a mapping"),
    ("reporting:\n  due_day:\n    pkm_to_dinkes: 40\n", "pkm_to_dinkes"),
])
def test_bad_config_names_the_file(kolab_home, text, fragment):
    (kolab_home / "kolab.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(kolab_home)
    assert "kolab.yaml" in str(err.value) and fragment in str(err.value)


def test_as_of(kolab_home):
    (kolab_home / "kolab.yaml").write_text("reporting:\n  as_of: 2025-02-10\n")
    # a date means the end of that day in WIB (UTC+7): 23:59:59.999999+07 = 16:59:59.999999 UTC
    # (was 16:59:59: the last second of the day now counts whole, issue 19)
    assert load_config(kolab_home).reporting.as_of_utc() == datetime(2025, 2, 10, 16, 59, 59,
                                                                     999999, tzinfo=UTC)


@pytest.mark.parametrize("written", ["2025-04-30", "'2025-04-30'", '"2025-04-30"'])
def test_as_of_date_is_the_end_of_the_local_day_quoted_or_not(kolab_home, written):
    # `kolab sample-data` wrote the date quoted ('2025-04-30'); pydantic then read it as the naive
    # timestamp 2025-04-30T00:00 = 00:00 UTC, so a report received at 10:00 WIB that day was
    # ignored. Every spelling of the date now means the end of that day, local time.
    (kolab_home / "kolab.yaml").write_text(f"reporting:\n  as_of: {written}\n")
    cfg = load_config(kolab_home)
    assert cfg.reporting.as_of == date(2025, 4, 30)
    ten_wib = datetime(2025, 4, 30, 3, 0, tzinfo=UTC)          # 10:00 WIB = 03:00 UTC
    ten_wita = datetime(2025, 4, 30, 2, 0, tzinfo=UTC)         # 10:00 WITA = 02:00 UTC
    # WIB: 23:59:59.999999+07 = 16:59:59.999999 UTC; WITA: +08 → 15:59:59.999999 UTC
    assert cfg.as_of_utc("Asia/Jakarta") == datetime(2025, 4, 30, 16, 59, 59, 999999, tzinfo=UTC)
    assert cfg.as_of_utc("Asia/Makassar") == datetime(2025, 4, 30, 15, 59, 59, 999999,
                                                      tzinfo=UTC)
    assert ten_wib <= cfg.as_of_utc("Asia/Jakarta")
    assert ten_wita <= cfg.as_of_utc("Asia/Makassar")
    # 00:30 WITA on 1 May (16:30 UTC on 30 April) is after WITA's as_of, though before WIB's
    after_midnight_wita = datetime(2025, 4, 30, 16, 30, tzinfo=UTC)
    assert cfg.as_of_utc("Asia/Makassar") < after_midnight_wita < cfg.as_of_utc("Asia/Jakarta")


def test_as_of_timestamps(kolab_home):
    # no offset: local time of the zone asked for; with an offset: that instant everywhere
    (kolab_home / "kolab.yaml").write_text("reporting:\n  as_of: '2025-04-30T17:00:00'\n")
    cfg = load_config(kolab_home)
    assert cfg.as_of_utc("Asia/Jakarta") == datetime(2025, 4, 30, 10, 0, tzinfo=UTC)  # 17 − 7
    assert cfg.as_of_utc("Asia/Jayapura") == datetime(2025, 4, 30, 8, 0, tzinfo=UTC)  # 17 − 9
    (kolab_home / "kolab.yaml").write_text("reporting:\n  as_of: '2025-04-30T17:00:00+08:00'\n")
    cfg = load_config(kolab_home)
    assert {cfg.as_of_utc(z) for z in ("Asia/Jakarta", "Asia/Jayapura")} == {
        datetime(2025, 4, 30, 9, 0, tzinfo=UTC)}


def test_calendar_helpers():
    assert add_months("2024-11", 3) == "2025-02"
    assert add_months("2025-01", -1) == "2024-12"
    assert month_end("2024-02") == date(2024, 2, 29)
    assert default_partition_start(date(2026, 11, 25)) == date(2024, 11, 1)


def test_paths_are_confined_to_home(kolab_home):
    paths = Settings.load(kolab_home).paths
    assert paths.confine("landing/a.csv") == kolab_home / "landing" / "a.csv"
    with pytest.raises(PermissionError, match="outside KOLAB_HOME"):
        paths.confine("../../etc/passwd")
    with pytest.raises(PermissionError):
        paths.confine("/etc/passwd")
