"""The report's charts: the heatmap's cell numbers, added in Python, are the bytes Vega draws."""

from __future__ import annotations

import pytest

from kolab_pipeline.report import charts

MONTHS = ["2024-11", "2024-12", "2025-01", "2025-02"]


def draw(names, grid) -> str:
    charts.new_page()
    return charts.trend_heatmap(names, MONTHS, grid, 90.0)


@pytest.mark.parametrize(("value", "text"), [
    (92.5, "93"),       # 37 of 40: a tie rounds away from zero (toFixed), not to even (92)
    (0.5, "1"), (99.5, "100"), (2.5, "3"),
    (200 / 3, "67"),    # 66.67
    (100.0, "100"), (0.0, "0"),
    (-0.4, "0"),        # rounds to zero: no sign
    (-2.5, "−3"),       # the locale's minus
])
def test_cell_number_as_vega_formats_it(value, text):
    assert charts.cell_number(value) == text


def test_heatmap_numbers_are_the_svg_vega_draws(monkeypatch):
    """Ties, dark and light cells, a network without any value (no row), two networks with the
    same name (one row), a month missing for one network: the SVG with the numbers added in
    Python is byte for byte the one Vega draws with a text layer."""
    names = ["Puskesmas Satu", "Puskesmas Dua", "Puskesmas Kosong", "Puskesmas Dua", "Tiga"]
    values = [92.5, 0.5, 99.5, 200 / 3, 100.0, 0.0, 85.0, 79.99, 61.5, 90.0, 89.5, 12.25]
    grid = {}
    k = 0
    for i in (0, 1, 3, 4):
        for m in MONTHS:
            if (i, m) != (4, "2024-12"):
                grid[(i, m)] = values[k % len(values)]
                k += 1
    fast = draw(names, grid)
    assert "<text" in fast and ">93</text>" in fast and 'fill="white"' in fast
    monkeypatch.setattr(charts, "_with_cell_labels", lambda svg, cells: None)
    assert fast == draw(names, grid)


def test_heatmap_without_values_or_with_too_many_cells():
    assert "<svg" in draw(["Puskesmas Satu"], {})       # no cell: no number, still a chart
    names = [f"Puskesmas {i:03d}" for i in range(160)]   # 640 cells: colours only
    svg = draw(names, {(i, m): 95.0 for i in range(160) for m in MONTHS})
    assert "layer_1_marks" not in svg and svg.count("<path") >= 640
