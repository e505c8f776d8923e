"""Partition values as canonical text, and split_by_partition()."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from apiary.cells.partition import (
    partition_rows,
    partition_value_from_str,
    partition_value_to_str,
    split_by_partition,
)
from apiary.cells.sorting import sort_cell, sort_order
from apiary.errors import SchemaError

PARIS = "Europe/Paris"


@pytest.mark.parametrize(
    ("value", "t", "text"),
    [
        (42, pa.int64(), "42"),
        (-7, pa.int8(), "-7"),
        (2**64 - 1, pa.uint64(), "18446744073709551615"),
        (True, pa.bool_(), "true"),
        (False, pa.bool_(), "false"),
        ("eu west/1", pa.string(), "eu west/1"),
        ("", pa.large_string(), ""),
        (dt.date(2026, 1, 31), pa.date32(), "2026-01-31"),
        (dt.date(1969, 12, 31), pa.date64(), "1969-12-31"),
        (dt.datetime(2026, 1, 31, 12, 0), pa.timestamp("us"), "2026-01-31T12:00:00"),
        (
            dt.datetime(2026, 1, 31, 12, 0, 0, 250000),
            pa.timestamp("us"),
            "2026-01-31T12:00:00.250000",
        ),
        (dt.datetime(2026, 1, 31, 12, 0, 0, 250000), pa.timestamp("ms"), "2026-01-31T12:00:00.250"),
        (
            dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC),
            pa.timestamp("s", tz="UTC"),
            "2026-01-31T12:00:00+00:00",
        ),
        (
            dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC),
            pa.timestamp("us", tz=PARIS),
            "2026-07-01T14:00:00+02:00",
        ),
        (dt.time(8, 30, 5), pa.time32("s"), "08:30:05"),
        (dt.time(8, 30, 5, 1000), pa.time64("us"), "08:30:05.001000"),
        (dt.timedelta(seconds=90), pa.duration("ms"), "90000"),
        (Decimal("1.5"), pa.decimal128(10, 2), "1.50"),
        (Decimal("-0.01"), pa.decimal128(5, 2), "-0.01"),
    ],
    ids=lambda v: str(v),
)
def test_canonical_text_and_back(value: object, t: pa.DataType, text: str) -> None:
    assert partition_value_to_str(value, t) == text
    scalar = pa.scalar(value, t)
    assert partition_value_to_str(scalar, t) == text
    assert partition_value_from_str(text, t) == scalar.as_py()


def test_nanosecond_timestamps_keep_every_digit() -> None:
    t = pa.timestamp("ns", tz=PARIS)
    scalar = pa.array([1_700_000_000_123_456_789], t)[0]
    text = partition_value_to_str(scalar, t)
    assert text == "2023-11-14T23:13:20.123456789+01:00"
    back = partition_value_from_str(text, t)
    assert back == scalar.as_py()
    assert pa.array([back], t).cast(pa.int64())[0].as_py() == 1_700_000_000_123_456_789


def test_timestamps_before_the_epoch() -> None:
    t = pa.timestamp("ns")
    scalar = pa.array([-1], t)[0]
    text = partition_value_to_str(scalar, t)
    assert text == "1969-12-31T23:59:59.999999999"
    assert pa.array([partition_value_from_str(text, t)], t).cast(pa.int64())[0].as_py() == -1


@pytest.mark.parametrize(
    ("text", "t"),
    [
        ("abc", pa.int64()),
        ("yes", pa.bool_()),
        ("2026-13-01", pa.date32()),
        ("2026-01-01T00:00:00", pa.timestamp("us", tz="UTC")),  # aware type needs an offset
        ("2026-01-01T00:00:00+00:00", pa.timestamp("us")),  # naive type must not have one
        ("2026-01-01T00:00:00.1234567", pa.timestamp("us")),  # finer than the unit
        ("1,5", pa.decimal128(5, 2)),
    ],
)
def test_non_canonical_text_is_refused(text: str, t: pa.DataType) -> None:
    with pytest.raises(SchemaError):
        partition_value_from_str(text, t)


def test_null_partition_value_is_refused() -> None:
    with pytest.raises(SchemaError, match="cannot be null"):
        partition_value_to_str(None, pa.string())
    with pytest.raises(SchemaError, match="cannot be null"):
        partition_value_to_str(pa.scalar(None, pa.int64()), pa.int64())


def test_no_partition_columns_is_one_part() -> None:
    table = pa.table({"a": [1, 2, 3]})
    [(values, part)] = split_by_partition(table, [], 10)
    assert values == {}
    assert part is table


def test_split_is_stable_and_sorted_by_value() -> None:
    table = pa.table(
        {
            "n": [10, 2, 10, 2, 33, 10],
            "row": [0, 1, 2, 3, 4, 5],
        }
    )
    parts = split_by_partition(table, ["n"], 10)
    assert [values for values, _ in parts] == [{"n": "2"}, {"n": "10"}, {"n": "33"}]
    assert [part.column("row").to_pylist() for _, part in parts] == [[1, 3], [0, 2, 5], [4]]
    assert all(part.schema == table.schema for _, part in parts)


def test_partition_rows_sorted_and_taken_once_equal_split_then_sort() -> None:
    table = pa.table(
        {
            "n": [10, 2, 10, 2, 33, 10, 2],
            "k": [5, None, 1, 7, 0, 5, 3],
            "row": [0, 1, 2, 3, 4, 5, 6],
        }
    )
    rows = partition_rows(table, ["n"], 10)
    assert [r.to_pylist() for _, r in rows] == [[1, 3, 6], [0, 2, 5], [4]]
    by_rows = [sort_cell(table, ["k", "row"], r) for _, r in rows]
    # the partition column, the same in every row of a partition, taken in input order
    assert [sort_cell(table, ["k", "row"], r, constant=["n"]).to_pydict() for _, r in rows] == [
        t.to_pydict() for t in by_rows
    ]
    by_split = [sort_cell(part, ["k", "row"]) for _, part in split_by_partition(table, ["n"], 10)]
    assert [t.to_pydict() for t in by_rows] == [t.to_pydict() for t in by_split]
    assert by_rows[0].column("k").to_pylist() == [3, 7, None]  # nulls last
    assert partition_rows(table, [], 10) == [({}, None)]
    assert partition_rows(pa.table({"n": [1, 1]}), ["n"], 10) == [({"n": "1"}, None)]


def test_a_key_the_rows_already_follow_is_not_sorted_again() -> None:
    # readings appended in time order: sorted by device, then time
    table = pa.table({"device": [2, 1, 2, 1, 3], "ts": [1, 2, 3, 3, 5], "v": list("abcde")})
    ordered = sort_cell(table, ["device", "ts"])
    assert ordered.column("v").to_pylist() == ["b", "d", "a", "c", "e"]
    steady = pa.table({"device": [1, 1, 2], "ts": [1, 4, 4]})  # follows both keys already
    assert sort_order(steady, ["device", "ts"]) is None  # nothing to take
    assert sort_cell(steady, ["device", "ts"]) is steady
    unordered = pa.table({"device": [1, 1, 1], "ts": [3, None, 1]})  # nulls go last
    assert sort_cell(unordered, ["device", "ts"]).column("ts").to_pylist() == [1, 3, None]
    floats = pa.table({"x": [1.0, float("nan"), 0.5]})  # NaN compares false: sorted properly
    assert sort_cell(floats, ["x"]).column("x").to_pylist()[:2] == [0.5, 1.0]


def test_split_by_two_columns() -> None:
    table = pa.table(
        {
            "region": ["eu", "us", "eu", "eu", "us", "ap"],
            "day": pa.array([dt.date(2026, 1, d) for d in (2, 1, 1, 2, 1, 3)]),
            "row": range(6),
        }
    )
    parts = split_by_partition(table, ("region", "day"), 10)
    assert [values for values, _ in parts] == [
        {"region": "ap", "day": "2026-01-03"},
        {"region": "eu", "day": "2026-01-01"},
        {"region": "eu", "day": "2026-01-02"},
        {"region": "us", "day": "2026-01-01"},
    ]
    assert [part.column("row").to_pylist() for _, part in parts] == [[5], [2], [0, 3], [1, 4]]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pa.array([True, False, True]), ["false", "true"]),
        (pa.array([Decimal("1.10"), Decimal("-2.00")], pa.decimal128(4, 2)), ["-2.00", "1.10"]),
        (
            pa.array([5, -5], pa.timestamp("s", tz="UTC")),
            ["1969-12-31T23:59:55+00:00", "1970-01-01T00:00:05+00:00"],
        ),
        (pa.array(["b", "a"], pa.large_string()), ["a", "b"]),
    ],
    ids=lambda v: str(v.type) if isinstance(v, pa.Array) else "",
)
def test_split_other_partition_types(column: pa.Array, expected: list[str]) -> None:
    parts = split_by_partition(pa.table({"p": column}), ["p"], 10)
    assert [values["p"] for values, _ in parts] == expected


def test_chunked_input() -> None:
    table = pa.Table.from_batches(
        pa.table({"p": ["x", "y", "x", "y"], "row": range(4)}).to_batches(max_chunksize=1)
    )
    parts = split_by_partition(table, ["p"], 10)
    assert [part.column("row").to_pylist() for _, part in parts] == [[0, 2], [1, 3]]


def test_empty_table_has_no_parts() -> None:
    assert split_by_partition(pa.table({"p": pa.array([], pa.string())}), ["p"], 10) == []


def test_null_partition_values_are_refused() -> None:
    with pytest.raises(SchemaError, match=r"'p'.*null"):
        split_by_partition(pa.table({"p": ["a", None]}), ["p"], 10)


def test_too_many_partitions_says_count_limit_and_what_to_do() -> None:
    table = pa.table({"p": range(12), "q": [0, 1] * 6})
    assert len(split_by_partition(table, ["p"], 12)) == 12
    with pytest.raises(SchemaError) as info:
        split_by_partition(table, ["p", "q"], 11)
    message = str(info.value)
    assert "12" in message and "11" in message
    assert "coarser" in message and "max_partitions" in message


def test_a_million_rows_into_a_hundred_partitions() -> None:
    n = 1_000_000
    row = pa.array(range(n), pa.int64())
    day = pc.remainder(pc.multiply(row, 7919), 10)  # rows of a partition are scattered
    names = pa.array([f"region_{i}" for i in range(10)])
    region = names.take(pc.remainder(pc.divide(row, 10), 10))
    table = pa.table({"row": row, "day": day, "region": region})
    start = time.perf_counter()
    parts = split_by_partition(table, ["region", "day"], 1_000)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"split took {elapsed:.2f}s"
    assert len(parts) == 100
    assert sum(part.num_rows for _, part in parts) == n
    keys = [(v["region"], int(v["day"])) for v, _ in parts]
    assert keys == sorted(keys) and len(set(keys)) == 100
    seen = 0
    for values, part in parts:
        assert pc.all(pc.equal(part.column("region"), values["region"])).as_py()
        assert pc.all(pc.equal(part.column("day"), int(values["day"]))).as_py()
        rows = part.column("row")
        assert pc.all(pc.greater(rows.slice(1), rows.slice(0, len(rows) - 1))).as_py()
        seen += pc.sum(rows).as_py()
    assert seen == n * (n - 1) // 2  # every row exactly once


@pytest.mark.parametrize(
    ("text", "t", "canonical"),
    [
        ("2026-01-31", pa.date32(), "2026-01-31"),
        ("007", pa.int32(), "7"),
        ("true", pa.bool_(), "true"),
        ("1.5", pa.decimal128(5, 2), "1.50"),
        ("2026-01-31T12:00:00Z", pa.timestamp("s", tz="UTC"), "2026-01-31T12:00:00+00:00"),
    ],
)
def test_text_values_are_canonicalised(text: str, t: pa.DataType, canonical: str) -> None:
    assert partition_value_to_str(text, t) == canonical


def test_text_that_is_not_a_value_of_the_type() -> None:
    with pytest.raises(SchemaError):
        partition_value_to_str("eu", pa.int64())
