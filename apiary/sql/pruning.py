"""Deciding from the ledger alone which cells a query can skip (pure logic).

Predicates arrive as a small tree (built from DataFusion's optimised plan by
:mod:`apiary.sql.plan`). A cell is skipped only when its partition values or its per-column
min / max / null counts *prove* no row can match; anything unknown keeps the cell.

A predicate is evaluated over all cells at once, as Arrow arrays of their bounds (one
comparison per predicate instead of one Python call per cell: a frame of thousands of cells
prunes in well under a millisecond). :class:`CellView` states the rule for one cell; it is
the reference the arrays must agree with, and what predicates the arrays cannot express
exactly (values of another type than the column's, NULL literals) still go through.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from apiary.cells.partition import partition_value_from_str
from apiary.cells.stats import decode_stat
from apiary.ledger import CellMeta


@dataclass(frozen=True)
class Cmp:
    column: str
    op: str  # "=", "!=", "<", "<=", ">", ">="
    value: Any


@dataclass(frozen=True)
class IsNull:
    column: str
    negated: bool = False


@dataclass(frozen=True)
class InList:
    column: str
    values: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Predicate, ...]


Predicate = Cmp | IsNull | InList | And | Or

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def columns_of(pred: Predicate) -> set[str]:
    if isinstance(pred, And | Or):
        return set().union(*(columns_of(p) for p in pred.parts))
    return {pred.column}


@dataclass
class Pruned:
    """What pruning did to one frame: the surviving cells and the counts EXPLAIN reports."""

    kept: list[CellMeta]
    considered: int
    by_partition: int = 0
    by_stats: int = 0
    skipped: list[CellMeta] = field(default_factory=list)


def prune(
    cells: Mapping[str, CellMeta] | Iterable[CellMeta],
    predicates: list[Predicate],
    schema: pa.Schema,
    partition_by: list[str],
) -> Pruned:
    """Partition values first, then statistics; each skipped cell is counted once.

    Given a snapshot's ``cells`` mapping (which never changes once made), the cells' bounds
    as arrays are kept for the next query over the same snapshot.
    """
    facts = _facts_of(cells) if isinstance(cells, Mapping) else CellFacts(list(cells))
    listed = facts.cells
    result = Pruned(kept=[], considered=len(listed))
    if not predicates or not listed:
        result.kept = list(listed)
        return result
    partition_preds = [p for p in predicates if columns_of(p) <= set(partition_by)]
    other_preds = [p for p in predicates if p not in partition_preds]
    by_partition = facts.matching(partition_preds, schema, partition_by)
    by_stats = facts.matching(other_preds, schema, partition_by)
    for cell, partition_ok, stats_ok in zip(listed, by_partition, by_stats, strict=True):
        if not partition_ok:
            result.by_partition += 1
            result.skipped.append(cell)
        elif not stats_ok:
            result.by_stats += 1
            result.skipped.append(cell)
        else:
            result.kept.append(cell)
    return result


class CellFacts:
    """The cells of one snapshot, with their bounds per column as Arrow arrays (made on first
    use of a column, then kept)."""

    def __init__(self, cells: list[CellMeta]) -> None:
        self.cells = cells
        self._columns: dict[tuple[str, str, bool], _ColumnFacts | None] = {}
        self._lock = threading.Lock()
        self._rows: pa.Array | None = None

    def matching(
        self, predicates: list[Predicate], schema: pa.Schema, partition_by: list[str]
    ) -> list[bool]:
        """Per cell, whether every predicate may match it."""
        keep = pa.array([True] * len(self.cells))
        for pred in predicates:
            mask = self._mask(pred, schema, partition_by)
            if mask is None:  # not expressible as arrays: the per-cell rule decides
                mask = pa.array(
                    [CellView(c, schema, partition_by).may_match(pred) for c in self.cells]
                )
            keep = pc.and_(keep, mask)
        return keep.to_pylist()

    def _mask(self, pred: Predicate, schema: pa.Schema, partition_by: list[str]) -> Any:
        if isinstance(pred, And | Or):
            masks = [self._mask(p, schema, partition_by) for p in pred.parts]
            if any(m is None for m in masks):
                return None
            combine = pc.and_ if isinstance(pred, And) else pc.or_
            out = masks[0] if masks else pa.array([isinstance(pred, And)] * len(self.cells))
            for m in masks[1:]:
                out = combine(out, m)
            return out
        if pred.column not in schema.names:
            return pa.array([True] * len(self.cells))
        kind = schema.field(pred.column).type
        if not _arrays_compare_like_python(kind):
            return None
        column = self._column(pred.column, kind, pred.column in partition_by)
        if column is None:
            return None
        try:
            return column.mask(pred, self._row_counts())
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return None

    def _row_counts(self) -> pa.Array:
        if self._rows is None:
            self._rows = pa.array([c.rows for c in self.cells], pa.int64())
        return self._rows

    def _column(self, name: str, kind: pa.DataType, partitioned: bool) -> _ColumnFacts | None:
        key = (name, str(kind), partitioned)
        with self._lock:
            if key not in self._columns:
                self._columns[key] = _ColumnFacts.of(self.cells, name, kind, partitioned)
            return self._columns[key]


def _arrays_compare_like_python(kind: pa.DataType) -> bool:
    """Types whose Arrow comparisons order values as Python's do (UTF-8 bytes sort as code
    points; timestamps compare as instants)."""
    t = pa.types
    return (
        t.is_integer(kind)
        or t.is_floating(kind)
        or t.is_date(kind)
        or t.is_timestamp(kind)
        or t.is_string(kind)
        or t.is_large_string(kind)
        or t.is_decimal(kind)
    )


@dataclass(frozen=True)
class _ColumnFacts:
    """One column across the cells, in cell order: exact partition values (null where the
    cell has none), min / max (null where unknown), null counts and whether stats exist."""

    kind: pa.DataType
    exact: pa.Array
    low: pa.Array
    high: pa.Array
    null_count: pa.Array
    has_stats: pa.Array

    @staticmethod
    def of(
        cells: list[CellMeta], name: str, kind: pa.DataType, partitioned: bool
    ) -> _ColumnFacts | None:
        exact: list[Any] = []
        low: list[Any] = []
        high: list[Any] = []
        nulls: list[int] = []
        has: list[bool] = []
        try:
            for cell in cells:
                text = cell.partition.get(name) if partitioned else None
                exact.append(None if text is None else _partition_value(text, kind))
                stats = cell.stats.get(name)
                has.append(stats is not None)
                nulls.append(stats.null_count if stats is not None else 0)
                low.append(_bound(stats.min if stats is not None else None, kind))
                high.append(_bound(stats.max if stats is not None else None, kind))
            return _ColumnFacts(
                kind,
                pa.array(exact, kind),
                pa.array(low, kind),
                pa.array(high, kind),
                pa.array(nulls, pa.int64()),
                pa.array(has, pa.bool_()),
            )
        except Exception:
            return None  # a bound the per-cell rule must judge (or report as damaged)

    def mask(self, pred: Cmp | IsNull | InList, rows: pa.Array) -> pa.Array:
        known = pc.is_valid(self.exact)
        if isinstance(pred, IsNull):
            exact = pa.array([pred.negated] * len(self.exact))  # partition values are never null
            if pred.negated:
                bounds = pc.less(self.null_count, rows)
            else:
                bounds = pc.greater(self.null_count, 0)
            bounds = pc.or_(pc.invert(self.has_stats), bounds)
            return pc.if_else(known, exact, bounds)
        if isinstance(pred, InList):
            values = [self._scalar(v) for v in pred.values]
            value_set = pa.array([v.as_py() for v in values], self.kind)
            exact = pc.is_in(self.exact, value_set=value_set)
            if pred.negated:
                exact = pc.invert(exact)
                single = pc.and_(pc.equal(self.low, self.high), pc.is_in(self.low, value_set))
                bounds = pc.invert(pc.fill_null(single, False))
            else:
                bounds = pa.array([False] * len(self.exact))
                for v in values:
                    bounds = pc.or_(bounds, self._in_range(v))
            return self._combine(known, exact, bounds, rows)
        value = self._scalar(pred.value)
        exact = pc.fill_null(_ARRAY_OPS[pred.op](self.exact, value), False)
        floating = pa.types.is_floating(self.kind)
        if floating and (pred.value != pred.value or pred.op in (">", ">=", "!=")):
            bounds = pa.array([True] * len(self.exact))
        elif pred.op == "=":
            bounds = self._in_range(value)
        elif pred.op == "!=":
            single = pc.and_(pc.equal(self.low, value), pc.equal(self.high, value))
            bounds = pc.invert(pc.fill_null(single, False))
        elif pred.op in ("<", "<="):
            bounds = pc.fill_null(_ARRAY_OPS[pred.op](self.low, value), True)
        else:
            bounds = pc.fill_null(_ARRAY_OPS[pred.op](self.high, value), True)
        return self._combine(known, exact, bounds, rows)

    def _combine(self, known: pa.Array, exact: pa.Array, bounds: pa.Array, rows: pa.Array) -> Any:
        only_nulls = pc.greater_equal(self.null_count, rows)  # no comparison can be true
        bounds = pc.and_(bounds, pc.invert(only_nulls))
        bounds = pc.or_(pc.invert(self.has_stats), bounds)
        return pc.if_else(known, exact, bounds)

    def _in_range(self, value: pa.Scalar) -> pa.Array:
        above = pc.fill_null(pc.less_equal(self.low, value), True)
        below = pc.fill_null(pc.less_equal(value, self.high), True)
        return pc.and_(above, below)

    def _scalar(self, value: Any) -> pa.Scalar:
        """``value`` as the column's type, only if that changes nothing (else TypeError)."""
        if value is None:
            raise TypeError("a NULL literal: the per-cell rule decides")
        scalar = pa.scalar(value, self.kind)
        back = scalar.as_py()
        numbers = isinstance(value, int | float) and isinstance(back, int | float)
        if isinstance(value, bool) or back != value or not (numbers or type(back) is type(value)):
            raise TypeError(value)
        return scalar


