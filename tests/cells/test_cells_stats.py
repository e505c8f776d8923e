"""column_stats(): JSON-safe bounds that are never wrong; decode_stat() reads them back."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from apiary.cells.stats import MAX_STRING_STAT, column_stats, decode_stat
from apiary.errors import SchemaError

NAN = float("nan")
INF = float("inf")


def stats(column: pa.Array | pa.ChunkedArray) -> dict:
    return column_stats(pa.table({"x": column}))["x"]


def test_every_column_is_described() -> None:
    table = pa.table({"a": [3, None, -1], "b": ["x", "y", None], "c": [None, None, None]})
    result = column_stats(table)
    assert result == {
        "a": {"min": -1, "max": 3, "null_count": 1},
        "b": {"min": "x", "max": "y", "null_count": 1},
        "c": {"min": None, "max": None, "null_count": 3},
    }
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize(
    ("column", "lo", "hi"),
    [
        (pa.array([5, -3, 7], pa.int8()), -3, 7),
        (pa.array([2**64 - 1, 0], pa.uint64()), 0, 2**64 - 1),
        (pa.array([1.5, NAN, -2.25]), -2.25, 1.5),
        (pa.array([0.5, NAN], pa.float32()), 0.5, 0.5),
        (pa.array([NAN, NAN]), None, None),
        (pa.array([-INF, 1.0, INF]), None, None),
        (pa.array([-INF, 1.0]), None, 1.0),
        (pa.array([True, True]), True, True),
        (pa.array([True, False]), False, True),
        (pa.array(["pear", "apple", "zoo"]), "apple", "zoo"),
        (pa.array(["b", "a"], pa.large_string()), "a", "b"),
        (pa.array([dt.date(2026, 1, 31), dt.date(1999, 12, 1)]), "1999-12-01", "2026-01-31"),
        (pa.array([dt.date(2026, 1, 31)], pa.date64()), "2026-01-31", "2026-01-31"),
        (
            pa.array([dt.datetime(2026, 1, 31, 12), dt.datetime(2026, 1, 1)], pa.timestamp("us")),
            "2026-01-01T00:00:00",
            "2026-01-31T12:00:00",
        ),
        (
            pa.array([0, 1_500], pa.timestamp("ms", tz="UTC")),
            "1970-01-01T00:00:00+00:00",
            "1970-01-01T00:00:01.500+00:00",
        ),
        (
            pa.array([0], pa.timestamp("s", tz="Europe/Paris")),
            "1970-01-01T01:00:00+01:00",
            "1970-01-01T01:00:00+01:00",
        ),
        (pa.array([1, 3], pa.time32("s")), "00:00:01", "00:00:03"),
        (pa.array([5, 2], pa.duration("ms")), 2, 5),
        (pa.array([Decimal("1.50"), Decimal("-3.25")], pa.decimal128(6, 2)), "-3.25", "1.50"),
        (pa.array([b"\x00", b"\xff"]), None, None),
        (pa.array([None, None], pa.int64()), None, None),
        (pa.array([], pa.string()), None, None),
    ],
    ids=lambda v: str(v.type) if isinstance(v, pa.Array) else None,
)
def test_bounds(column: pa.Array, lo: object, hi: object) -> None:
    result = stats(column)
    assert result["min"] == lo and type(result["min"]) is type(lo)
    assert result["max"] == hi and type(result["max"]) is type(hi)
    assert result["null_count"] == column.null_count
    json.dumps(result, allow_nan=False)


def test_long_strings() -> None:
    long_low = "a" * 100
    long_high = "z" * 65
    result = stats(pa.array(["m", long_low, long_high]))
    assert result["min"] == "a" * MAX_STRING_STAT  # a prefix is still a lower bound
    assert result["min"] <= long_low
    assert result["max"] is None  # no safe upper bound: unknown
    kept = stats(pa.array([long_low, "b" * 64]))
    assert kept["max"] == "b" * 64  # a long string that is not the max does not matter


def test_chunked_columns() -> None:
    column = pa.chunked_array([[3, None], [9, -4], []], pa.int64())
    assert stats(column) == {"min": -4, "max": 9, "null_count": 1}


@pytest.mark.parametrize(
    "column",
    [
        pa.array([1, -5], pa.int32()),
        pa.array([2**64 - 1, 3], pa.uint64()),
        pa.array([1.25, -0.5]),
        pa.array([0.5], pa.float32()),
        pa.array([True, False]),
        pa.array(["x", "yy"]),
        pa.array(["x", "yy"], pa.large_string()),
        pa.array([dt.date(2026, 1, 31), dt.date(1, 1, 1)]),
        pa.array([dt.date(2026, 1, 31)], pa.date64()),
        pa.array([dt.datetime(2026, 1, 31, 12, 0, 0, 123456)], pa.timestamp("us")),
        pa.array([1_700_000_000_123_456_789, -1], pa.timestamp("ns")),
        pa.array([1_700_000_000_123_456_789], pa.timestamp("ns", tz="America/New_York")),
        pa.array([dt.datetime(2026, 7, 1, tzinfo=dt.UTC)], pa.timestamp("s", tz="Europe/Paris")),
        pa.array([dt.datetime(2026, 7, 1, tzinfo=dt.UTC)], pa.timestamp("ms", tz="+05:30")),
        pa.array([dt.time(23, 59, 59, 999000)], pa.time32("ms")),
        pa.array([dt.time(1, 2, 3, 4)], pa.time64("us")),
        pa.array([1_500, -2], pa.duration("ns")),
        pa.array([dt.timedelta(days=3)], pa.duration("s")),
        pa.array([Decimal("12345.678"), Decimal("-0.001")], pa.decimal128(8, 3)),
    ],
    ids=lambda v: str(v.type),
)
def test_decode_round_trip(column: pa.Array) -> None:
    stored = json.loads(json.dumps(stats(column), allow_nan=False))
    values = column.to_pylist()  # what .as_py() gives, compared in Python
    want_lo, want_hi = min(values), max(values)
    got_lo = decode_stat(stored["min"], column.type)
    got_hi = decode_stat(stored["max"], column.type)
    assert got_lo == want_lo and got_hi == want_hi
    assert type(got_lo) is type(want_lo)


def test_decoded_bounds_compare_with_scalars() -> None:
    column = pa.array(
        [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", tz="Europe/Paris")
    )
    lo = decode_stat(stats(column)["min"], column.type)
    assert lo <= column[0].as_py() <= lo
    assert lo.utcoffset() == dt.timedelta(hours=1)


def test_decode_none_is_unknown() -> None:
    assert decode_stat(None, pa.int64()) is None


@pytest.mark.parametrize(
    ("value", "t"),
    [
        ("5", pa.int64()),
        (True, pa.int64()),
        (1, pa.bool_()),
        (5, pa.string()),
        ("x", pa.float64()),
        ("not a date", pa.date32()),
        (1.5, pa.decimal128(5, 2)),
        ("x", pa.binary()),
    ],
)
def test_decode_refuses_values_of_the_wrong_kind(value: object, t: pa.DataType) -> None:
    with pytest.raises(SchemaError):
        decode_stat(value, t)
