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


def test_the_arrays_agree_with_the_per_cell_rule_on_random_cells_and_predicates() -> None:
    """Whole-frame evaluation (Arrow arrays) must keep exactly the cells the one-cell rule
    keeps, including unknown bounds, only-null cells, NaN, NULL literals and mixed types."""
    import random

    from apiary.sql.pruning import CellView

    rng = random.Random(7)
    utc = dt.UTC
    schema = pa.schema(
        [
            ("part", pa.int32()),
            ("n", pa.int64()),
            ("f", pa.float64()),
            ("d", pa.date32()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("s", pa.string()),
        ]
    )
    day0 = dt.date(2026, 1, 1)
    at0 = dt.datetime(2026, 1, 1, tzinfo=utc)

    def maybe(value: object) -> object:
        return None if rng.random() < 0.1 else value

    def random_cell(i: int) -> CellMeta:
        lo, width = rng.randint(-50, 50), rng.randint(0, 20)
        stats = {}
        if rng.random() < 0.9:
            stats["n"] = ColumnStats(
                min=maybe(lo), max=maybe(lo + width), null_count=rng.choice([0, 0, 3, 10])
            )
        if rng.random() < 0.9:
            stats["f"] = ColumnStats(min=maybe(lo / 2), max=maybe((lo + width) / 2))
        if rng.random() < 0.9:
            stats["d"] = ColumnStats(
                min=(day0 + dt.timedelta(days=lo + 50)).isoformat(),
                max=(day0 + dt.timedelta(days=lo + width + 50)).isoformat(),
            )
        if rng.random() < 0.9:
            low_ts = at0 + dt.timedelta(hours=lo + 50)
            stats["ts"] = ColumnStats(
                min=low_ts.isoformat(), max=(low_ts + dt.timedelta(hours=width)).isoformat()
            )
        if rng.random() < 0.9:
            letters = sorted(rng.choice("abcdéz") + rng.choice("abz") for _ in range(2))
            stats["s"] = ColumnStats(min=letters[0], max=maybe(letters[1]))
        partition = {"part": str(rng.randint(0, 5))} if rng.random() < 0.9 else {}
        return CellMeta(path=f"c{i}", rows=10, bytes=1, partition=partition, stats=stats)

    def value_for(column: str) -> object:
        k = rng.randint(-60, 80)
        choices = {
            "part": [rng.randint(-1, 6), 2.5, "3", None],
            "n": [k, k + 0.5, float(k), True, None, "x"],
            "f": [k / 2, float("nan"), float("inf"), k, None],
            "d": [day0 + dt.timedelta(days=k + 50), at0, None],
            "ts": [at0 + dt.timedelta(hours=k + 50), at0.replace(tzinfo=None), None],
            "s": ["a", "ab", "b", "zz", "é", "", None, 3],
        }[column]
        return rng.choice(choices)

    def random_pred(depth: int = 0) -> object:
        roll = rng.random()
        if depth < 2 and roll < 0.2:
            parts = tuple(random_pred(depth + 1) for _ in range(rng.randint(1, 3)))
            return And(parts) if rng.random() < 0.5 else Or(parts)
        column = rng.choice([*schema.names, "missing"])
        if column == "missing":
            return Cmp("missing", "=", 1)
        if roll < 0.3:
            return IsNull(column, negated=rng.random() < 0.5)
        if roll < 0.45:
            values = tuple(value_for(column) for _ in range(rng.randint(1, 3)))
            return InList(column, values, negated=rng.random() < 0.3)
        return Cmp(column, rng.choice(["=", "!=", "<", "<=", ">", ">="]), value_for(column))

    checked = 0
    for _ in range(40):
        cells = [random_cell(i) for i in range(30)]
        for _ in range(25):
            preds = [random_pred() for _ in range(rng.randint(1, 3))]
            expected = [
                c.path
                for c in cells
                if all(CellView(c, schema, ["part"]).may_match(p) for p in preds)
            ]
            assert [c.path for c in prune(cells, preds, schema, ["part"]).kept] == expected, preds
            checked += 1
    assert checked == 1000


def test_a_snapshots_bounds_are_kept_for_its_next_query_and_the_kept_ones_are_bounded() -> None:
    from apiary.sql import pruning

    snapshot = {c.path: c for c in CELLS}
    first = pruning._facts_of(snapshot)
    assert pruning._facts_of(snapshot) is first  # the next query over this snapshot
    newer = {**snapshot, "west-40": cell("west", 40, 49)}  # a commit makes a new mapping
    assert pruning._facts_of(newer) is not first
    assert [c.path for c in prune(newer, [Cmp("n", ">", 39)], SCHEMA, ["region"]).kept] == [
        "west-40"
    ]
    for _ in range(pruning._KEPT_FACTS + 5):
        pruning._facts_of({c.path: c for c in CELLS})
    assert len(pruning._facts) <= pruning._KEPT_FACTS
    assert pruning._facts_of(snapshot) is not first  # long since dropped