_ARRAY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


def _bound(value: object, kind: pa.DataType) -> object:
    if value is None:
        return None
    bound = _decoded(value, kind)
    if isinstance(bound, float) and bound != bound:
        return None
    return bound


# Snapshots whose facts are kept: enough for the frames of a few queries. Each holds its
# snapshot's cell mapping alive, so the total is bounded by cells too (a Pi's memory).
_KEPT_FACTS = 16
_KEPT_CELLS = 200_000
_facts: OrderedDict[int, tuple[Mapping[str, CellMeta], CellFacts]] = OrderedDict()
_facts_lock = threading.Lock()


def _facts_of(cells: Mapping[str, CellMeta]) -> CellFacts:
    """The facts of a snapshot's ``cells``, kept for the last few snapshots (keyed by the
    mapping itself, which is held, so its id is not reused while kept)."""
    with _facts_lock:
        kept = _facts.get(id(cells))
        if kept is not None and kept[0] is cells and len(kept[1].cells) == len(cells):
            _facts.move_to_end(id(cells))
            return kept[1]
        facts = CellFacts(list(cells.values()))
        _facts[id(cells)] = (cells, facts)
        while len(_facts) > 1 and (
            len(_facts) > _KEPT_FACTS or sum(len(f.cells) for _, f in _facts.values()) > _KEPT_CELLS
        ):
            _facts.popitem(last=False)
        return facts


