"""Partition values and per-file statistics: Apiary's canonical forms ↔ Delta's.

Apiary keeps one canonical text per partition value and JSON bounds per column
(:mod:`apiary.cells.partition`, :mod:`apiary.cells.stats`); Delta serialises partition values
as its appendix "Partition Value Serialization" says and statistics as a JSON string of
``numRecords`` / ``minValues`` / ``maxValues`` / ``nullCount``. Bounds may be loosened, never
made wrong: a bound that cannot be converted exactly is left out (unknown).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.types as pat

from apiary.cells.partition import partition_value_from_str, partition_value_to_str
from apiary.errors import SchemaError

_DECIMAL_MARK = "\x00decimal:"
_MARKED = re.compile(r'"\\u0000decimal:(-?[0-9.]+(?:E[-+]?[0-9]+)?)"')


# -- partition values ----------------------------------------------------------------------


def partition_to_delta(text: str, t: pa.DataType) -> str:
    """Delta's serialisation of one partition value held in Apiary's canonical text."""
    if pat.is_timestamp(t):
        value = partition_value_from_str(text, t)
        assert isinstance(value, datetime)
        if t.tz is None:
            return value.isoformat(sep=" ", timespec="microseconds")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return text  # strings, numbers, booleans, dates, decimals: the same text


def partition_from_delta(text: str | None, t: pa.DataType, column: str) -> str:
    """Apiary's canonical text of a partition value another Delta writer serialised."""
    if text is None or text == "":
        raise SchemaError(
            f"partition column {column!r} holds a null value, which Apiary does not read yet; "
            "rewrite the table without null partition values"
        )
    if pat.is_timestamp(t):
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise SchemaError(f"{text!r} is not a Delta timestamp partition value") from exc
        if t.tz is not None:
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        elif parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return partition_value_to_str(parsed, t)
    return partition_value_to_str(text, t)


# -- statistics ----------------------------------------------------------------------------


def stats_to_delta(rows: int, stats: dict[str, Any], schema: pa.Schema) -> str:
    """The ``stats`` string of an ``add`` from a cell's rows and Apiary column stats.

    ``stats`` maps a column to an object with ``min``, ``max`` and ``null_count``.
    """
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, col in stats.items():
        if name not in schema.names:
            continue
        t = schema.field(name).type
        nulls[name] = col.null_count
        if col.min is not None:
            low[name] = _bound_to_delta(col.min, t)
        if col.max is not None:
            high[name] = _bound_to_delta(col.max, t)
    document = {"numRecords": rows, "minValues": low, "maxValues": high, "nullCount": nulls}
    text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    # Delta wants decimals as JSON numbers; json cannot emit a Decimal, so mark and unquote.
    return _MARKED.sub(r"\1", text)


def _bound_to_delta(value: Any, t: pa.DataType) -> Any:
    if pat.is_decimal(t):
        return _DECIMAL_MARK + str(Decimal(value))
    if pat.is_timestamp(t):
        parsed = partition_value_from_str(value, t)
        assert isinstance(parsed, datetime)
        if t.tz is None:
            return parsed.isoformat(timespec="microseconds")
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value  # numbers, booleans, strings and ISO dates are already Delta's form


def stats_from_delta(
    text: str | None, schema: pa.Schema, *, exact_timestamps: bool
) -> tuple[int | None, dict[str, dict[str, Any]]]:
    """``(numRecords, {column: {min, max, null_count}})`` from an ``add``'s stats string.

    A column is only described when its null count is known (pruning on ``IS NULL`` relies on
    it); an unreadable bound becomes unknown. Other writers truncate timestamp bounds to
    milliseconds, so unless ``exact_timestamps`` a timestamp maximum is raised to the end of
    its millisecond.
    """
    if not text:
        return None, {}
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise SchemaError(f"a file's statistics are not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise SchemaError("a file's statistics are not a JSON object")
    rows = document.get("numRecords")
    rows = rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
    low, high, nulls = (_object(document.get(k)) for k in ("minValues", "maxValues", "nullCount"))
    out: dict[str, dict[str, Any]] = {}
    for f in schema:
        count = nulls.get(f.name)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            continue
        out[f.name] = {
            "min": _bound_from_delta(low.get(f.name), f.type, raise_to_ms=False),
            "max": _bound_from_delta(high.get(f.name), f.type, raise_to_ms=not exact_timestamps),
            "null_count": count,
        }
    return rows, out


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bound_from_delta(value: Any, t: pa.DataType, *, raise_to_ms: bool) -> Any:
    """Apiary's JSON form of a Delta bound, or None when it cannot be stated exactly."""
    if value is None or isinstance(value, dict | list):
        return None
    try:
        if pat.is_boolean(t):
            return value if isinstance(value, bool) else None
        if isinstance(value, bool):
            return None
        if pat.is_integer(t):
            return value if isinstance(value, int) else None
        if pat.is_floating(t):
            return float(value) if isinstance(value, int | Decimal) else None
        if pat.is_decimal(t):
            return str(Decimal(value)) if isinstance(value, int | Decimal) else None
        if pat.is_string(t) or pat.is_large_string(t):
            return value if isinstance(value, str) else None
        if pat.is_date32(t) and isinstance(value, str):
            return date.fromisoformat(value).isoformat()
        if pat.is_timestamp(t) and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(UTC)
                parsed = parsed if t.tz is not None else parsed.replace(tzinfo=None)
            elif t.tz is not None:
                parsed = parsed.replace(tzinfo=UTC)
            if raise_to_ms:
                parsed += timedelta(microseconds=999)
            return partition_value_to_str(parsed, t)
    except (ValueError, ArithmeticError, SchemaError, OverflowError):
        return None
    return None
