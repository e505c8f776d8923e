"""conform(): safe widening only; every refusal is a SchemaError naming the column (SPEC §6)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

from apiary.cells.conform import conform
from apiary.cells.inputs import to_table
from apiary.cells.types import schema_from_spec
from apiary.errors import SchemaError


def frame(spec: dict, partition_by: tuple[str, ...] = ()) -> pa.Schema:
    return schema_from_spec(spec, partition_by)


def one(column: pa.Array, target: str) -> pa.ChunkedArray:
    """Conform a single column ``x`` to ``target`` and return it."""
    return conform(pa.table({"x": column}), frame({"x": target})).column("x")


def refused(column: pa.Array, target: str) -> str:
    with pytest.raises(SchemaError) as info:
        one(column, target)
    message = str(info.value)
    assert "'x'" in message, message
    return message


def test_exact_schema_and_column_order() -> None:
    schema = frame({"a": "int64", "b": "string", "c": "bool"})
    table = pa.table({"c": [True, None], "a": [1, 2], "b": ["x", "y"]})
    out = conform(table, schema)
    assert out.schema == schema
    assert out.column_names == ["a", "b", "c"]
    assert out.to_pylist() == [{"a": 1, "b": "x", "c": True}, {"a": 2, "b": "y", "c": None}]


def test_unknown_column_is_named_with_the_frame_columns() -> None:
    schema = frame({"a": "int64", "b": "string"})
    with pytest.raises(SchemaError, match="'extra'") as info:
        conform(pa.table({"a": [1], "extra": [2]}), schema)
    assert "a, b" in str(info.value)


def test_unknown_column_hints_at_case() -> None:
    with pytest.raises(SchemaError, match="did you mean 'price'"):
        conform(pa.table({"Price": [1]}), frame({"price": "int64"}))


def test_duplicate_input_columns() -> None:
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(SchemaError, match="'a'"):
        conform(table, frame({"a": "int64"}))


def test_missing_nullable_column_becomes_nulls() -> None:
    out = conform(pa.table({"a": [1, 2, 3]}), frame({"a": "int64", "note": "string"}))
    assert out.column("note").type == pa.string()
    assert out.column("note").to_pylist() == [None, None, None]


def test_missing_non_nullable_column_is_named() -> None:
    schema = pa.schema([pa.field("a", pa.int64()), pa.field("id", pa.int64(), nullable=False)])
    with pytest.raises(SchemaError, match=r"'id'.*missing"):
        conform(pa.table({"a": [1]}), schema)


def test_missing_partition_column_is_named() -> None:
    with pytest.raises(SchemaError, match="'region'"):
        conform(pa.table({"v": [1]}), frame({"v": "int64", "region": "string"}, ("region",)))


@pytest.mark.parametrize(
    ("values", "source", "target"),
    [
        ([1, -2, None], pa.int8(), "int64"),
        ([1, -2, None], pa.int16(), "int32"),
        ([1, 2**31 - 1], pa.int32(), "int64"),
        ([0, 2**32 - 1], pa.uint32(), "int64"),
        ([0, 255], pa.uint8(), "uint16"),
        ([-(2**31), 2**31 - 1, None], pa.int32(), "float64"),
        ([-(2**53), 2**53, None], pa.int64(), "float64"),
        ([0, 2**53], pa.uint64(), "float64"),
        ([1, -(2**15)], pa.int16(), "float32"),
        ([2**24, -(2**24)], pa.int64(), "float32"),
        ([5, -7], pa.int64(), "int32"),  # narrowing is fine when every value fits
        ([5, 2**63 - 1], pa.uint64(), "int64"),
        ([1.5, None, float("inf")], pa.float32(), "float64"),
        ([0.5, -1.25, float("nan"), None], pa.float64(), "float32"),
        ([0.5], pa.float16(), "float64"),
    ],
)
def test_safe_numeric_widening_keeps_every_value(
    values: list, source: pa.DataType, target: str
) -> None:
    out = one(pa.array(values, source), target)
    assert str(out.type) == {"float32": "float", "float64": "double"}.get(target, target)
    got = out.to_pylist()
    for want, have in zip(values, got, strict=True):
        if want is not None and want != want:  # NaN
            assert have != have
        else:
            assert have == want


@pytest.mark.parametrize(
    ("values", "source", "target"),
    [
        ([2**53 + 1], pa.int64(), "float64"),
        ([-(2**53) - 1], pa.int64(), "float64"),
        ([2**24 + 1], pa.int32(), "float32"),
        ([2**31], pa.int64(), "int32"),
        ([-1], pa.int64(), "uint64"),
        ([-1], pa.int8(), "uint8"),
        ([2**63], pa.uint64(), "int64"),
        ([300], pa.int16(), "int8"),
        ([1e300], pa.float64(), "float32"),  # overflow; rounding is allowed (test_float_rounding)
    ],
)
def test_value_that_would_change_is_refused(values: list, source: pa.DataType, target: str) -> None:
    message = refused(pa.array(values, source), target)
    assert target in message


@pytest.mark.parametrize(
    ("column", "target"),
    [
        (pa.array([1.0, 2.0]), "int64"),  # float → int, even for whole numbers
        (pa.array([1.5], pa.float32()), "int32"),
        (pa.array(["1", "2"]), "int64"),
        (pa.array(["1.5"]), "float64"),
        (pa.array([1, 2]), "string"),
        (pa.array([1.5]), "string"),
        (pa.array([True]), "int64"),
        (pa.array([1]), "bool"),
        (pa.array([True]), "string"),
        (pa.array([dt.date(2026, 1, 1)]), "timestamp"),
        (pa.array([dt.datetime(2026, 1, 1)]), "date32"),
        (pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us")), "timestamp[us, tz=UTC]"),
        (pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us", tz="UTC")), "timestamp[us]"),
        (pa.array([1.5]), "decimal(10, 2)"),
        (pa.array([b"x"]), "string"),
        (pa.array(["x"]), "binary"),
        (pa.array([[1, 2]]), "string"),
        (pa.array([1], pa.duration("s")), "int64"),
    ],
    ids=lambda v: str(v.type) if isinstance(v, pa.Array) else v,
)
def test_lossy_or_implicit_conversions_are_refused(column: pa.Array, target: str) -> None:
    message = refused(column, target)
    assert target.split("[")[0].split("(")[0] in message


def test_refusal_names_both_types() -> None:
    message = refused(pa.array([1.0]), "int64")
    assert "float64" in message and "int64" in message


def test_string_view_and_large_string_become_string() -> None:
    assert one(pa.array(["a", None], pa.string_view()), "string").to_pylist() == ["a", None]
    out = one(pa.array(["a", "b"], pa.large_string()), "string")
    assert out.type == pa.string() and out.to_pylist() == ["a", "b"]
    assert one(pa.array(["a"]), "large_string").type == pa.large_string()
    assert one(pa.array([b"z"], pa.large_binary()), "binary").to_pylist() == [b"z"]


def test_polars_frame_conforms() -> None:
    df = pl.DataFrame({"name": ["a", None], "n": [1, 2]}, schema={"name": pl.String, "n": pl.Int32})
    out = conform(to_table(df), frame({"n": "int64", "name": "string"}))
    assert out.to_pylist() == [{"n": 1, "name": "a"}, {"n": 2, "name": None}]


def test_dictionary_encoded_columns_are_decoded() -> None:
    encoded = pa.array(["x", "y", None, "x"]).dictionary_encode()
    out = one(encoded, "string")
    assert out.type == pa.string() and out.to_pylist() == ["x", "y", None, "x"]
    assert one(pa.array([3, 1]).dictionary_encode(), "float64").to_pylist() == [3.0, 1.0]
    cat = to_table(pl.DataFrame({"x": ["a", "b", "a"]}, schema={"x": pl.Categorical}))
    assert pa.types.is_dictionary(cat.column("x").type)
    assert conform(cat, frame({"x": "string"})).column("x").to_pylist() == ["a", "b", "a"]
    refused(pa.array(["1"]).dictionary_encode(), "int64")


def test_all_null_column_takes_the_target_type() -> None:
    out = one(pa.nulls(3), "timestamp[ms]")
    assert out.type == pa.timestamp("ms") and out.null_count == 3


def test_timestamp_units() -> None:
    moment = dt.datetime(2026, 1, 31, 12, 30, 45)
    out = one(pa.array([moment], pa.timestamp("s")), "timestamp[ns]")
    assert out.type == pa.timestamp("ns") and out.cast(pa.timestamp("s")).to_pylist() == [moment]
    whole_us = pa.array([1_000, 2_000_000, None], pa.timestamp("ns"))
    assert one(whole_us, "timestamp[us]").cast(pa.int64()).to_pylist() == [1, 2_000, None]
    message = refused(pa.array([1_000, 1_001], pa.timestamp("ns")), "timestamp[us]")
    assert "timestamp[ns]" in message and "timestamp[us]" in message


def test_timestamp_overflow_on_widening_is_refused() -> None:
    far = pa.array([dt.datetime(3000, 1, 1)], pa.timestamp("s"))
    refused(far, "timestamp[ns]")


def test_aware_timestamps_change_zone_without_changing_the_instant() -> None:
    paris = pa.array([0, 1_500], pa.timestamp("ms", tz="Europe/Paris"))
    out = one(paris, "timestamp[us, tz=UTC]")
    assert out.type == pa.timestamp("us", tz="UTC")
    assert out.cast(pa.int64()).to_pylist() == [0, 1_500_000]


def test_dates_times_durations_and_decimals() -> None:
    day = 86_400_000
    assert one(pa.array([3 * day], pa.date64()), "date32").cast(pa.int32()).to_pylist() == [3]
    refused(pa.array([3 * day + 1], pa.date64()), "date32")
    assert one(pa.array([dt.date(2026, 1, 2)]), "date64").to_pylist() == [dt.date(2026, 1, 2)]
    assert one(pa.array([1], pa.time32("s")), "time64[us]").cast(pa.int64()).to_pylist() == [
        1_000_000
    ]
    refused(pa.array([1_500], pa.time64("us")), "time32[ms]")
    assert one(pa.array([2_000], pa.time64("us")), "time32[ms]").cast(pa.int32()).to_pylist() == [2]
    assert one(pa.array([5], pa.duration("s")), "duration[us]").cast(pa.int64()).to_pylist() == [
        5_000_000
    ]
    refused(pa.array([1], pa.duration("us")), "duration[s]")
    assert one(pa.array([123, -4]), "decimal(5, 2)").to_pylist() == [
        Decimal("123.00"),
        Decimal("-4.00"),
    ]
    refused(pa.array([1000]), "decimal(5, 2)")
    dec = pa.array([Decimal("1.23"), Decimal("-9.5")], pa.decimal128(5, 2))
    assert one(dec, "decimal(12, 4)").to_pylist() == [Decimal("1.2300"), Decimal("-9.5000")]
    assert one(pa.array([Decimal("1.20")], pa.decimal128(5, 2)), "decimal(4, 1)").to_pylist() == [
        Decimal("1.2")
    ]
    refused(pa.array([Decimal("1.23")], pa.decimal128(5, 2)), "decimal(4, 1)")
    refused(pa.array([Decimal("123.4")], pa.decimal128(10, 1)), "decimal(3, 1)")


def test_null_in_non_nullable_column_gives_name_and_count() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    with pytest.raises(SchemaError, match=r"'id'.*2 null"):
        conform(pa.table({"id": [1, None, None]}), schema)


def test_null_partition_value() -> None:
    schema = frame({"region": "string", "v": "int64"}, ("region",))
    with pytest.raises(SchemaError, match=r"'region'.*partition values cannot be null"):
        conform(pa.table({"region": ["eu", None], "v": [1, 2]}), schema, ["region"])
    # Even when a caller's schema left the partition column nullable.
    loose = pa.schema([("region", pa.string()), ("v", pa.int64())])
    with pytest.raises(SchemaError, match="partition values cannot be null"):
        conform(pa.table({"region": [None], "v": [1]}), loose, ["region"])


def test_partition_column_must_be_in_schema() -> None:
    with pytest.raises(SchemaError, match="'nope'"):
        conform(pa.table({"a": [1]}), frame({"a": "int64"}), ["nope"])


def test_empty_table() -> None:
    schema = frame({"a": "int64", "b": "string"})
    out = conform(pa.table({"a": pa.array([], pa.int32())}), schema)
    assert out.num_rows == 0 and out.schema == schema


def test_million_rows_many_chunks_is_fast_and_single_chunk() -> None:
    n = 1_000_000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int32()),
            "v": pa.array([i * 0.5 for i in range(1000)] * (n // 1000), pa.float32()),
            "tag": pa.array(["a", "bb", "ccc", "dddd"] * (n // 4), pa.large_string()),
        }
    )
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=10_000))
    assert chunked.column("id").num_chunks == 100
    schema = frame({"id": "int64", "v": "float64", "tag": "string", "extra": "date32"})
    start = time.perf_counter()
    out = conform(chunked, schema)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"conform took {elapsed:.2f}s"
    assert out.schema == schema and out.num_rows == n
    assert all(col.num_chunks == 1 for col in out.columns)
    assert out.column("id")[n - 1].as_py() == n - 1
    assert out.column("v")[1999].as_py() == 999 * 0.5
    assert out.column("extra").null_count == n


def test_naive_and_aware_timestamps_say_how_to_fix() -> None:
    naive = pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us"))
    assert "localize" in refused(naive, "timestamp[us, tz=UTC]")
    aware = pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us", tz="UTC"))
    assert "time zone" in refused(aware, "timestamp[us]")
