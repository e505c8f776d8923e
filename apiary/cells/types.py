"""Frame column types: the names people type, their canonical spelling, and what a frame can store.

A frame stores flat columns only. Each storable type has one canonical name (``type_name``) that
``parse_type`` reads back to the identical ``pa.DataType``; the ledger stores schemas that way.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.types as pat

from apiary.cells.arrow_json import is_original_form, parse_original
from apiary.errors import SchemaError
from apiary.names import validate_name

if TYPE_CHECKING:  # catalog sits below cells; imported for the annotation only
    from apiary.catalog.models import FrameDef

SUPPORTED_TYPES = (
    "int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32 (float), "
    "float64 (double), bool (boolean), string (utf8, str), large_string, binary, "
    "date32 (date), date64, timestamp (= timestamp[us]), timestamp[s|ms|us|ns], "
    "timestamp[us, tz=UTC], timestamptz (= timestamp[us, tz=UTC]), time32[s|ms], "
    "time64[us|ns] (time), duration[s|ms|us|ns] (duration), decimal128(p, s) (decimal(p, s))"
)

_SIMPLE: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "large_string": pa.large_string(),
    "binary": pa.binary(),
    "date32": pa.date32(),
    "date64": pa.date64(),
}
# Canonical names first (above); aliases only parse, they are never written back.
_ALIASES: dict[str, pa.DataType] = {
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "utf8": pa.string(),
    "str": pa.string(),
    "large_utf8": pa.large_string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "duration": pa.duration("us"),
}
_CANONICAL = {t: name for name, t in _SIMPLE.items()}

_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:,tz=(.+))?\]")
_TIME32 = re.compile(r"time32\[(s|ms)\]")
_TIME64 = re.compile(r"time64\[(us|ns)\]")
_DURATION = re.compile(r"duration\[(s|ms|us|ns)\]")
_DECIMAL = re.compile(r"decimal(?:128)?\((\d+)(?:,(-?\d+))?\)")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_MAX_DECIMAL128_PRECISION = 38


def parse_type(text: str) -> pa.DataType:
    """The Arrow type for a name such as ``"int64"``, ``"utf8"`` or ``"timestamp[ms, tz=UTC]"``.

    Case-insensitive and whitespace tolerant, except that a time zone keeps its spelling
    (``Europe/Paris``); any spelling of ``UTC`` becomes ``"UTC"``.
    """
    if not isinstance(text, str):
        raise SchemaError(f"a column type must be a string, got {type(text).__name__}")
    return _parse_type(text)


# A few names, read again with every manifest and stored schema; one that fails is not kept
# (an exception is never cached).
@functools.lru_cache(maxsize=1024)
def _parse_type(text: str) -> pa.DataType:
    # Spaces may surround punctuation ("decimal(10, 2)") but not split a word ("int 64").
    raw = re.sub(r"\s*([\[\](),=])\s*", r"\1", text.strip())
    key = raw.lower()
    if key in _SIMPLE:
        return _SIMPLE[key]
    if key in _ALIASES:
        return _ALIASES[key]
    if m := _TIMESTAMP.fullmatch(key):
        if m.group(2) is None:
            return pa.timestamp(m.group(1))
        tz = raw[m.start(2) : m.end(2)]  # the original case: zone names are case-sensitive
        tz = "UTC" if tz.upper() == "UTC" else tz
        time_zone(tz)
        return pa.timestamp(m.group(1), tz=tz)
    if m := _TIME32.fullmatch(key):
        return pa.time32(m.group(1))
    if m := _TIME64.fullmatch(key):
        return pa.time64(m.group(1))
    if m := _DURATION.fullmatch(key):
        return pa.duration(m.group(1))
    if m := _DECIMAL.fullmatch(key):
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if not (1 <= precision <= _MAX_DECIMAL128_PRECISION and 0 <= scale <= precision):
            raise SchemaError(
                f"column type {text!r}: decimal128 needs 1 ≤ precision ≤ 38 and "
                "0 ≤ scale ≤ precision"
            )
        return pa.decimal128(precision, scale)
    raise SchemaError(f"unknown column type {text!r}; supported types: {SUPPORTED_TYPES}")


def type_name(t: pa.DataType) -> str:
    """The canonical name of a storable type; ``parse_type(type_name(t)) == t``."""
    reason = _unstorable_reason(t)
    if reason is not None:
        raise SchemaError(f"type {t} cannot be stored in a frame: {reason}")
    if t in _CANONICAL:
        return _CANONICAL[t]
    if pat.is_timestamp(t):
        return f"timestamp[{t.unit}]" if t.tz is None else f"timestamp[{t.unit}, tz={t.tz}]"
    if pat.is_time32(t):
        return f"time32[{t.unit}]"
    if pat.is_time64(t):
        return f"time64[{t.unit}]"
    if pat.is_duration(t):
        return f"duration[{t.unit}]"
    return f"decimal128({t.precision}, {t.scale})"  # the only storable type left


def column_notes(f: pa.Field, partition_by: Sequence[str]) -> str:
    """What DESCRIBE says of a column: its type, then "not null" and "partition key" if so."""
    notes = [type_name(f.type)] + ([] if f.nullable else ["not null"])
    notes += ["partition key"] if f.name in partition_by else []
    return ", ".join(notes)


def check_storable(t: pa.DataType, column: str) -> None:
    """Raise a SchemaError naming ``column`` unless a frame can store type ``t``."""
    reason = _unstorable_reason(t)
    if reason is not None:
        raise SchemaError(f"column {column!r} has type {t}, which a frame cannot store: {reason}")


def time_zone(name: str) -> tzinfo:
    """The tzinfo for an Arrow time zone string: ``UTC``, ``+01:00`` or an IANA name."""
    if name.upper() == "UTC":
        return UTC  # needs no tz database
    if m := _OFFSET.fullmatch(name):
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise SchemaError(
            f"unknown time zone {name!r}; use 'UTC', an offset such as '+01:00' "
            "or an IANA name such as 'Europe/Paris'"
        ) from exc


def _unstorable_reason(t: pa.DataType) -> str | None:
    if t in _CANONICAL or pat.is_time32(t) or pat.is_time64(t) or pat.is_duration(t):
        return None
    if pat.is_timestamp(t):
        if t.tz is not None:
            try:
                time_zone(t.tz)
            except SchemaError as exc:
                return str(exc)
        return None
    if pat.is_decimal128(t):
        if 0 <= t.scale <= t.precision:
            return None
        return "a negative scale is not supported; use decimal128(p, s) with 0 ≤ s ≤ p"
    if pat.is_string_view(t):
        return 'use "string"'
    if pat.is_large_binary(t) or pat.is_binary_view(t) or pat.is_fixed_size_binary(t):
        return 'use "binary"'
    if pat.is_float16(t):
        return 'use "float32"'
    if pat.is_dictionary(t):
        inner = t.value_type
        if pat.is_string_view(inner) or pat.is_large_string(inner):
            inner = pa.string()
        shown = type_name(inner) if _unstorable_reason(inner) is None else "string"
        return f'dictionary encoding is not kept; use its value type ("{shown}")'
    if pat.is_null(t):
        return 'every value is null, so there is no type to keep; give it one such as "string"'
    if pat.is_decimal(t):
        return "use decimal128(p, s) (precision at most 38)"
    if pat.is_nested(t):
        return (
            "nested values (list, struct, map, union) are not supported; store them as JSON "
            'text in a "string" column or split them into separate columns'
        )
    if pat.is_interval(t):
        return 'use "duration[us]"'
    return f"supported types: {SUPPORTED_TYPES}"


def schema_from_spec(
    spec: Mapping[str, Any] | pa.Schema | str,
    partition_by: Sequence[str] = (),
) -> pa.Schema:
    """The frame schema for a ``{column: type}`` mapping, a ``pa.Schema`` or the original SDK's
    JSON form ``{"fields": [{"name", "type", "nullable"}]}`` (a mapping or JSON text).

    Columns from a mapping are nullable; the other forms keep the nullability they give. Arrow
    types that only change the memory layout (string_view, large_string, binary_view,
    large_binary, dictionary) become their plain type: Polars, DuckDB and tpchgen write them, and
    Parquet stores them alike. Partition columns must exist, must not be float or binary, and
    become non-nullable. Field and schema metadata are dropped: the frame schema is names, types
    and nullability only. Only the JSON form may be empty (``{"fields": []}``).
    """
    if is_original_form(spec):
        columns, _ = parse_original(spec)  # type: ignore[arg-type]
        return _frame_schema(columns, partition_by, allow_empty=True)
    if isinstance(spec, pa.Schema):
        columns = [(f.name, plain_type(f.type), f.nullable) for f in spec]
    elif isinstance(spec, Mapping):
        columns = [(name, plain_type(t), True) for name, t in spec.items()]
    else:
        raise SchemaError(
            "a frame schema is a dict {column: type}, a pyarrow.Schema or "
            f'{{"fields": [{{"name", "type", "nullable"}}]}}, got {type(spec).__name__}'
        )
    return _frame_schema(columns, partition_by)


def plain_type(t: object) -> object:
    """``t`` with layout-only variants replaced by the plain type (anything else unchanged)."""
    if not isinstance(t, pa.DataType):
        return t
    if pat.is_dictionary(t):
        return plain_type(t.value_type)
    if pat.is_string_view(t) or pat.is_large_string(t):
        return pa.string()
    if pat.is_binary_view(t) or pat.is_large_binary(t):
        return pa.binary()
    return t


def original_schema_form(spec: object) -> dict[str, Any] | None:
    """What a frame keeps to show its schema as it was created: a clean copy of the original
    SDK's JSON form, or None for the other forms (shown as a ``pa.Schema``, as always)."""
    if not is_original_form(spec):
        return None
    return parse_original(spec)[1]  # type: ignore[arg-type]


