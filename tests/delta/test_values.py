"""Pure translation between Apiary's canonical values and Delta's serialisation."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from apiary.delta.actions import parse_version
from apiary.delta.schema import from_delta_schema, to_delta_schema
from apiary.delta.values import (
    partition_from_delta,
    partition_to_delta,
    stats_from_delta,
    stats_to_delta,
)
from apiary.errors import SerializationError
from apiary.ledger.models import ColumnStats

TZ = pa.timestamp("us", tz="UTC")
NTZ = pa.timestamp("us")


@pytest.mark.parametrize(
    ("text", "kind", "delta"),
    [
        ("2026-01-31T12:00:00.250000+00:00", TZ, "2026-01-31T12:00:00.250000Z"),
        ("2026-01-31T12:00:00.250000", NTZ, "2026-01-31 12:00:00.250000"),
        ("2026-01-31", pa.date32(), "2026-01-31"),
        ("true", pa.bool_(), "true"),
        ("1.50", pa.decimal128(5, 2), "1.50"),
        ("a b/%", pa.string(), "a b/%"),
    ],
)
def test_partition_values_round_trip(text, kind, delta) -> None:
    assert partition_to_delta(text, kind) == delta
    assert partition_from_delta(delta, kind, "c") == text


def test_other_writers_timestamp_partition_forms_are_read() -> None:
    assert partition_from_delta("2026-01-31 12:00:00", TZ, "c") == "2026-01-31T12:00:00+00:00"


def test_stats_keep_decimals_exact_and_widen_foreign_timestamp_maxima() -> None:
    schema = pa.schema([("d", pa.decimal128(20, 3)), ("t", TZ), ("s", pa.string())])
    stats = {
        "d": ColumnStats(min="-12345678901234567.125", max="0.500", null_count=1),
        "t": ColumnStats(
            min="2026-01-01T00:00:00.000001+00:00", max="2026-01-02T00:00:00+00:00", null_count=0
        ),
        "s": ColumnStats(min="a", max=None, null_count=2),
    }
    text = stats_to_delta(5, stats, schema)
    assert '"d":-12345678901234567.125' in text  # a JSON number, not a float's rounding
    rows, back = stats_from_delta(text, schema, exact_timestamps=True)
    assert rows == 5
    assert back["d"] == {"min": "-12345678901234567.125", "max": "0.500", "null_count": 1}
    assert back["t"]["min"] == "2026-01-01T00:00:00.000001+00:00"
    assert back["s"] == {"min": "a", "max": None, "null_count": 2}
    _, loose = stats_from_delta(text, schema, exact_timestamps=False)
    assert loose["t"]["max"] == "2026-01-02T00:00:00.000999+00:00"  # other writers truncate to ms


def test_a_column_without_a_null_count_has_no_stats() -> None:
    schema = pa.schema([("n", pa.int64())])
    text = json.dumps({"numRecords": 3, "minValues": {"n": 1}, "maxValues": {"n": 9}})
    assert stats_from_delta(text, schema, exact_timestamps=False) == (3, {})


def test_schema_round_trips_through_delta_json() -> None:
    schema = pa.schema(
        [("a", pa.int32()), pa.field("b", pa.string(), nullable=False), ("c", TZ), ("d", NTZ)]
    )
    assert from_delta_schema(to_delta_schema(schema)) == schema


def test_damaged_log_lines_are_serialization_errors() -> None:
    with pytest.raises(SerializationError, match="line 2"):
        parse_version(b'{"commitInfo":{}}\n{"add":{"path":1}}', "v1")
    with pytest.raises(SerializationError, match="no Delta action"):
        parse_version(b'{"version":3}', "v1")
