"""Leafcutter sizing: targets from bee memory, and cutting tables into cells."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from apiary.cells.sizing import FLOOR, CellSizing, cut, leafcutter

MiB = 1024 * 1024


def test_leafcutter_targets_a_quarter_of_bee_memory() -> None:
    sizing = leafcutter(1024 * MiB)
    assert sizing == CellSizing(target_bytes=256 * MiB, max_bytes=512 * MiB)


@pytest.mark.parametrize("memory", [1, 8 * MiB, 4 * FLOOR - 1])
def test_leafcutter_never_targets_below_the_floor(memory: int) -> None:
    assert leafcutter(memory) == CellSizing(target_bytes=FLOOR, max_bytes=2 * FLOOR)


def test_floor_is_16_mib() -> None:
    assert 16 * MiB == FLOOR
    assert leafcutter(4 * FLOOR).target_bytes == FLOOR


@pytest.mark.parametrize("memory", [0, -1])
def test_leafcutter_needs_positive_memory(memory: int) -> None:
    with pytest.raises(ValueError):
        leafcutter(memory)


def test_cell_sizing_is_frozen_and_checked() -> None:
    sizing = leafcutter(256 * MiB)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sizing.target_bytes = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        CellSizing(target_bytes=10, max_bytes=5)
    with pytest.raises(ValueError):
        CellSizing(target_bytes=0, max_bytes=5)


def _ints(rows: int) -> pa.Table:
    return pa.table({"a": pa.array(range(rows), pa.int64())})


def test_small_table_stays_one_cell() -> None:
    table = _ints(1000)
    assert cut(table, leafcutter(64 * MiB)) == [table]
    assert cut(table, leafcutter(64 * MiB))[0] is table


def test_table_at_max_bytes_stays_one_cell() -> None:
    table = _ints(1000)  # 8000 bytes
    assert table.nbytes == 8000
    assert cut(table, CellSizing(target_bytes=4000, max_bytes=8000)) == [table]


def test_large_table_is_cut_into_near_equal_contiguous_slices() -> None:
    table = _ints(10_001)  # 80,008 bytes
    pieces = cut(table, CellSizing(target_bytes=30_000, max_bytes=60_000))
    assert len(pieces) == 3  # ceil(80,008 / 30,000)
    counts = [p.num_rows for p in pieces]
    assert sum(counts) == 10_001 and max(counts) - min(counts) <= 1
    assert pa.concat_tables(pieces).equals(table)
    assert pieces[1].column("a")[0].as_py() == counts[0]


def test_cuts_are_zero_copy() -> None:
    table = _ints(10_000)
    base = table.column("a").chunk(0).buffers()[1].address
    pieces = cut(table, CellSizing(target_bytes=1_000, max_bytes=2_000))
    assert len(pieces) == 80
    for piece in pieces:
        assert piece.column("a").chunk(0).buffers()[1].address == base


def test_never_more_pieces_than_rows() -> None:
    table = pa.table({"s": ["x" * 5_000, "y" * 5_000, "z" * 5_000]})
    pieces = cut(table, CellSizing(target_bytes=10, max_bytes=20))
    assert [p.num_rows for p in pieces] == [1, 1, 1]
    one_big_row = pa.table({"s": ["x" * 5_000]})
    assert cut(one_big_row, CellSizing(target_bytes=10, max_bytes=20)) == [one_big_row]
