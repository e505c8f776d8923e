"""Frame column types: parsing, canonical names, storability and schema specs."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from apiary.cells.types import (
    check_storable,
    parse_type,
    schema_from_json,
    schema_from_spec,
    schema_to_json,
    type_name,
)
from apiary.errors import InvalidNameError, SchemaError

STORABLE = [
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.date32(),
    pa.date64(),
    *[pa.timestamp(u) for u in ("s", "ms", "us", "ns")],
    *[pa.timestamp(u, tz="UTC") for u in ("s", "ms", "us", "ns")],
    pa.timestamp("us", tz="Europe/Paris"),
    pa.timestamp("ms", tz="+05:30"),
    pa.timestamp("ns", tz="-08:00"),
    pa.time32("s"),
    pa.time32("ms"),
    pa.time64("us"),
    pa.time64("ns"),
    *[pa.duration(u) for u in ("s", "ms", "us", "ns")],
    pa.decimal128(1, 0),
    pa.decimal128(10, 2),
    pa.decimal128(38, 38),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("int8", pa.int8()),
        ("int16", pa.int16()),
        ("int32", pa.int32()),
        ("int64", pa.int64()),
        ("uint8", pa.uint8()),
        ("uint64", pa.uint64()),
        ("float32", pa.float32()),
        ("float", pa.float32()),
        ("float64", pa.float64()),
        ("double", pa.float64()),
        ("bool", pa.bool_()),
        ("boolean", pa.bool_()),
        ("utf8", pa.string()),
        ("string", pa.string()),
        ("str", pa.string()),
        ("large_string", pa.large_string()),
        ("large_utf8", pa.large_string()),
        ("binary", pa.binary()),
        ("date32", pa.date32()),
        ("date", pa.date32()),
        ("date64", pa.date64()),
        ("timestamp", pa.timestamp("us")),
        ("timestamp[ms]", pa.timestamp("ms")),
        ("timestamp[us, tz=UTC]", pa.timestamp("us", tz="UTC")),
        ("timestamptz", pa.timestamp("us", tz="UTC")),
        ("time64[us]", pa.time64("us")),
        ("time32[ms]", pa.time32("ms")),
        ("decimal128(10, 2)", pa.decimal128(10, 2)),
        ("decimal(12,3)", pa.decimal128(12, 3)),
        ("decimal(7)", pa.decimal128(7, 0)),
        ("duration[us]", pa.duration("us")),
    ],
)
def test_parse_type_aliases(text: str, expected: pa.DataType) -> None:
    assert parse_type(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  INT64 ", pa.int64()),
        ("Boolean", pa.bool_()),
        ("UTF8", pa.string()),
        ("Timestamp[ MS ]", pa.timestamp("ms")),
        ("TIMESTAMP[us , TZ = utc]", pa.timestamp("us", tz="UTC")),
        ("timestamp[ns,tz=Europe/Paris]", pa.timestamp("ns", tz="Europe/Paris")),
        ("DECIMAL( 10 , 2 )", pa.decimal128(10, 2)),
        ("Decimal128(5,5)", pa.decimal128(5, 5)),
        ("TimestampTZ", pa.timestamp("us", tz="UTC")),
    ],
)
def test_parse_type_is_case_insensitive_and_whitespace_tolerant(
    text: str, expected: pa.DataType
) -> None:
    assert parse_type(text) == expected


def test_time_zone_keeps_its_case() -> None:
    assert parse_type("TIMESTAMP[US, TZ=America/New_York]").tz == "America/New_York"


@pytest.mark.parametrize("t", STORABLE, ids=str)
def test_type_name_round_trips_exactly(t: pa.DataType) -> None:
    name = type_name(t)
    assert parse_type(name) == t
    assert type_name(parse_type(name)) == name


def test_canonical_names() -> None:
    assert type_name(pa.string()) == "string"
    assert type_name(pa.bool_()) == "bool"
    assert type_name(pa.timestamp("us", tz="UTC")) == "timestamp[us, tz=UTC]"
    assert type_name(pa.decimal128(10, 2)) == "decimal128(10, 2)"


@pytest.mark.parametrize(
    "text",
    ["int128", "varchar", "timestamp[m]", "time32[us]", "time64[ms]", "list<int64>", "", "int 64"],
)
def test_unknown_type_lists_what_is_supported(text: str) -> None:
    with pytest.raises(SchemaError, match="supported types") as info:
        parse_type(text)
    assert "int64" in str(info.value) and "timestamp" in str(info.value)


@pytest.mark.parametrize("text", ["decimal(0, 0)", "decimal(39, 2)", "decimal(5, 6)"])
def test_bad_decimal_precision(text: str) -> None:
    with pytest.raises(SchemaError, match="precision"):
        parse_type(text)


def test_unknown_time_zone() -> None:
    with pytest.raises(SchemaError, match="time zone"):
        parse_type("timestamp[us, tz=Mars/Olympus_Mons]")


def test_non_string_type_text() -> None:
    with pytest.raises(SchemaError):
        parse_type(64)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("t", "suggestion"),
    [
        (pa.string_view(), '"string"'),
        (pa.large_binary(), '"binary"'),
        (pa.binary_view(), '"binary"'),
        (pa.float16(), '"float32"'),
        (pa.dictionary(pa.int32(), pa.string()), '"string"'),
        (pa.dictionary(pa.int8(), pa.int64()), '"int64"'),
        (pa.list_(pa.int64()), "nested"),
        (pa.large_list(pa.string()), "nested"),
        (pa.struct([("a", pa.int64())]), "nested"),
        (pa.map_(pa.string(), pa.int64()), "nested"),
        (pa.null(), '"string"'),
        (pa.decimal256(40, 2), "decimal128"),
        (pa.decimal128(10, -2), "negative scale"),
        (pa.month_day_nano_interval(), "duration"),
    ],
    ids=str,
)
def test_check_storable_names_column_and_suggests(t: pa.DataType, suggestion: str) -> None:
    with pytest.raises(SchemaError) as info:
        check_storable(t, "payload")
    message = str(info.value)
    assert "'payload'" in message
    assert suggestion in message
    with pytest.raises(SchemaError):
        type_name(t)


@pytest.mark.parametrize("t", STORABLE, ids=str)
def test_storable_types_pass(t: pa.DataType) -> None:
    check_storable(t, "x")


def test_schema_from_dict_is_nullable_and_ordered() -> None:
    schema = schema_from_spec({"b": "int64", "a": "utf8", "c": pa.float32()})
    assert schema.names == ["b", "a", "c"]
    assert [f.type for f in schema] == [pa.int64(), pa.string(), pa.float32()]
    assert all(f.nullable for f in schema)


def test_schema_from_pa_schema_keeps_nullability_and_drops_metadata() -> None:
    given = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False, metadata={"k": "v"}),
            pa.field("name", pa.string()),
        ],
        metadata={"pandas": "{}"},
    )
    schema = schema_from_spec(given)
    assert [f.nullable for f in schema] == [False, True]
    assert schema.metadata is None
    assert schema.field("id").metadata is None


def test_partition_columns_become_non_nullable() -> None:
    schema = schema_from_spec({"day": "date32", "region": "string", "v": "float64"}, ["region"])
    assert not schema.field("region").nullable
    assert schema.field("day").nullable
    assert schema_from_spec({"region": "string"}, "region").field("region").nullable is False


def test_partition_column_must_exist() -> None:
    with pytest.raises(SchemaError, match="'regoin'") as info:
        schema_from_spec({"region": "string"}, ["regoin"])
    assert "region" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "why"), [("float64", "float"), ("float32", "float"), ("binary", "bytes")]
)
def test_partition_column_cannot_be_float_or_binary(kind: str, why: str) -> None:
    with pytest.raises(SchemaError, match=why) as info:
        schema_from_spec({"p": kind, "v": "int64"}, ["p"])
    assert "'p'" in str(info.value)


def test_repeated_partition_column() -> None:
    with pytest.raises(SchemaError, match="repeat"):
        schema_from_spec({"p": "int64"}, ["p", "p"])


@pytest.mark.parametrize("name", ["1abc", "has space", "_hidden", "a-b", "x" * 65, ""])
def test_column_names_are_validated(name: str) -> None:
    with pytest.raises(InvalidNameError):
        schema_from_spec({name: "int64"})


def test_duplicate_columns_in_pa_schema() -> None:
    with pytest.raises(SchemaError, match="'a' appears twice"):
        schema_from_spec(pa.schema([("a", pa.int64()), ("a", pa.string())]))


def test_columns_differing_only_in_case() -> None:
    with pytest.raises(SchemaError, match="differ only in case"):
        schema_from_spec({"Price": "int64", "price": "int64"})


def test_unknown_type_in_spec_names_column() -> None:
    with pytest.raises(SchemaError, match=r"'amount'.*supported types"):
        schema_from_spec({"amount": "money"})


def test_unstorable_type_in_spec_names_column() -> None:
    with pytest.raises(SchemaError, match="'tags'"):
        schema_from_spec({"tags": pa.list_(pa.string())})


def test_bad_spec_shapes() -> None:
    with pytest.raises(SchemaError, match="at least one column"):
        schema_from_spec({})
    with pytest.raises(SchemaError, match="dict"):
        schema_from_spec([("a", "int64")])  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="'a'"):
        schema_from_spec({"a": 64})  # type: ignore[dict-item]


def test_schema_json_round_trip() -> None:
    schema = schema_from_spec(
        pa.schema([pa.field(f"c{i}", t, nullable=i % 2 == 0) for i, t in enumerate(STORABLE)])
    )
    stored = json.loads(json.dumps(schema_to_json(schema)))
    assert stored[0] == {"name": "c0", "type": "int8", "nullable": True}
    assert stored[1]["nullable"] is False
    back = schema_from_json(stored)
    assert back == schema
    assert [f.nullable for f in back] == [f.nullable for f in schema]


@pytest.mark.parametrize(
    "stored",
    [
        "int64",
        [{"name": "a", "type": "int64"}],
        [{"name": "a", "type": "int64", "nullable": "yes"}],
        [{"name": "a", "type": "nope", "nullable": True}],
        [
            {"name": "a", "type": "int64", "nullable": True},
            {"name": "a", "type": "int8", "nullable": True},
        ],
    ],
)
def test_schema_from_json_rejects_malformed(stored: object) -> None:
    with pytest.raises(SchemaError):
        schema_from_json(stored)  # type: ignore[arg-type]
