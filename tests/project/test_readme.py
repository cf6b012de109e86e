"""The README stays true: the commands it promises and the table catalogue generated from the
contract."""

from __future__ import annotations

import re
from pathlib import Path

from kolab_pipeline.warehouse import catalogue_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_table_catalogue_matches_the_contract():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- BEGIN TABLE CATALOGUE.*?-->\n(.*?)\n<!-- END TABLE CATALOGUE -->",
                      readme, re.S)
    assert block, "README has no generated table catalogue"
    assert block.group(1).strip() == catalogue_markdown().strip(), (
        "README table catalogue is stale: paste `python -m kolab_pipeline.warehouse` into it")
