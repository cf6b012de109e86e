"""The rule catalogue loader (`catalog/validation_rules.csv`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolab_pipeline import rules
from kolab_pipeline.rules import Relation, RuleCatalogueError, load_rules, parse_relations

HEADER = "rule_id,layer,severity,applies_to,message_id,message_en,detail_id,detail_en,relation\n"


def test_shipped_catalogue_has_every_clean_rule_with_both_languages() -> None:
    cat = rules.rules()
    for rid in ("V01", "V05", "V05F", "V06", "V06N", "V15", "V16", "V17", "L01"):
        assert cat[rid].severity == "error", rid
    for rid in ("V07", "V08", "V09", "V11", "V13", "L02", "L03", "L04"):
        assert cat[rid].severity == "warning", rid
    for r in cat.values():
        assert r.message_id and r.message_en
    # the file rules of the raw layer are there too (quarantine copies file rejects)
    assert {"F01", "F02", "F04", "F09"} <= set(cat)
    # V05D: a declared tanggal_lapor after the receipt at the Dinkes (issue 16 item 4);
    # L02–L04: report scope (lingkup laporan), issue 16 item 3
    assert rules.rule_ids("warning") == ["V05D", "V07", "V08", "V09", "V11", "V13", "L02", "L03",
                                         "L04"]


def test_relations_of_the_ytd_rules() -> None:
    v07 = rules.rule("V07").relations
    assert Relation("kia_k4", ("kia_k1",)) in v07
    assert Relation("kia_kf_lengkap", ("kia_kf1",)) in v07
    v09 = rules.rule("V09").relations
    assert Relation("tb_kasus_ditemukan", ("tb_terduga_diperiksa", "tb_terduga_dirujuk")) in v09
    assert rules.rule("V11").relations == (Relation("kia_kematian_neonatal", ("kia_lahir_hidup",)),)
    assert rules.rule("V01").relations == ()


def test_render_fills_placeholders_in_both_languages() -> None:
    v01 = rules.rule("V01")
    text = v01.render("id", value="KP-99", column="kode_faskes")
    assert "Kode faskes 'KP-99' tidak dikenal di registri fasilitas" in text
    assert "{" not in text
    english = v01.render("en", value="KP-99")
    assert "Facility code 'KP-99' is not in the facility registry" in english


def test_rule_lookup_names_the_file_when_unknown() -> None:
    with pytest.raises(KeyError, match="V99.*validation_rules.csv"):
        rules.rule("V99")


@pytest.mark.parametrize(("line", "match"), [
    ("V01,clean,error,row,a,b,,,\nV01,clean,error,row,a,b,,,\n",
     r"line 3, column rule_id: duplicate rule id V01"),
    ("V01,clean,fatal,row,a,b,,,\n", r"line 2, column severity: 'fatal'"),
    ("V01,clean,error,row,,b,,,\n", r"line 2, column message_id: empty message"),
    ("v1,clean,error,row,a,b,,,\n", r"line 2, column rule_id: 'v1'"),
    ("V01,clean,error,row,a,b,Kode {kode_x},,\n",
     r"line 2, column detail_id: unknown placeholder \{kode_x\}"),
    ("V07,clean,warning,submission,a,b,,,kia_k4<kia_k1\n",
     r"line 2, column relation: relation 'kia_k4<kia_k1'"),
    ("V07,clean,warning,submission,a,b,,,kia_k4<=DROP TABLE\n", r"'DROP TABLE' in relation"),
])
def test_malformed_catalogue_is_rejected_with_line_and_column(tmp_path: Path, line: str,
                                                              match: str) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER + line, encoding="utf-8")
    with pytest.raises(RuleCatalogueError, match=match):
        load_rules(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("rule_id,layer,severity\nV01,clean,error\n", encoding="utf-8")
    with pytest.raises(RuleCatalogueError, match="missing column.*applies_to"):
        load_rules(path)


def test_parse_relations_sum_of_terms() -> None:
    assert parse_relations("a<=b+c; d <= e") == (Relation("a", ("b", "c")), Relation("d", ("e",)))
    assert parse_relations("") == ()
