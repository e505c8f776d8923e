"""Do two query results hold the same answer? The rule the TPC-H test and benchmark share.

Same column names in the same order, same row count, and equal values: strings, integers, dates
and decimals exactly; floats within a relative tolerance (aggregation order may differ between
engines or cell layouts). Row order counts only when the query sorts (``ordered=True``).

Types are compared loosely: a ``string`` column equals a ``string_view`` one and ``int32`` equals
``int64``, but a decimal never equals a float; "decimals exact" would mean nothing otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.types as pat

FLOAT_REL_TOL = 1e-9
_MAX_SHOWN = 120


def _kind(t: pa.DataType) -> str:
    if pat.is_floating(t):
        return "float"
    if pat.is_decimal(t):
        return "decimal"
    if pat.is_integer(t):
        return "integer"
    if pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t):
        return "string"
    if pat.is_binary(t) or pat.is_large_binary(t) or pat.is_binary_view(t):
        return "binary"
    if pat.is_dictionary(t):
        return _kind(t.value_type)
    return str(t)


def _column_values(column: pa.ChunkedArray) -> list[Any]:
    if pat.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pat.is_string_view(column.type):
        column = column.cast(pa.string())
    elif pat.is_binary_view(column.type):
        column = column.cast(pa.binary())
    return column.to_pylist()


def _equal(x: Any, y: Any, kind: str) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if kind == "float":
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return math.isclose(x, y, rel_tol=FLOAT_REL_TOL, abs_tol=0.0)
    return bool(x == y)


def _sort_key(row: Sequence[Any], kinds: Sequence[str]) -> tuple[Any, ...]:
    # Exact columns first, floats last: rows whose floats differ by rounding still pair up.
    exact = [i for i, k in enumerate(kinds) if k != "float"]
    floats = [i for i, k in enumerate(kinds) if k == "float"]
    key: list[tuple[Any, ...]] = []
    for i in exact + floats:
        v = row[i]
        if v is None:
            key.append((0,))
        elif isinstance(v, float) and math.isnan(v):
            key.append((2,))
        else:
            key.append((1, v))
    return tuple(key)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def result_difference(a: pa.Table, b: pa.Table, ordered: bool) -> str | None:
    """``None`` when ``a`` and ``b`` hold the same result, else what differs first (one line)."""
    if a.column_names != b.column_names:
        return f"column names differ: {a.column_names} != {b.column_names}"
    if a.num_rows != b.num_rows:
        return f"row counts differ: {a.num_rows} != {b.num_rows}"
    kinds = []
    for name, fa, fb in zip(a.column_names, a.schema, b.schema, strict=True):
        ka, kb = _kind(fa.type), _kind(fb.type)
        if ka != kb:
            return f"column {name!r} has type {fa.type} on one side and {fb.type} on the other"
        kinds.append(ka)
    rows_a = list(zip(*(_column_values(c) for c in a.columns), strict=True))
    rows_b = list(zip(*(_column_values(c) for c in b.columns), strict=True))
    if not ordered:
        rows_a.sort(key=lambda r: _sort_key(r, kinds))
        rows_b.sort(key=lambda r: _sort_key(r, kinds))
    for n, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
        for name, kind, x, y in zip(a.column_names, kinds, ra, rb, strict=True):
            if not _equal(x, y, kind):
                where = f"row {n}" if ordered else f"row {n} (after sorting both sides)"
                return f"{where}, column {name!r}: {_show(x)} != {_show(y)}"
    return None
