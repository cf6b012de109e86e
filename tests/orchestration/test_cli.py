"""The `kolab` console script: exit codes and one-line failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolab_pipeline.cli import main


@pytest.mark.parametrize("argv", [[], ["nope"], ["run", "--month", "2025-13"],
                                  ["run", "--month", "March"], ["template", "xyz"]])
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
