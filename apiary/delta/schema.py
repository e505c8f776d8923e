"""Frame schemas as Delta schema JSON, and back; the protocol a schema needs.

Delta has fewer types than Arrow. A frame type maps to a Delta type when every value survives
the trip (``large_string`` → ``string``, ``uint8`` → ``short``, ``timestamp[ms]`` →
``timestamp_ntz``); anything else is refused with the Delta type to use instead, before any
catalog change (see :func:`check_frame_schema`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.types as pat

from apiary.errors import SchemaError

TIMESTAMP_NTZ = "timestampNtz"

_PLAIN: dict[pa.DataType, str] = {
    pa.int8(): "byte",
    pa.int16(): "short",
    pa.int32(): "integer",
    pa.int64(): "long",
    pa.uint8(): "short",  # widened: every uint8 fits a short
    pa.uint16(): "integer",
    pa.uint32(): "long",
    pa.float32(): "float",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.string(): "string",
    pa.large_string(): "string",
    pa.binary(): "binary",
    pa.date32(): "date",
}
_TO_ARROW: dict[str, pa.DataType] = {
    "byte": pa.int8(),
    "short": pa.int16(),
    "integer": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}


def delta_type(t: pa.DataType, column: str) -> str:
    """The Delta type of a frame column, or a SchemaError naming the Delta type to use."""
    if t in _PLAIN:
        return _PLAIN[t]
    if pat.is_decimal128(t):
        return f"decimal({t.precision},{t.scale})"
    if pat.is_timestamp(t):
        if t.unit == "ns":
            return _refuse(
                column,
                t,
                '"timestamp[us]" (or "timestamp[us, tz=UTC]"): Delta timestamps hold microseconds',
            )
        return "timestamp_ntz" if t.tz is None else "timestamp"
    if pat.is_uint64(t):
        return _refuse(column, t, '"int64" (Delta long) or "decimal128(20, 0)"')
    if pat.is_date64(t):
        return _refuse(column, t, '"date32" (Delta date)')
    if pat.is_time(t):
        return _refuse(
            column, t, '"int64" (microseconds since midnight) or "string": Delta has no time type'
        )
    if pat.is_duration(t):
        return _refuse(column, t, '"int64" holding a count of the unit (Delta has no duration)')
    return _refuse(column, t, '"string"')


def _refuse(column: str, t: pa.DataType, use: str) -> str:
    raise SchemaError(
        f"column {column!r} has type {t}, which Delta Lake (the frame's table format) cannot "
        f"hold exactly; use {use} instead"
    )


def check_frame_schema(schema: pa.Schema) -> None:
    """Raise a SchemaError naming the first column Delta cannot hold (before create_frame)."""
    for f in schema:
        delta_type(f.type, f.name)


def to_delta_schema(schema: pa.Schema) -> dict[str, Any]:
    """Delta's schema JSON (a Spark struct) for a frame schema."""
    return {
        "type": "struct",
        "fields": [
            {
                "name": f.name,
                "type": delta_type(f.type, f.name),
                "nullable": f.nullable,
                "metadata": {},
            }
            for f in schema
        ],
    }


def needs_timestamp_ntz(schema: pa.Schema) -> bool:
    return any(pat.is_timestamp(f.type) and f.type.tz is None for f in schema)


def from_delta_schema(document: object) -> pa.Schema:
    """The Arrow schema of a Delta table (flat columns of primitive types only)."""
    if not isinstance(document, dict) or document.get("type") != "struct":
        raise SchemaError("the table's schema is not a Delta struct schema")
    fields = []
    for item in document.get("fields") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SchemaError(f"the table's schema has a malformed field: {item!r}")
        name, kind = item["name"], item.get("type")
        fields.append(pa.field(name, _arrow_type(kind, name), bool(item.get("nullable", True))))
    return pa.schema(fields)


def _arrow_type(kind: object, column: str) -> pa.DataType:
    if isinstance(kind, str):
        if kind in _TO_ARROW:
            return _TO_ARROW[kind]
        if kind.startswith("decimal(") and kind.endswith(")"):
            try:
                precision, scale = (int(p) for p in kind[8:-1].split(","))
                return pa.decimal128(precision, scale)
            except ValueError:
                pass
    raise SchemaError(
        f"column {column!r} has Delta type {kind!r}, which Apiary does not read: frames hold "
        "flat columns of primitive types (no struct, array, map or variant)"
    )
