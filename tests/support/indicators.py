"""A small indicator world shared by the indicator tests: facilities, official sasaran, values."""

from __future__ import annotations

import duckdb

# element → {period: {facility: value}}; a facility absent from a month did not report it (NULL)
VALUES: dict[str, dict[str, dict[str, int | None]]] = {
    "kia_k1": {"2025-01": {"PA": 5, "KA1": 3, "DA1": 2, "PB": 4, "KB1": 1},
               "2025-02": {"PA": 6, "KA1": None, "DA1": 1, "PB": 3, "KB1": 2}},
    "kia_lahir_hidup": {"2025-01": {"PA": 40, "KA1": 10, "PB": 30}, "2025-02": {"PA": 20}},
    "kia_kematian_neonatal": {"2025-01": {"PA": 0, "KA1": 0, "PB": 1}, "2025-02": {"PA": 0}},
    "kia_kematian_ibu": {"2025-01": {"PB": 1}},
    "tb_terduga_ditemukan": {"2025-01": {"PA": 10, "KA1": 4, "DA1": 2, "PB": 5},
                             "2025-02": {"PA": 6}},
    "tb_terduga_diperiksa": {"2025-01": {"PA": 8, "KA1": 4, "PB": 6}, "2025-02": {"PA": 6}},
    "tb_kasus_ternotifikasi": {"2025-01": {"PA": 2, "KA1": 1, "DA1": 1, "PB": 1, "KB1": 0},
                               "2025-02": {"PA": 1}},
    "ht_dilayani_standar_ytd_unik": {"2025-01": {"PA": 100, "KA1": 20, "PB": 50},
                                     "2025-02": {"PA": 90, "KA1": 30}},
    "ht_dilayani_standar": {"2025-01": {"PA": 60, "KA1": 10}},
    "ht_terkendali": {"2025-01": {"PA": 30, "KA1": 5}},
    "imun_dpt1": {"2025-01": {"PA": 10, "KA1": 2, "PB": 5}, "2025-02": {"PA": 8, "PB": 4}},
    "imun_dpt3": {"2025-01": {"PA": 8, "KA1": 2, "PB": 6}, "2025-02": {"PA": 7, "PB": 3}},
    "imun_mr1": {"2025-01": {"PA": 9, "KA1": 1, "PB": 5}, "2025-02": {"PA": 8, "PB": 4}},
    "imun_idl": {"2025-01": {"PA": 20, "KA1": 5, "PB": 10}, "2025-02": {"PA": 15, "PB": 12}},
}


FACILITIES = [
    # kode, jenis, induk, kode_wilayah
    ("PA", "puskesmas", None, "99.01.01.2001"),
    ("KA1", "klinik_pratama", "PA", "99.01.01"),
    ("DA1", "tpmd", "PA", "99.01.01"),
    ("PB", "puskesmas", None, "99.01.02"),
    ("KB1", "klinik_pratama", "PB", "99.01.01"),
]


OFFICIAL_SASARAN = [
    ("puskesmas_network", "PA", "bumil", 60), ("puskesmas_network", "PA", "lahir_hidup", 50),
    ("puskesmas_network", "PA", "bayi", 48),
    ("puskesmas_network", "PB", "bumil", 40), ("puskesmas_network", "PB", "lahir_hidup", 30),
    ("puskesmas_network", "PB", "bayi", 29),
    ("kabkota", "99.01", "bumil", 110),
]


def add_facility(con: duckdb.DuckDBPyConnection, kode: str, jenis: str, induk: str | None,
                 wilayah: str) -> None:
    con.execute("""INSERT INTO reference.facility (kode_faskes, nama_faskes, jenis_faskes,
                       kode_puskesmas_induk, kode_jejaring, kode_wilayah, kode_kec, kode_kabkota,
                       kode_prov, formulir)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ['tb', 'ptm', 'kia', 'imun'])""",
                [kode, f"Faskes {kode}", jenis, induk, induk or kode, wilayah, wilayah[:8],
                 wilayah[:5], wilayah[:2]])


def add_value(con: duckdb.DuckDBPyConnection, kode: str, period: str, element: str,
              value: int | None) -> None:
    form = element.split("_")[0].replace("ht", "ptm").replace("dm", "ptm")
    con.execute("INSERT INTO clean.submission_value (submission_id, kode_faskes, period, form, "
                "data_element, value, reported_value) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [f"{kode}|{period}|{form}", kode, period, form, element, value, value])


def build_world(con: duckdb.DuckDBPyConnection, year: int = 2025) -> None:
    """The wilayah above; `year` shifts the data (2025 in the hand-worked tests)."""
    for fac in FACILITIES:
        add_facility(con, *fac)
    con.execute("INSERT INTO reference.wilayah (kode, level, penduduk, source_version) "
                "VALUES ('99.01', 'kabkota', 100000, 'test'), ('99', 'provinsi', 5000000, 'test')")
    for level, unit, code, nilai in OFFICIAL_SASARAN:
        con.execute("INSERT INTO reference.sasaran "
                    "VALUES (?, ?, ?, ?, ?, 'pusdatin_official', NULL)",
                    [year, level, unit, code, nilai])

    for element, by_period in VALUES.items():
        for period, by_fac in by_period.items():
            for kode, value in by_fac.items():
                add_value(con, kode, f"{year}{period[4:]}", element, value)