class CellView:
    """One cell's known facts: exact partition values, else min / max / null count."""

    def __init__(self, cell: CellMeta, schema: pa.Schema, partition_by: list[str]) -> None:
        self.cell = cell
        self.schema = schema
        self.partition_by = partition_by

    def may_match(self, pred: Predicate) -> bool:
        try:
            return self._may_match(pred)
        except (TypeError, ValueError, KeyError, ArithmeticError):
            return True  # types we cannot compare safely: keep the cell

    def _may_match(self, pred: Predicate) -> bool:
        if isinstance(pred, And):
            return all(self._may_match(p) for p in pred.parts)
        if isinstance(pred, Or):
            return any(self._may_match(p) for p in pred.parts)
        if pred.column not in self.schema.names:
            return True
        if pred.column in self.partition_by and pred.column in self.cell.partition:
            return self._exact(pred)
        return self._bounds(pred)

    def _exact(self, pred: Cmp | IsNull | InList) -> bool:
        kind = self.schema.field(pred.column).type
        value = _partition_value(self.cell.partition[pred.column], kind)
        if isinstance(pred, IsNull):
            return pred.negated  # partition values are never null
        if isinstance(pred, InList):
            return (value in pred.values) != pred.negated
        return _OPS[pred.op](value, pred.value)

    def _bounds(self, pred: Cmp | IsNull | InList) -> bool:
        stats = self.cell.stats.get(pred.column)
        if stats is None:
            return True
        rows = self.cell.rows
        if isinstance(pred, IsNull):
            return stats.null_count < rows if pred.negated else stats.null_count > 0
        if stats.null_count >= rows:
            return False  # only nulls: no comparison can be true
        kind = self.schema.field(pred.column).type
        low = _decoded(stats.min, kind) if stats.min is not None else None
        high = _decoded(stats.max, kind) if stats.max is not None else None
        if isinstance(pred, InList):
            if pred.negated:
                return not (low is not None and low == high and low in pred.values)
            return any(_in_range(v, low, high) for v in pred.values)
        floating = pa.types.is_floating(kind)
        return _cmp_may_match(pred.op, pred.value, low, high, floating)


# Cells never change, so their bounds are decoded once per process, not once per query: parsing
# a timestamp bound costs ~20 µs, and a frame of 540 cells spent 20 ms a query on it (measured).
# The values are immutable (int, float, str, date, datetime, Decimal), so sharing them is safe.
@lru_cache(maxsize=1 << 16)
def _decoded(value: object, kind: pa.DataType) -> object:
    return decode_stat(value, kind)


@lru_cache(maxsize=1 << 14)
def _partition_value(text: str, kind: pa.DataType) -> object:
    return partition_value_from_str(text, kind)


def _in_range(value: Any, low: Any, high: Any) -> bool:
    return (low is None or low <= value) and (high is None or value <= high)


def _cmp_may_match(op: str, value: Any, low: Any, high: Any, floating: bool) -> bool:
    if value is None:
        return False  # comparing with NULL is never true
    if floating and (value != value or op in (">", ">=", "!=")):
        # NaN sorts above every number in DataFusion and is left out of the statistics, so
        # a cell's max says nothing about NaN rows.
        return True
    if op == "=":
        return _in_range(value, low, high)
    if op == "!=":
        return not (low is not None and low == high == value)
    if op == "<":
        return low is None or low < value
    if op == "<=":
        return low is None or low <= value
    if op == ">":
        return high is None or high > value
    if op == ">=":
        return high is None or high >= value
    return True
