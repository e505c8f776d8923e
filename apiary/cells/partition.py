"""Partition values: one canonical text per value, and splitting a table by those values.

The text is what goes into cell paths and ledger entries, and what statistics use for dates,
times and decimals, so it must be exact: timestamps keep their full unit precision (``.123456789``
for ns) and the offset of their zone, and :func:`partition_value_from_str` reads any of them back
to the identical value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from apiary.cells.types import partition_columns, time_zone
from apiary.errors import SchemaError

_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2}(?::\d{2})?)?"
)


def partition_value_to_str(value: object, type: pa.DataType) -> str:
    """Canonical text of one value of ``type`` (a Python value, a ``pa.Scalar`` or its text).

    Integers in decimal, ``true``/``false``, ISO dates (``2026-01-31``), ISO 8601 timestamps
    (``2026-01-31T12:00:00.250000+01:00``; fraction only when non-zero), times ``HH:MM:SS[.f]``,
    durations as an integer count of their unit, decimals with their scale (``1.50``).
    """
    if value is None or (isinstance(value, pa.Scalar) and not value.is_valid):
        raise SchemaError("partition values cannot be null")
    if isinstance(value, str) and not (pat.is_string(type) or pat.is_large_string(type)):
        value = partition_value_from_str(value, type)  # "2026-01-31" for a date column, say
    try:
        array = pa.array([value], type=type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise SchemaError(f"{value!r} is not a value of type {type}: {exc}") from exc
    return render(array)[0]


def render(array: pa.Array) -> list[str]:
    """The canonical text of every value of ``array`` (no nulls allowed)."""
    t = array.type
    if array.null_count:
        raise SchemaError("partition values cannot be null")
    if _is_temporal(t):
        try:
            return [_format_temporal(n, t) for n in array.view(_int_type(t)).to_pylist()]
        except OverflowError as exc:
            raise SchemaError(f"a {t} value is outside years 1 to 9999: {exc}") from exc
    if pat.is_boolean(t):
        return ["true" if v else "false" for v in array.to_pylist()]
    if pat.is_integer(t) or pat.is_string(t) or pat.is_large_string(t) or pat.is_decimal(t):
        return [str(v) for v in array.to_pylist()]
    if pat.is_floating(t):
        return [repr(v) for v in array.to_pylist()]
    raise SchemaError(f"values of type {t} have no canonical text")


def partition_value_from_str(text: str, type: pa.DataType) -> object:
    """Inverse of :func:`partition_value_to_str`: the value ``pa.scalar(..).as_py()`` gives."""
    try:
        if _is_temporal(type):
            n = _parse_temporal(text, type)
            return pa.array([n], _int_type(type)).view(type)[0].as_py()
        if pat.is_boolean(type):
            return {"true": True, "false": False}[text]
        if pat.is_integer(type):
            return int(text)
        if pat.is_floating(type):
            return float(text)
        if pat.is_decimal(type):
            return Decimal(text)
        if pat.is_string(type) or pat.is_large_string(type):
            return text
    except (ValueError, KeyError, InvalidOperation, OverflowError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{text!r} is not a canonical {type} value") from exc
    raise SchemaError(f"values of type {type} have no canonical text")


def split_by_partition(
    table: pa.Table, partition_by: Sequence[str], max_partitions: int
) -> list[tuple[dict[str, str], pa.Table]]:
    """One ``(values, rows)`` pair per distinct combination of partition values.

    Rows keep their order within a partition; pairs are sorted by the typed partition values.
    Without partition columns the whole table is one pair; an empty table with partition
    columns has no pairs. Each sub-table keeps the partition columns.
    """
    return [
        (values, table if rows is None else table.take(rows))
        for values, rows in partition_rows(table, partition_by, max_partitions)
    ]


def partition_rows(
    table: pa.Table, partition_by: Sequence[str], max_partitions: int
) -> list[tuple[dict[str, str], pa.Array | None]]:
    """As :func:`split_by_partition`, with each partition's row numbers in input order instead
    of its rows (None: every row), so a caller that reorders them takes the rows only once."""
    parts = partition_columns(partition_by)
    if not parts:
        return [({}, None)]
    if max_partitions < 1:
        raise SchemaError(f"max_partitions must be at least 1, got {max_partitions}")
    keys = table.select(list(parts))
    for name in parts:
        nulls = keys.column(name).null_count
        if nulls:
            raise SchemaError(
                f"partition column {name!r} has {nulls} null value(s); "
                "partition values cannot be null"
            )
    if table.num_rows == 0:
        return []
    codes, groups = _group_codes(keys)
    if groups > max_partitions:
        raise SchemaError(
            f"this write has {groups} distinct combinations of partition values "
            f"({', '.join(parts)}) but at most {max_partitions} are allowed per write; "
            "partition by a coarser column (a day rather than a timestamp, say) "
            "or raise max_partitions"
        )
    order = pc.sort_indices(codes)  # stable: rows keep their order within a group
    counts = _counts_by_code(codes, groups)
    starts = pc.subtract(pc.cumulative_sum(counts), counts)
    first_rows = order.take(starts)  # stable sort: each group's first row in the input
    firsts = keys.take(first_rows)
    texts = {name: render(firsts.column(name).combine_chunks()) for name in parts}
    by_value = pc.sort_indices(firsts, sort_keys=[(name, "ascending") for name in parts])
    starts_py, counts_py = starts.to_pylist(), counts.to_pylist()
    return [
        (
            {name: texts[name][g] for name in parts},
            None if groups == 1 else order.slice(starts_py[g], counts_py[g]),
        )
        for g in by_value.to_pylist()
    ]


def _group_codes(keys: pa.Table) -> tuple[pa.Array, int]:
    """A group number per row (0..n-1, in order of first appearance) and the group count."""
    codes: pa.Array | None = None
    groups = 1
    for col in keys.columns:
        encoded = pc.dictionary_encode(col.combine_chunks())
        indices = encoded.indices.cast(pa.int64())
        size = len(encoded.dictionary)
        if codes is None:
            codes, groups = indices, size
            continue
        # Re-encode after every column so codes stay below the row count: no int64 overflow.
        combined = pc.dictionary_encode(pc.add(pc.multiply(codes, size), indices))
        codes, groups = combined.indices.cast(pa.int64()), len(combined.dictionary)
    assert codes is not None
    return codes, groups


def _counts_by_code(codes: pa.Array, groups: int) -> pa.Array:
    counted = pc.value_counts(codes)
    by_code = pc.sort_indices(counted.field("values"))
    counts = counted.field("counts").take(by_code)
    assert len(counts) == groups
    return counts


def _is_temporal(t: pa.DataType) -> bool:
    return pat.is_temporal(t) and not pat.is_interval(t)


def _int_type(t: pa.DataType) -> pa.DataType:
    return pa.int32() if t.bit_width == 32 else pa.int64()


def _format_temporal(n: int, t: pa.DataType) -> str:
    if pat.is_date32(t):
        return (_EPOCH_DATE + timedelta(days=n)).isoformat()
    if pat.is_date64(t):
        return (_EPOCH_DATE + timedelta(days=n // _MS_PER_DAY)).isoformat()
    if pat.is_duration(t):
        return str(n)
    seconds, frac = divmod(n, _PER_SECOND[t.unit])
    fraction = f".{frac:0{_DIGITS[t.unit]}d}" if frac else ""
    if pat.is_time(t):
        hours, rest = divmod(seconds, 3600)
        return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}{fraction}"
    if t.tz is None:
        return (_EPOCH + timedelta(seconds=seconds)).isoformat() + fraction
    moment = (_EPOCH_UTC + timedelta(seconds=seconds)).astimezone(time_zone(t.tz))
    text = moment.isoformat()  # YYYY-MM-DDTHH:MM:SS+HH:MM (no microseconds: seconds are whole)
    return text[:19] + fraction + text[19:]


def _parse_temporal(text: str, t: pa.DataType) -> int:
    if pat.is_date32(t):
        return (date.fromisoformat(text) - _EPOCH_DATE).days
    if pat.is_date64(t):
        return (date.fromisoformat(text) - _EPOCH_DATE).days * _MS_PER_DAY
    if pat.is_duration(t):
        return int(text)
    pattern = _TIME if pat.is_time(t) else _TIMESTAMP
    m = pattern.fullmatch(text)
    if m is None:
        raise ValueError(text)
    if pat.is_time(t):
        seconds = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
        digits = m.group(4) or ""
    else:
        offset, digits = m.group(3), m.group(2) or ""
        if (offset is None) != (t.tz is None):
            raise ValueError("time zone offset present for a naive type, or missing")
        moment = datetime.fromisoformat(m.group(1) + (offset or ""))
        delta = moment - (_EPOCH if offset is None else _EPOCH_UTC)
        seconds = delta.days * 86_400 + delta.seconds
    if len(digits) > _DIGITS[t.unit]:
        raise ValueError(f"more fractional digits than {t.unit} holds")
    return seconds * _PER_SECOND[t.unit] + int(digits.ljust(_DIGITS[t.unit], "0") or 0)