def schema_as_created(definition: FrameDef) -> pa.Schema | dict[str, Any]:
    """A frame's schema in the form it was created with (for ``get_frame``); ``create_frame``
    keeps that form with ``FrameDef(..., schema_spec=original_schema_form(spec))``.

    The JSON form comes back as given when the frame was created with it; otherwise, and
    whenever the kept form disagrees with the frame's columns (the registry is read from the
    bucket, so it could be edited there), the ``pa.Schema``: the columns are the truth.
    """
    schema = schema_from_json(definition.columns)
    spec = definition.schema_spec
    if spec is not None:
        try:
            if schema_from_spec(spec, definition.partition_by) == schema:
                return copy.deepcopy(spec)
        except (SchemaError, TypeError, ValueError):
            pass
    return schema


def _frame_schema(
    columns: Sequence[tuple[str, object, bool]],
    partition_by: Sequence[str] | str = (),
    *,
    allow_empty: bool = False,
) -> pa.Schema:
    if not columns and not allow_empty:
        raise SchemaError(
            'a frame needs at least one column (for a frame with no columns, give {"fields": []})'
        )
    fields: list[tuple[str, pa.DataType, bool]] = []
    seen: dict[str, str] = {}
    for name, given, nullable in columns:
        validate_name(name, "column")
        # Case-insensitive: SQL folds unquoted names and some file systems fold paths.
        if name.lower() in seen:
            other = seen[name.lower()]
            what = "appears twice" if other == name else f"and {other!r} differ only in case"
            raise SchemaError(f"column {name!r} {what}; column names must be unique")
        seen[name.lower()] = name
        t = _column_type(given, name)
        check_storable(t, name)
        fields.append((name, t, nullable))
    parts = partition_columns(partition_by)
    types = {name: t for name, t, _ in fields}
    for col in parts:
        if col not in types:
            raise SchemaError(
                f"partition column {col!r} is not a column of the frame; "
                f"columns: {', '.join(types)}"
            )
        if pat.is_floating(types[col]):
            raise SchemaError(
                f"partition column {col!r} is {type_name(types[col])}: floats cannot partition "
                "(equality on floats is unreliable and NaN/-0.0 have no stable folder name); "
                "partition by an integer or string derived from it"
            )
        if pat.is_binary(types[col]):
            raise SchemaError(
                f"partition column {col!r} is binary: raw bytes make no readable folder name; "
                "partition by a string column instead"
            )
    return pa.schema(
        [pa.field(name, t, nullable=nullable and name not in parts) for name, t, nullable in fields]
    )


