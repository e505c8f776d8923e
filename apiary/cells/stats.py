"""Per-column min / max / null count of a cell, as JSON for the ledger, and back again.

Queries prune cells with these bounds, so a bound may be loose but must never be wrong: when a
bound cannot be stated exactly it is stored as None ("unknown") and the cell is never pruned on it.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from apiary.cells.partition import partition_value_from_str, render
from apiary.errors import SchemaError

MAX_STRING_STAT = 64


def column_stats(table: pa.Table) -> dict[str, dict]:
    """``{column: {"min", "max", "null_count"}}`` with JSON-serialisable bounds.

    ints → int, floats → float (NaN ignored, infinities → None so the JSON stays strict), bool →
    bool, strings → str, dates/timestamps/times → ISO text (timestamps with their offset),
    durations → int count of the unit, decimals → str; binary and all-null columns → None.
    """
    return {name: _stats(table.column(name)) for name in table.column_names}


def _stats(col: pa.ChunkedArray) -> dict:
    lo, hi = _bounds(col) if col.null_count < len(col) else (None, None)
    return {"min": lo, "max": hi, "null_count": col.null_count}


def _bounds(col: pa.ChunkedArray) -> tuple[object, object]:
    t = col.type
    if pat.is_temporal(t) and not pat.is_interval(t):
        # min_max has no kernel for some temporal types; their integer order is the same.
        int_type = pa.int32() if t.bit_width == 32 else pa.int64()
        ints = pc.min_max(col.cast(int_type))
        lo, hi = ints["min"].as_py(), ints["max"].as_py()
        if pat.is_duration(t):
            return lo, hi
        try:
            lo_text, hi_text = render(pa.array([lo, hi], int_type).view(t))
        except SchemaError:  # outside years 1 to 9999: no ISO text, so unknown
            return None, None
        return lo_text, hi_text
    if not (
        pat.is_integer(t)
        or pat.is_floating(t)
        or pat.is_boolean(t)
        or pat.is_decimal(t)
        or pat.is_string(t)
        or pat.is_large_string(t)
    ):
        return None, None  # binary and anything else: no useful order to prune on
    bounds = pc.min_max(col)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if pat.is_floating(t):
        # min_max skips NaN unless every value is NaN; infinities are not strict JSON.
        return (
            lo if lo is not None and math.isfinite(lo) else None,
            hi if hi is not None and math.isfinite(hi) else None,
        )
    if pat.is_decimal(t):
        return str(lo), str(hi)
    if isinstance(lo, str):
        # Long strings would bloat every ledger entry. A prefix is still a lower bound, but no
        # cheap string is a safe upper bound, so the max becomes unknown instead.
        return lo[:MAX_STRING_STAT], hi if len(hi) <= MAX_STRING_STAT else None
    return lo, hi


def decode_stat(value: object, type: pa.DataType) -> object:
    """A stored bound as the Python value ``.as_py()`` gives for ``type`` (date, datetime, …)."""
    if value is None:
        return None
    try:
        if pat.is_duration(type):
            return pa.array([_exact(value, int)], pa.int64()).view(type)[0].as_py()
        if (pat.is_temporal(type) and not pat.is_interval(type)) or pat.is_decimal(type):
            return partition_value_from_str(_exact(value, str), type)
        if pat.is_boolean(type):
            return _exact(value, bool)
        if pat.is_integer(type):
            return _exact(value, int)
        if pat.is_floating(type):
            return float(_exact(value, (int, float)))
        if pat.is_string(type) or pat.is_large_string(type):
            return _exact(value, str)
    except TypeError as exc:
        raise SchemaError(f"stored statistic {value!r} is not a {type} value") from exc
    raise SchemaError(f"columns of type {type} have no statistics")


def _exact(value: object, kinds: type | tuple[type, ...]) -> object:
    # bool is an int subclass: True must not pass for an int statistic, nor 1 for a bool one.
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
        raise TypeError(value)
    return value
