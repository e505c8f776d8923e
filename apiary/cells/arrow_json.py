"""The original Apiary SDK's schema form, in Arrow's JSON type notation (pure logic)::

    {"fields": [{"name": "temp", "type": {"name": "floatingpoint", "precision": "SINGLE"},
                 "nullable": true}, ...]}

Types: ``int`` (bitWidth 8/16/32/64, isSigned), ``floatingpoint`` (HALF/SINGLE/DOUBLE), ``utf8``,
``bool``, ``date`` (DAY/MILLISECOND), ``timestamp`` (unit, timezone), ``decimal`` (precision,
scale), ``binary``; and Arrow's other spellings of storable types (``largeutf8``, ``utf8view``,
``largebinary``, ``binaryview``, ``time``, ``duration``). Frames have no float16, so HALF is
stored as float32, which holds every float16 exactly. :mod:`apiary.cells.types` checks what this
returns like any other column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from apiary.errors import SchemaError

_TOP_KEYS = {"fields", "metadata"}
_FIELD_KEYS = {"name", "type", "nullable", "children", "metadata", "dictionary"}
_UNITS = {"SECOND": "s", "MILLISECOND": "ms", "MICROSECOND": "us", "NANOSECOND": "ns"}
_INTS = {
    (8, True): pa.int8(),
    (16, True): pa.int16(),
    (32, True): pa.int32(),
    (64, True): pa.int64(),
    (8, False): pa.uint8(),
    (16, False): pa.uint16(),
    (32, False): pa.uint32(),
    (64, False): pa.uint64(),
}
_FLOATS = {"HALF": pa.float32(), "SINGLE": pa.float32(), "DOUBLE": pa.float64()}
_PLAIN = {
    "utf8": pa.string(),
    "largeutf8": pa.string(),
    "utf8view": pa.string(),
    "binary": pa.binary(),
    "largebinary": pa.binary(),
    "binaryview": pa.binary(),
    "bool": pa.bool_(),
}
_NESTED = {"list", "largelist", "listview", "fixedsizelist", "struct", "map", "union"}
# The keys each type may carry besides "name"; anything else is a typo worth reporting.
_TYPE_KEYS = {
    "int": {"bitWidth", "isSigned"},
    "floatingpoint": {"precision"},
    "date": {"unit"},
    "timestamp": {"unit", "timezone"},
    "time": {"unit", "bitWidth"},
    "duration": {"unit"},
    "decimal": {"precision", "scale", "bitWidth"},
}
_MAX_DECIMAL128_PRECISION = 38


def is_original_form(spec: object) -> bool:
    """Whether ``spec`` is this form: JSON text, or a mapping with "fields" that is no type.

    In a ``{column: type}`` dict each value is a type name or a pyarrow type, so a column named
    "fields" stays a column.
    """
    if isinstance(spec, str):
        return True
    if not isinstance(spec, Mapping) or "fields" not in spec:
        return False
    return not isinstance(spec["fields"], str | pa.DataType)


def parse_original(
    spec: str | Mapping[str, Any],
) -> tuple[list[tuple[str, pa.DataType, bool]], dict]:
    """The ``(name, type, nullable)`` columns of ``spec`` and a clean JSON copy of it.

    The copy keeps each field's name, type (its known keys only) and nullability as given, so a
    frame can show its schema in the form it was created with.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise SchemaError(
                f'a schema given as text must be JSON such as {{"fields": [...]}}: {exc}'
            ) from None
    if not isinstance(spec, Mapping) or "fields" not in spec:
        raise SchemaError('a schema given as JSON is {"fields": [{"name", "type", "nullable"}]}')
    unknown = sorted(set(spec) - _TOP_KEYS, key=str)
    if unknown:
        raise SchemaError(f'unknown key {unknown[0]!r} in the schema; it takes "fields" only')
    fields = spec["fields"]
    if not isinstance(fields, list | tuple):
        raise SchemaError(f'"fields" must be a list of columns, got {type(fields).__name__}')
    columns: list[tuple[str, pa.DataType, bool]] = []
    clean: list[dict[str, Any]] = []
    for i, field in enumerate(fields):
        name, t, nullable, shown = _field(field, i)
        columns.append((name, t, nullable))
        clean.append({"name": name, "type": shown, "nullable": nullable})
    return columns, {"fields": clean}