def partition_columns(partition_by: Sequence[str] | str) -> tuple[str, ...]:
    """``partition_by`` as a tuple of distinct names; a lone string means one column."""
    cols = (partition_by,) if isinstance(partition_by, str) else tuple(partition_by)
    for col in cols:
        if not isinstance(col, str):
            raise SchemaError(f"partition columns are names, got {col!r}")
    if len(set(cols)) != len(cols):
        raise SchemaError(f"partition columns repeat a name: {list(cols)}")
    return cols


def _column_type(given: object, column: str) -> pa.DataType:
    if isinstance(given, pa.DataType):
        return given
    if isinstance(given, str):
        try:
            return parse_type(given)
        except SchemaError as exc:
            raise SchemaError(f"column {column!r}: {exc}") from None
    raise SchemaError(
        f"column {column!r}: a type is a string such as 'int64' or a pyarrow.DataType, "
        f"got {type(given).__name__}"
    )


def schema_to_json(schema: pa.Schema) -> list[dict]:
    """``[{"name", "type", "nullable"}, ...]`` with canonical type names, for the ledger."""
    return [{"name": f.name, "type": type_name(f.type), "nullable": f.nullable} for f in schema]


def schema_from_json(items: list[dict]) -> pa.Schema:
    """The exact inverse of :func:`schema_to_json`; malformed input is a SchemaError."""
    if not isinstance(items, list):
        raise SchemaError(f"a stored schema is a list of columns, got {type(items).__name__}")
    fields = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"name", "type", "nullable"}:
            raise SchemaError(f"a stored column needs exactly name, type, nullable: {item!r}")
        if not isinstance(item["nullable"], bool):
            raise SchemaError(f"stored column {item['name']!r}: nullable must be true or false")
        fields.append((validate_name(item["name"], "column"), item["type"], item["nullable"]))
    # Stored type names are exact (an old frame's "large_string" stays large_string).
    return _frame_schema(fields, allow_empty=True)
