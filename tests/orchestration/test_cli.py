"""The `kolab` console script: exit codes and one-line failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolab_pipeline.cli import main


@pytest.mark.parametrize("argv", [[], ["nope"], ["run", "--month", "2025-13"],
                                  ["run", "--month", "March"], ["template", "xyz"],
                                  ["init"], ["init", "--kabkota", "36.72", "--provinsi", "36"],
                                  ["check", "--nope"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    assert "usage: kolab" in capsys.readouterr().err


def test_run_failure_prints_one_line_and_exits_1(kolab_home: Path,
                                                 capsys: pytest.CaptureFixture[str]):
    # An empty KOLAB_HOME: the registry is missing.
    assert main(["--home", str(kolab_home), "run"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("kolab run: PipelineFailed:") and "fasilitas.csv" in err


def test_template_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["template", "tb", "--out", str(tmp_path)]) == 0
    written = [Path(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert written and all(p.exists() and p.stat().st_size > 0 for p in written)
    assert all(tmp_path in p.parents for p in written)


def test_month_help_says_two_flags_are_a_range(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "twice or more: every month from the earliest to the latest given (a range" in text
    assert "year-to-date rows include it" in text


def test_init_and_check(kolab_home: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--home", str(kolab_home), "init", "--kabkota", "36.72"]) == 0
    out = capsys.readouterr().out
    assert "wrote   registry/fasilitas.csv: 8 puskesmas of Kota Cilegon (36.72), Banten" in out
    # a fresh starter home has nothing wrong: exit 0
    assert main(["--home", str(kolab_home), "check"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("kolab check: 0 error(s)")
    # an unknown area: one line, exit 1
    assert main(["--home", str(kolab_home), "init", "--kabkota", "99.99"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kolab init: InitError:")
