"""Leafcutter sizing: how big a cell may be, given the memory one bee has.

A bee must hold a whole cell decompressed, so cells are sized from the bee's memory budget: aim
for a quarter of it and never exceed half. Sizing only ever splits; small writes make small cells
and ``compact`` merges them later into leafcutter-sized ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

FLOOR = 16 * 1024 * 1024  # below this, splitting costs more (files, requests) than it saves


@dataclass(frozen=True)
class CellSizing:
    target_bytes: int
    max_bytes: int

    def __post_init__(self) -> None:
        if not 0 < self.target_bytes <= self.max_bytes:
            raise ValueError(
                f"cell sizing needs 0 < target_bytes <= max_bytes, got {self.target_bytes} "
                f"and {self.max_bytes}"
            )


def leafcutter(memory_per_bee: int) -> CellSizing:
    """Target a quarter of a bee's memory (at least ``FLOOR``); allow up to twice the target."""
    if memory_per_bee <= 0:
        raise ValueError(f"memory per bee must be positive, got {memory_per_bee}")
    target = max(memory_per_bee // 4, FLOOR)
    return CellSizing(target_bytes=target, max_bytes=2 * target)


def cut(table: pa.Table, sizing: CellSizing) -> list[pa.Table]:
    """``table`` as contiguous, zero-copy slices that each fit a cell.

    Sizes are in-memory (``nbytes``: what a bee holds after decompression). Up to ``max_bytes``
    the table stays one cell; beyond, it becomes ``ceil(nbytes / target_bytes)`` slices whose row
    counts differ by at most one.
    """
    size = table.nbytes
    if size <= sizing.max_bytes or table.num_rows <= 1:
        return [table]
    pieces = min(math.ceil(size / sizing.target_bytes), table.num_rows)
    base, extra = divmod(table.num_rows, pieces)
    slices, start = [], 0
    for i in range(pieces):
        rows = base + (1 if i < extra else 0)
        slices.append(table.slice(start, rows))
        start += rows
    return slices
