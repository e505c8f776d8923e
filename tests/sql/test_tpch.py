"""TPC-H: all 22 queries through ``Apiary.sql`` answer exactly like raw DataFusion.

The data is generated once per module at a small scale, loaded into frames with several cells
each (so pruning, multi-cell scans and name resolution are all exercised) and also registered
straight from the same Parquet files in a plain DataFusion context, the reference.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.compare import assert_same_result
from support.tpch import tpch_files as generated

from apiary import Apiary
from apiary.bench.tpch import (
    TABLES,
    box_name,
    load,
    raw_datafusion,
    run_datafusion,
    use_box,
)
from apiary.bench.tpch_queries import QUERIES, has_order_by

SF = 0.01  # every query still returns rows; generation + load take ~2 s
CELLS_PER_FRAME = 3
HIVE = "tpch"


@pytest.fixture(scope="module")
def tpch_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return generated(SF, tmp_path_factory.mktemp("tpch") / "parquet")


@pytest.fixture(scope="module")
def tpch_apiary(
    tpch_files: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Apiary]:
    home = tmp_path_factory.mktemp("tpch-home")
    # Module-scoped, so it starts before the autouse isolated_home: isolate it the same way.
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("APIARY_"):
                mp.delenv(key)
        mp.setenv("APIARY_HOME", str(home))
        mp.setenv("APIARY_CONFIG", str(home / "absent.toml"))
        with Apiary("tpch", str(tmp_path_factory.mktemp("tpch-root"))) as ap:
            load(ap, tpch_files, HIVE, box_name(SF), cells_per_frame=CELLS_PER_FRAME)
            use_box(ap, HIVE, box_name(SF))
            yield ap


@pytest.fixture(scope="module")
def tpch_reference(tpch_files: dict[str, list[Path]]) -> Any:
    return raw_datafusion(tpch_files)


def test_frames_hold_all_rows_in_several_cells(tpch_apiary: Apiary, tpch_reference: Any) -> None:
    for table in TABLES:
        frame = tpch_apiary.get_frame(HIVE, box_name(SF), table)
        (expected,) = run_datafusion(tpch_reference, f"select count(*) from {table}")[0].to_pylist()
        assert frame["rows"] == expected, table
        assert frame["cells"] >= CELLS_PER_FRAME, table


@pytest.mark.parametrize("number", sorted(QUERIES), ids=lambda n: f"q{n}")
def test_query_matches_datafusion(number: int, tpch_apiary: Apiary, tpch_reference: Any) -> None:
    query = QUERIES[number]
    expected = run_datafusion(tpch_reference, query)
    assert expected.num_rows > 0, f"Q{number} returns no rows at SF {SF}: the test proves nothing"
    assert_same_result(tpch_apiary.sql(query), expected, ordered=has_order_by(query))
