"""Splitting an aggregate query into per-task fragments and an exact merge.

A query is distributable when its optimised plan is: an aggregate over a single frame, with
filters that are plain column-versus-literal comparisons, GROUP BY plain columns, and only
SUM / COUNT / MIN / MAX / AVG of plain columns (no DISTINCT); above the aggregate only HAVING,
projection, ORDER BY and LIMIT. Each task then runs

    SELECT <group columns>, <partial aggregates> FROM <its cells> WHERE <filters> GROUP BY ...

and the coordinator re-aggregates the partials (SUM of sums, SUM of counts, MIN of mins, MAX of
maxes, AVG as SUM of sums / SUM of counts), which gives exactly the single-node answer, then
applies the plan's own HAVING / projection / ORDER BY / LIMIT expressions. Anything else runs on
one node: :func:`decompose` returns the reason instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from datafusion import DataFrame, Expr, LogicalPlan
from datafusion.expr import SortExpr

_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}
_UPPER = {"Filter", "Projection", "Sort", "Limit"}


class NotDistributable(Exception):
    """Why a query must run on one node; shown by EXPLAIN."""


@dataclass(frozen=True)
class Partial:
    """One aggregate of the original query and how it is split and merged."""

    function: str  # sum | count | min | max | avg
    column: str | None  # None for count(*)
    output: str  # the aggregate's column name in DataFusion's plan, e.g. "sum(t.x)"


@dataclass
class Decomposition:
    relation: str  # how the plan names the frame, e.g. "farm.sensors.temps"
    table: str  # the scan's table part, e.g. "temps" or "temps@v3"
    groups: list[str]
    partials: list[Partial]
    where: str  # SQL text, "" for none
    upper: list[Any] = field(default_factory=list)  # plan nodes above the aggregate, top first

    def fragment_sql(self, table: str = "task_cells") -> str:
        """What each task runs over its own cells."""
        select = [f"{_quote(g)} AS g{i}" for i, g in enumerate(self.groups)]
        for i, part in enumerate(self.partials):
            arg = "*" if part.column is None else _quote(part.column)
            if part.function == "avg":
                select += [f"sum({arg}) AS p{i}_sum", f"count({arg}) AS p{i}_count"]
            else:
                select.append(f"{part.function}({arg}) AS p{i}")
        sql = f"SELECT {', '.join(select)} FROM {table}"
        if self.where:
            sql += f" WHERE {self.where}"
        if self.groups:
            sql += " GROUP BY " + ", ".join(_quote(g) for g in self.groups)
        return sql

    def merge_sql(self, table: str = "partials") -> str:
        """Re-aggregate the partials into the columns the original aggregate produces."""
        select = [f"g{i} AS {_quote(g)}" for i, g in enumerate(self.groups)]
        for i, part in enumerate(self.partials):
            if part.function == "avg":
                expr = f"CAST(sum(p{i}_sum) AS DOUBLE) / CAST(sum(p{i}_count) AS DOUBLE)"
            elif part.function == "count":
                expr = f"CAST(COALESCE(sum(p{i}), 0) AS BIGINT)"
            else:
                merge = "sum" if part.function == "sum" else part.function
                expr = f"{merge}(p{i})"
            select.append(f"{expr} AS {_quote(part.output)}")
        sql = f"SELECT {', '.join(select)} FROM {table}"
        if self.groups:
            sql += " GROUP BY " + ", ".join(f"g{i}" for i in range(len(self.groups)))
        return sql

    def finish(self, aggregated: DataFrame) -> DataFrame:
        """Apply the original HAVING / projection / ORDER BY / LIMIT to the merged aggregate."""
        df = aggregated
        for node in reversed(self.upper):
            kind = type(node).__name__
            if kind == "Filter":
                df = df.filter(Expr(node.predicate()))
            elif kind == "Projection":
                df = df.select(*[Expr(e) for e in node.projections()])
            elif kind == "Sort":
                df = df.sort(*[SortExpr(Expr(e.expr()), e.ascending(), e.nulls_first())
                               for e in node.sort_exprs()])  # fmt: skip
                if node.get_fetch_val():
                    df = df.limit(node.get_fetch_val())
            elif kind == "Limit":
                df = df.limit(_int_or_none(node.fetch()), _int_or_none(node.skip()) or 0)
        return df


def decompose(plan: LogicalPlan) -> Decomposition:
    """The distributed form of ``plan``, or :class:`NotDistributable` saying why not."""
    upper = []
    node = plan
    while type(node.to_variant()).__name__ in _UPPER:
        upper.append(node.to_variant())
        node = _only_input(node)
    aggregate = node.to_variant()
    if type(aggregate).__name__ != "Aggregate":
        raise NotDistributable("not an aggregate query")
    if plan.display_indent().count("TableScan:") != 1:
        raise NotDistributable("reads more than one frame (or a subquery)")
    groups = [_column(e, "GROUP BY") for e in aggregate.group_by_exprs()]
    partials = [_partial(e) for e in aggregate.aggregate_exprs()]

    filters: list[str] = []
    node = _only_input(node)
    relation = None
    while True:
        kind = type(node.to_variant()).__name__
        variant = node.to_variant()
        if kind == "TableScan":
            filters += [render(f) for f in variant.filters()]
            table = variant.table_name()
            break
        if kind == "Filter":
            filters.append(render(variant.predicate()))
        elif kind == "SubqueryAlias":
            relation = variant.alias()
        elif kind != "Projection":
            raise NotDistributable(f"a {kind} below the aggregate")
        node = _only_input(node)
    relation = relation or ".".join(p for p in _fqn(node) if p)
    where = " AND ".join(f"({f})" for f in filters)
    return Decomposition(relation, table, groups, partials, where, upper)


def _only_input(node: LogicalPlan) -> LogicalPlan:
    inputs = node.inputs()
    if len(inputs) != 1:
        raise NotDistributable(f"a {type(node.to_variant()).__name__} with {len(inputs)} inputs")
    return inputs[0]


def _fqn(scan: LogicalPlan) -> tuple[str | None, ...]:
    return tuple(scan.to_variant().fqn())


def _column(expr: Any, where: str) -> str:
    variant = expr.to_variant()
    if type(variant).__name__ != "Column":
        raise NotDistributable(f"{where} on an expression ({expr}), not a plain column")
    return variant.name()


def _partial(expr: Any) -> Partial:
    output = expr.schema_name()
    variant = expr.to_variant()
    if type(variant).__name__ == "Alias":
        raise NotDistributable(f"aliased aggregate {output}")
    if type(variant).__name__ != "AggregateFunction":
        raise NotDistributable(f"{output} is not an aggregate function")
    function = variant.aggregate_type().lower()
    if function not in ("sum", "count", "min", "max", "avg") or variant.is_distinct():
        raise NotDistributable(f"{output} cannot be split exactly")
    args = variant.args()
    if len(args) != 1:
        raise NotDistributable(f"{output} takes {len(args)} arguments")
    arg = args[0].to_variant()
    if function == "count" and type(arg).__name__ == "Literal":
        return Partial("count", None, output)
    return Partial(function, _column(args[0], output), output)


def render(expr: Any) -> str:
    """SQL text for a filter, or NotDistributable when it is not a plain comparison tree."""
    variant = expr.to_variant()
    kind = type(variant).__name__
    if kind == "BinaryExpr":
        op = variant.op().upper()
        if op in ("AND", "OR"):
            return f"({render(variant.left())} {op} {render(variant.right())})"
        if op in _COMPARISONS:
            return f"{_operand(variant.left())} {op} {_operand(variant.right())}"
    elif kind in ("IsNull", "IsNotNull"):
        return f"{_operand(variant.expr())} IS {'NOT ' if kind == 'IsNotNull' else ''}NULL"
    elif kind == "InList":
        values = ", ".join(_operand(v) for v in variant.list())
        return f"{_operand(variant.expr())} {'NOT ' if variant.negated() else ''}IN ({values})"
    elif kind == "Between":
        low, high = _operand(variant.low()), _operand(variant.high())
        negated = "NOT " if variant.negated() else ""
        return f"{_operand(variant.expr())} {negated}BETWEEN {low} AND {high}"
    raise NotDistributable(f"filter {expr} is not a plain comparison")


def _operand(expr: Any) -> str:
    variant = expr.to_variant()
    kind = type(variant).__name__
    if kind == "Column":
        return _quote(variant.name())
    if kind == "Literal":
        return literal(expr.python_value())
    raise NotDistributable(f"{expr} in a filter")


def literal(value: Any) -> str:
    if hasattr(value, "as_py"):
        value = value.as_py()
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise NotDistributable("a non-finite float literal")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        raise NotDistributable("a timestamp literal")  # time zones do not round-trip as text
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    raise NotDistributable(f"a literal of type {type(value).__name__}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "to_variant"):
        inner = value.python_value() if type(value.to_variant()).__name__ == "Literal" else None
        return int(inner.as_py() if hasattr(inner, "as_py") else inner) if inner is not None else None
    return int(value)