def _field(field: object, i: int) -> tuple[str, pa.DataType, bool, dict[str, Any]]:
    if not isinstance(field, Mapping) or not isinstance(field.get("name"), str):
        raise SchemaError(f'field {i} of the schema needs a "name" (text) and a "type"')
    name = field["name"]
    unknown = sorted(set(field) - _FIELD_KEYS, key=str)
    if unknown:
        raise SchemaError(
            f"column {name!r}: unknown key {unknown[0]!r}; a field has name, type, nullable"
        )
    nullable = field.get("nullable", True)
    if not isinstance(nullable, bool):
        raise SchemaError(f"column {name!r}: nullable must be true or false, got {nullable!r}")
    if field.get("children"):
        raise SchemaError(f"column {name!r}: nested values (children) are not supported")
    given = field.get("type")
    if not isinstance(given, Mapping) or not isinstance(given.get("name"), str):
        raise SchemaError(
            f'column {name!r}: "type" must be an object such as {{"name": "utf8"}}, got {given!r}'
        )
    try:
        t, shown = _type(given)
    except SchemaError as exc:
        raise SchemaError(f"column {name!r}: {exc}") from None
    return name, t, nullable, shown


def _type(given: Mapping[str, Any]) -> tuple[pa.DataType, dict[str, Any]]:
    kind = given["name"].lower()
    extra = sorted(set(given) - {"name"} - _TYPE_KEYS.get(kind, set()), key=str)
    if extra and (kind in _TYPE_KEYS or kind in _PLAIN):
        raise SchemaError(f"unknown key {extra[0]!r} for type {kind!r}")
    shown = {key: given[key] for key in given}
    if kind in _PLAIN:
        return _PLAIN[kind], shown
    if kind == "int":
        width = _number(given, "bitWidth")
        signed = given.get("isSigned", True)
        if not isinstance(signed, bool):
            raise SchemaError(f"isSigned must be true or false, got {signed!r}")
        if (width, signed) not in _INTS:
            raise SchemaError(f"int bitWidth must be 8, 16, 32 or 64, got {width}")
        return _INTS[width, signed], shown
    if kind == "floatingpoint":
        return _choice(given, "precision", _FLOATS), shown
    if kind == "date":
        unit = _choice(given, "unit", {"DAY": "day", "MILLISECOND": "ms"}, default="DAY")
        return (pa.date32() if unit == "day" else pa.date64()), shown
    if kind == "timestamp":
        zone = given.get("timezone")
        if zone is not None and not isinstance(zone, str):
            raise SchemaError(f"timezone must be null or a name such as 'UTC', got {zone!r}")
        zone = "UTC" if zone is not None and zone.upper() == "UTC" else zone
        return pa.timestamp(_choice(given, "unit", _UNITS), tz=zone), shown
    if kind == "time":
        unit = _choice(given, "unit", _UNITS)
        width = 32 if unit in ("s", "ms") else 64
        if given.get("bitWidth", width) != width:
            raise SchemaError(f"a time in {unit} has bitWidth {width}")
        return (pa.time32(unit) if width == 32 else pa.time64(unit)), shown
    if kind == "duration":
        return pa.duration(_choice(given, "unit", _UNITS)), shown
    if kind == "decimal":
        return _decimal(given), shown
    if kind in _NESTED:
        raise SchemaError(
            f"nested values ({kind}) are not supported; store them as JSON text in a utf8 "
            "column or split them into separate columns"
        )
    raise SchemaError(
        f"unknown type {given['name']!r}; use int, floatingpoint, utf8, bool, date, timestamp, "
        "decimal or binary"
    )


def _decimal(given: Mapping[str, Any]) -> pa.DataType:
    precision = _number(given, "precision")
    scale = _number(given, "scale", default=0)
    if given.get("bitWidth", 128) != 128:
        raise SchemaError("decimals are stored as decimal128: bitWidth must be 128 if given")
    if not 1 <= precision <= _MAX_DECIMAL128_PRECISION:
        raise SchemaError(f"decimal precision must be 1 to 38, got {precision}")
    if not 0 <= scale <= precision:
        raise SchemaError(f"decimal scale must be 0 to the precision ({precision}), got {scale}")
    return pa.decimal128(precision, scale)


def _number(given: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = given.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{given['name']} needs {key} as a whole number, got {value!r}")
    return value


def _choice(
    given: Mapping[str, Any], key: str, options: Mapping[str, Any], default: str | None = None
) -> Any:
    value = given.get(key, default)
    if not isinstance(value, str) or value.upper() not in options:
        raise SchemaError(
            f"{given['name']} {key} must be one of {', '.join(options)}, got {value!r}"
        )
    return options[value.upper()]
