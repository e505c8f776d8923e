"""Which cells the ledger proves cannot match (pure logic on hand-made cell metadata)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from apiary.ledger import CellMeta, ColumnStats
from apiary.sql.pruning import And, Cmp, InList, IsNull, Or, prune

SCHEMA = pa.schema(
    [
        ("region", pa.string()),
        ("n", pa.int64()),
        ("f", pa.float64()),
        ("d", pa.date32()),
        ("s", pa.string()),
    ]
)


def cell(region: str, low: int, high: int, nulls: int = 0, rows: int = 10, **extra) -> CellMeta:
    stats = {
        "n": ColumnStats(min=low, max=high, null_count=nulls),
        "f": ColumnStats(min=float(low), max=float(high)),
        "d": ColumnStats(min="2026-01-01", max="2026-01-31"),
        **extra,
    }
    return CellMeta(
        path=f"{region}-{low}", rows=rows, bytes=1, partition={"region": region}, stats=stats
    )


CELLS = [cell("north", 0, 9), cell("north", 10, 19), cell("south", 20, 29), cell("east", 30, 39)]


def kept(*preds) -> list[str]:
    return [c.path for c in prune(CELLS, list(preds), SCHEMA, ["region"]).kept]


@pytest.mark.parametrize(
    ("pred", "expected"),
    [
        (Cmp("region", "=", "north"), ["north-0", "north-10"]),
        (Cmp("region", "!=", "north"), ["south-20", "east-30"]),
        (InList("region", ("south", "east")), ["south-20", "east-30"]),
        (Cmp("n", "=", 15), ["north-10"]),
        (Cmp("n", "<", 10), ["north-0"]),
        (Cmp("n", "<=", 10), ["north-0", "north-10"]),
        (Cmp("n", ">", 29), ["east-30"]),
        (Cmp("n", ">=", 29), ["south-20", "east-30"]),
        (And((Cmp("n", ">=", 5), Cmp("n", "<=", 12))), ["north-0", "north-10"]),
        (Or((Cmp("n", "<", 1), Cmp("n", ">", 38))), ["north-0", "east-30"]),
        (InList("n", (5, 35)), ["north-0", "east-30"]),
        (IsNull("n"), []),
        (IsNull("n", negated=True), ["north-0", "north-10", "south-20", "east-30"]),
        (Cmp("d", ">", dt.date(2026, 2, 1)), []),
        (Cmp("n", "=", None), []),
        (Cmp("unknown", "=", 1), ["north-0", "north-10", "south-20", "east-30"]),
    ],
)
def test_single_predicates(pred, expected) -> None:
    assert kept(pred) == expected


def test_counts_split_by_partition_then_stats() -> None:
    result = prune(CELLS, [Cmp("region", "=", "north"), Cmp("n", ">", 12)], SCHEMA, ["region"])
    assert (result.considered, result.by_partition, result.by_stats) == (4, 2, 1)
    assert [c.path for c in result.kept] == ["north-10"]


def test_floats_never_pruned_on_upper_bounds_because_of_nan() -> None:
    assert kept(Cmp("f", ">", 100.0)) == [c.path for c in CELLS]
    assert kept(Cmp("f", "<", 5.0)) == ["north-0"]


def test_unknown_stats_and_incomparable_types_keep_cells() -> None:
    odd = [cell("west", 0, 9, s=ColumnStats(min="a" * 64, max=None))]
    assert prune(odd, [Cmp("s", ">", "zzz")], SCHEMA, ["region"]).kept == odd
    assert prune(odd, [Cmp("n", ">", "text")], SCHEMA, ["region"]).kept == odd
    all_null = [cell("west", 0, 0, nulls=10)]
    assert prune(all_null, [Cmp("n", "=", 0)], SCHEMA, ["region"]).kept == []
    assert prune(all_null, [IsNull("n")], SCHEMA, ["region"]).kept == all_null
