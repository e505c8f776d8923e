"""Fit a table to its frame's schema (SPEC §6): widen safely, never drop a value.

Every conversion is decided by type first: a pair of types is either always lossless (int32 →
int64), lossless only for some values (int64 → float64, ns → us), which are then checked, or not
allowed at all (float → int, number ↔ string). The one rounding allowed is a float into a
narrower float column (float64 → float32), as every database does; overflow to ±inf is refused.
pyarrow's ``safe=True`` cast is kept as a last line of defence, never as the rule itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from apiary.cells.types import partition_columns, type_name
from apiary.errors import SchemaError

# A value check returns what went wrong, or None when every value survives the cast.
Check = Callable[[pa.ChunkedArray, pa.DataType], str | None]

_UNITS = {"s": 0, "ms": 1, "us": 2, "ns": 3}
_STRINGS = (pat.is_string, pat.is_large_string, pat.is_string_view)
_BINARIES = (pat.is_binary, pat.is_large_binary, pat.is_binary_view, pat.is_fixed_size_binary)


def conform(table: pa.Table, schema: pa.Schema, partition_by: Sequence[str] = ()) -> pa.Table:
    """``table`` with exactly ``schema`` (its column order), one chunk per column where possible.

    Raises SchemaError naming the column for an unknown column, a missing non-nullable column, a
    conversion that could lose or change data, or a null where none is allowed.
    """
    parts = partition_columns(partition_by)
    # Names are looked up in dicts built once: ``table.column_names`` builds a new list on every
    # access, and searching it per column made a 10,000-column write take over a minute.
    names = table.column_names
    repeated = [name for name, n in Counter(names).items() if n > 1]
    if repeated:
        raise SchemaError(f"the data has more than one column named {repeated[0]!r}")
    position = {name: i for i, name in enumerate(names)}
    wanted = set(schema.names)
    unknown = [name for name in names if name not in wanted]
    if unknown:
        raise SchemaError(_unknown_message(unknown, schema))
    for col in parts:
        if col not in wanted:
            raise SchemaError(f"partition column {col!r} is not a column of the frame")
    missing = [f.name for f in schema if not f.nullable and f.name not in position]
    if missing:
        raise SchemaError(
            f"column {missing[0]!r} is missing from the data and cannot be null"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
        )
    columns = []
    for field in schema:
        if field.name in position:
            col = _conform_column(table.column(position[field.name]), field)
        else:
            col = pa.chunked_array([pa.nulls(table.num_rows, field.type)], type=field.type)
        nulls = col.null_count
        if nulls and field.name in parts:
            raise SchemaError(
                f"partition column {field.name!r} has {nulls} null value(s); "
                "partition values cannot be null"
            )
        if nulls and not field.nullable:
            raise SchemaError(f"column {field.name!r} cannot be null but has {nulls} null value(s)")
        columns.append(_one_chunk(col))
    return pa.Table.from_arrays(columns, schema=schema)


def _unknown_message(unknown: list[str], schema: pa.Schema) -> str:
    lowered = {name.lower(): name for name in schema.names}
    hint = lowered.get(unknown[0].lower())
    return (
        f"column {unknown[0]!r} is not in the frame"
        + (f" (did you mean {hint!r}?)" if hint else "")
        + (f"; other unknown columns: {', '.join(unknown[1:])}" if unknown[1:] else "")
        + f"; the frame's columns are: {', '.join(schema.names)}"
    )


def _one_chunk(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if col.num_chunks == 1:
        return col
    try:
        return pa.chunked_array([col.combine_chunks()], type=col.type)
    except (pa.ArrowInvalid, pa.ArrowCapacityError):
        return col  # over 2 GiB of string data cannot share one chunk; chunked is still correct


def _show(t: pa.DataType) -> str:
    try:
        return type_name(t)
    except SchemaError:
        return str(t)


def _conform_column(col: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    src, dst = col.type, field.type
    if src == dst:
        return col
    if pat.is_null(src):
        return pa.chunked_array([pa.nulls(len(col), dst)], type=dst)
    if pat.is_dictionary(src):
        return _conform_column(_decode(col), field)
    check = _check_for(src, dst)
    if check is None:
        raise SchemaError(
            f"column {field.name!r} is {_show(src)} but the frame stores {_show(dst)}; "
            + _refusal_hint(src, dst)
        )
    problem = check(col, dst)
    if problem is None:
        try:
            if pat.is_integer(src) and pat.is_decimal(dst):
                # pyarrow sizes int → decimal by the int type, not the values (checked above).
                col = col.cast(pa.decimal128(38, 0))
            return col.cast(dst, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problem = str(exc)
    raise SchemaError(
        f"column {field.name!r}: converting {_show(src)} to {_show(dst)} would lose data: {problem}"
    )


def _refusal_hint(src: pa.DataType, dst: pa.DataType) -> str:
    if pat.is_timestamp(src) and pat.is_timestamp(dst):
        if src.tz is None:
            return (
                "the zone of naive times cannot be guessed; localize them first "
                "(pyarrow.compute.assume_timezone, or pandas tz_localize)"
            )
        return "drop the time zone explicitly first if local wall-clock times are meant"
    if pat.is_temporal(src) and pat.is_temporal(dst):
        return "dates and times are never converted implicitly; cast the column first"
    return "only lossless widening (such as int32 → int64) is automatic; convert it explicitly"


def _decode(col: pa.ChunkedArray) -> pa.ChunkedArray:
    values = col.type.value_type
    # take() has no kernel for view types, so decode into their plain equivalents.
    if pat.is_string_view(values):
        values = pa.string()
    elif pat.is_binary_view(values):
        values = pa.binary()
    chunks = [c.dictionary.cast(values).take(c.indices) for c in col.chunks]
    return pa.chunked_array(chunks, type=values)


def _lossless(col: pa.ChunkedArray, dst: pa.DataType) -> str | None:
    return None


def _check_for(src: pa.DataType, dst: pa.DataType) -> Check | None:
    """How to convert ``src`` to ``dst``: a value check to run first, or None if not allowed."""
    if pat.is_integer(dst):
        if not pat.is_integer(src):
            return None
        lo, hi = _int_range(dst)
        src_lo, src_hi = _int_range(src)
        return _lossless if lo <= src_lo and src_hi <= hi else _within(lo, hi)
    if pat.is_floating(dst):
        if pat.is_floating(src):
            # Narrower floats round to the declared precision, as in every database; only a
            # finite value too large for the column (it would become ±inf) is refused.
            return _lossless if src.bit_width <= dst.bit_width else _finite_stays_finite
        if pat.is_integer(src):
            exact = 2 ** (53 if pat.is_float64(dst) else 24)  # mantissa bits + 1
            src_lo, src_hi = _int_range(src)
            return _lossless if -exact <= src_lo and src_hi <= exact else _within(-exact, exact)
        return None
    if pat.is_decimal(dst):
        if pat.is_integer(src):
            bound = 10 ** (dst.precision - dst.scale) - 1
            return _within(-bound, bound)
        if pat.is_decimal(src):
            return _decimal_fits
        return None
    if pat.is_string(dst) or pat.is_large_string(dst):
        return _lossless if any(is_(src) for is_ in _STRINGS) else None
    if pat.is_binary(dst):
        return _lossless if any(is_(src) for is_ in _BINARIES) else None
    if pat.is_date(dst):
        if not pat.is_date(src):
            return None  # a timestamp is not a date: truncating the time must be explicit
        return _lossless if pat.is_date32(src) else _round_trip
    for same_kind in (pat.is_timestamp, pat.is_duration):
        if same_kind(dst):
            if not same_kind(src):
                return None
            if pat.is_timestamp(src) and (src.tz is None) != (dst.tz is None):
                return None  # naive vs aware: which zone a naive time is in cannot be guessed
            return _by_unit(src, dst)
    if pat.is_time(dst):
        return _by_unit(src, dst) if pat.is_time(src) else None
    return None


def _by_unit(src: pa.DataType, dst: pa.DataType) -> Check:
    # A finer unit only risks overflow, which the safe cast reports; a coarser one needs checking.
    return _lossless if _UNITS[src.unit] <= _UNITS[dst.unit] else _round_trip


def _int_range(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    if pat.is_signed_integer(t):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _within(lo: int, hi: int) -> Check:
    def check(col: pa.ChunkedArray, dst: pa.DataType) -> str | None:
        bounds = pc.min_max(col)
        for value in (bounds["min"].as_py(), bounds["max"].as_py()):
            if value is not None and not lo <= value <= hi:
                return f"value {value} is outside what {_show(dst)} holds exactly"
        return None

    return check


def _round_trip(col: pa.ChunkedArray, dst: pa.DataType) -> str | None:
    """Convert there and back; any value that comes back different would be changed."""
    back = col.cast(dst, safe=False).cast(col.type, safe=False)
    same = pc.equal(back, col)
    if pat.is_floating(col.type):
        same = pc.or_(same, pc.and_(pc.is_nan(back), pc.is_nan(col)))
    if pc.all(same).as_py() is not False:
        return None
    first = pc.index(same, False).as_py()
    return f"value {col[first]} (row {first}) would not come through unchanged"


def _finite_stays_finite(col: pa.ChunkedArray, dst: pa.DataType) -> str | None:
    became_inf = pc.and_(pc.is_inf(col.cast(dst, safe=False)), pc.invert(pc.is_inf(col)))
    if not pc.any(became_inf).as_py():
        return None
    first = pc.index(became_inf, True).as_py()
    return (
        f"value {col[first]} (row {first}) is too large for {_show(dst)} and would become "
        f"infinite; declare the column {_show(col.type)}"
    )


def _decimal_fits(col: pa.ChunkedArray, dst: pa.DataType) -> str | None:
    if dst.scale < col.type.scale:
        problem = _round_trip(col, pa.decimal128(38, dst.scale))  # fractional digits only
        if problem is not None:
            return problem
    if dst.precision - dst.scale < col.type.precision - col.type.scale:
        bound = 10 ** (dst.precision - dst.scale)
        bounds = pc.min_max(col)
        for value in (bounds["min"].as_py(), bounds["max"].as_py()):
            if value is not None and abs(value) >= bound:
                return f"value {value} has too many integer digits for {_show(dst)}"
    return None
