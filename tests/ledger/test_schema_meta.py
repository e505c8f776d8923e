"""The schema at a version: the Delta metaData decides, the declaration refines (pure logic)."""

from __future__ import annotations

import json

import pyarrow as pa

from apiary.delta.actions import MetaData, Protocol
from apiary.ledger.codec import ARROW_TYPE_KEY, TableMeta, evolve_table, new_table, schema_of

DECLARED = pa.schema([("id", pa.int32()), ("small", pa.uint8()), ("name", pa.large_string())])


def table_with(fields: list[dict]) -> TableMeta:
    base = new_table("f1", DECLARED, [], "t")
    schema = json.dumps({"type": "struct", "fields": fields})
    return TableMeta(base.protocol, base.metadata.model_copy(update={"schema_string": schema}))


def field(name: str, kind: str, **metadata: str) -> dict:
    return {"name": name, "type": kind, "nullable": True, "metadata": metadata}


def test_declared_types_refine_matching_delta_types() -> None:
    table = new_table("f1", DECLARED, [], "t")
    assert schema_of(table, DECLARED) == DECLARED  # uint8 and large_string come back exactly
    assert schema_of(None, DECLARED) == DECLARED  # an Apiary 0.1 ledger


def test_delta_types_win_over_a_stale_declaration() -> None:
    # Another writer widened id and added a column: the log is the truth.
    table = table_with(
        [field("id", "long"), field("small", "short"), field("name", "string"), field("x", "date")]
    )
    got = schema_of(table, DECLARED)
    assert got.types == [pa.int64(), pa.uint8(), pa.large_string(), pa.date32()]


def test_recorded_frame_type_used_only_when_it_matches_the_delta_type() -> None:
    table = table_with(
        [
            field("id", "integer"),
            field("a", "short", **{ARROW_TYPE_KEY: "uint8"}),
            field("b", "long", **{ARROW_TYPE_KEY: "uint8"}),  # inconsistent: Delta's type
            field("c", "string", **{ARROW_TYPE_KEY: "not a type"}),
        ]
    )
    got = schema_of(table, DECLARED)
    assert got.types == [pa.int32(), pa.uint8(), pa.int64(), pa.string()]


def test_evolve_keeps_other_fields_as_written_and_upgrades_the_protocol() -> None:
    table = table_with([field("id", "integer", comment="kept"), field("name", "string")])
    assert table.protocol == Protocol(minReaderVersion=1, minWriterVersion=2)
    wider = pa.schema([("id", pa.int64()), ("name", pa.string()), ("seen", pa.timestamp("us"))])
    evolved = evolve_table(table, wider, ["id", "seen"])
    fields = json.loads(evolved.metadata.schema_string)["fields"]
    assert fields[1] == field("name", "string")  # untouched
    assert fields[0]["type"] == "long"
    assert fields[0]["metadata"] == {"comment": "kept", ARROW_TYPE_KEY: "int64"}
    assert fields[2]["type"] == "timestamp_ntz" and fields[2]["nullable"] is True
    assert evolved.protocol.min_reader_version == 3
    assert evolved.protocol.reader_features == ["timestampNtz"]
    assert evolved.protocol.writer_features == ["appendOnly", "invariants", "timestampNtz"]
    assert isinstance(evolved.metadata, MetaData) and evolved.metadata.id == "f1"
    got = schema_of(evolved, DECLARED).types
    assert got == [pa.int64(), pa.large_string(), pa.timestamp("us")]  # name as declared
