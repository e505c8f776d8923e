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
import re
from dataclasses import dataclass, field
from typing import Any

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
    argument: str | None  # SQL for the aggregated value; None for count(*)
    output: str  # the aggregate's column name in DataFusion's plan, e.g. "sum(t.x)"


@dataclass
class Decomposition:
    relation: str  # how the plan names the frame, e.g. "farm.sensors.temps"
    table: str  # the scan's table part, e.g. "temps" or "temps@v3"
    groups: list[str]
    partials: list[Partial]
    where: str  # SQL text, "" for none
    upper: list[Any] = field(default_factory=list)  # plan nodes above the aggregate, top first

    def pieces(self) -> dict[tuple[str, str], str]:
        """Each distinct partial aggregate a task computes, named q0, q1, ...

        DataFusion refuses two identical aggregates in one SELECT, and ``sum(v), avg(v)`` both
        need ``sum(v)``, so partials are shared.
        """
        named: dict[tuple[str, str], str] = {}
        for part in self.partials:
            for need in _needs(part):
                named.setdefault(need, f"q{len(named)}")
        return named

    def fragment_sql(self, table: str = "task_cells") -> str:
        """What each task runs over its own cells."""
        select = [f"{_quote(g)} AS g{i}" for i, g in enumerate(self.groups)]
        select += [f"{fn}({arg}) AS {name}" for (fn, arg), name in self.pieces().items()]
        sql = f"SELECT {', '.join(select)} FROM {table}"
        if self.where:
            sql += f" WHERE {self.where}"
        if self.groups:
            sql += " GROUP BY " + ", ".join(_quote(g) for g in self.groups)
        return sql

    def merge_sql(self, table: str = "partials") -> str:
        """Re-aggregate the partials into the columns the original aggregate produces."""
        named = self.pieces()
        select = [f"g{i} AS {_quote(g)}" for i, g in enumerate(self.groups)]
        for part in self.partials:
            first, *rest = (named[need] for need in _needs(part))
            if part.function == "avg":
                expr = f"CAST(sum({first}) AS DOUBLE) / CAST(sum({rest[0]}) AS DOUBLE)"
            elif part.function == "count":
                expr = f"CAST(COALESCE(sum({first}), 0) AS BIGINT)"
            else:
                expr = f"{part.function}({first})"  # sum of sums, min of mins, max of maxes
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


def _needs(part: Partial) -> list[tuple[str, str]]:
    arg = part.argument or "*"
    if part.function == "avg":
        return [("sum", arg), ("count", arg)]
    return [(part.function, arg)]


def decompose(plan: LogicalPlan) -> Decomposition:
    """The distributed form of ``plan``, or :class:`NotDistributable` saying why not."""
    upper = []
    node = plan
    while type(node.to_variant()).__name__ in _UPPER:
        variant = node.to_variant()
        if type(variant).__name__ == "Limit":  # only constant limits can be replayed
            _int_or_none(variant.fetch())
            _int_or_none(variant.skip())
        upper.append(variant)
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
    if function == "avg" and type(arg).__name__ == "Cast":
        # AVG of integers reads them as Float64; summing the integers and dividing in floating
        # point at the merge gives the same value, and a second sum(v) would clash with SUM(v).
        return Partial("avg", _quote(_column(arg.expr(), output)), output)
    return Partial(function, _argument(args[0], output), output)


_CASTS = {"Float64": "DOUBLE", "Int64": "BIGINT"}


def _argument(expr: Any, output: str) -> str:
    """A plain column, or the widening cast DataFusion adds (AVG of integers reads Float64)."""
    variant = expr.to_variant()
    if type(variant).__name__ == "Cast":
        match = re.fullmatch(r"CAST\((.+) AS (\w+)\)", expr.canonical_name())
        if match and match[2] in _CASTS:
            return f"CAST({_quote(_column(variant.expr(), output))} AS {_CASTS[match[2]]})"
    return _quote(_column(expr, output))


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
    """A LIMIT's skip / fetch: None, an int, or a literal expression."""
    if value is None:
        return None
    if hasattr(value, "to_variant"):
        if type(value.to_variant()).__name__ != "Literal":
            raise NotDistributable("a LIMIT that is not a constant")
        value = value.python_value()
        value = value.as_py() if hasattr(value, "as_py") else value
    return None if value is None else int(value)
