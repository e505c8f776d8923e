"""Splitting a query's optimised plan into per-task fragments and an exact merge.

Everything here reads DataFusion's own optimised ``LogicalPlan``; fragments are built with its
DataFrame API on the plan's own subtrees and expressions, and shipped as SQL written by its
unparser — never from hand-rendered expression text.

The shape looked for: a *driving* frame, scanned once, whose rows flow up to a node ``X``
through operators that treat every row on its own — filters, projections, aliases, and joins in
which the driving side keeps its rows (either side of an inner join; the left of a left, semi or
anti join). That subtree ``P`` computed over a slice of the driving frame's cells, with every
other frame read whole, yields exactly that slice's share of ``P``'s rows, so the union over
the slices is ``P``'s result. Then, by what ``X`` is:

* an aggregate of SUM / COUNT / MIN / MAX / AVG (of any expression, grouped by any
  expressions): each task computes partial aggregates, the coordinator re-aggregates them;
* a sort with a limit (top-k): each task keeps its own top k, the coordinator sorts again;
* nothing (``P`` is the whole query): the coordinator concatenates.

The plan's nodes above that point (projection, HAVING, ORDER BY, LIMIT, an outer aggregate,
DISTINCT, aliases) run at the coordinator over the merged rows, rebuilt from the plan's own
expressions. Anything else raises :class:`NotDistributable` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datafusion import DataFrame, Expr, LogicalPlan, SessionContext
from datafusion import functions as f
from datafusion.substrait import Producer
from datafusion.unparser import Dialect, Unparser

from apiary.sql.plan import scans
from apiary.sql.readonly import READ_ONLY
from apiary.swarm.keys import KeyLink, key_links
from apiary.swarm.plantree import Node, scan_nodes, tree

# Joins in which rows of the given side (0 left, 1 right) are kept row by row.
_PRESERVING = {
    "Inner": (0, 1),
    "Left": (0,),
    "LeftSemi": (0,),
    "LeftAnti": (0,),
    "Right": (1,),
    "RightSemi": (1,),
    "RightAnti": (1,),
}
_ROW_BY_ROW = {"Filter", "Projection", "SubqueryAlias"}
# Nodes the coordinator can replay over merged rows with the plan's own expressions.
_REPLAYABLE = {"Projection", "Filter", "Sort", "Limit", "SubqueryAlias", "Aggregate", "Distinct"}
_SPLITTABLE = {"sum", "count", "min", "max", "avg"}
_SCAN_LINE = re.compile(r"TableScan: (\S+)")


class NotDistributable(Exception):
    """Why a query must run on one node; shown by EXPLAIN and ``last_query.distribution``."""


@dataclass(frozen=True)
class OutField:
    """A column of a plan node's output: DataFusion resolves later references by both parts."""

    qualifier: str | None
    name: str


@dataclass(frozen=True)
class Partial:
    """One aggregate of the plan and the partial columns (``q<n>``) it is merged from."""

    function: str  # sum | count | min | max | avg
    columns: tuple[str, ...]  # avg: (sum column, count column); others: one column


@dataclass
class Split:
    """A query cut at ``X``: what every task runs, and how the coordinator finishes."""

    driving: tuple[str | None, str | None, str]  # the driving scan's name as the plan writes it
    fragment_sql: str  # what every task runs, written by DataFusion's unparser
    shape: str  # "aggregate" | "top-k" | "rows"
    fields: list[OutField]  # X's output (aggregate) or P's output (rows, top-k), in order
    groups: int = 0  # aggregate: the first ``groups`` fields are the GROUP BY values g0, g1, ...
    partials: list[Partial] = field(default_factory=list)
    types: list[Any] = field(default_factory=list)  # aggregate: X's output types (pyarrow)
    upper: list[Any] = field(default_factory=list)  # plan node variants to replay, top first
    scanned: set[tuple[str | None, str | None, str]] = field(default_factory=set)
    links: list[KeyLink] = field(default_factory=list)  # other frames narrowed per task

    def describe(self) -> str:
        name = ".".join(p for p in self.driving if p)
        return f"split by the cells of {name} ({self.shape})"


def split(
    ctx: SessionContext,
    plan: LogicalPlan,
    sizes: dict[tuple[str | None, str | None, str], int],
    sql: str | None = None,
    stand_ins: Callable[[], SessionContext] | None = None,
) -> Split:
    """The distributed form of ``plan`` (``sql`` planned in ``ctx``), driven by the largest
    frame that can drive it; ``sizes`` are the bytes each scanned frame reads after pruning.

    Failing that, and given a way to make another planning context, the same SQL is planned
    without filters pushed into scans and tried again: DataFusion's unparser drops a filter
    pushed into a scan inside a subquery (IN, EXISTS), but writes it as a Filter node, and the
    worker's own planning pushes it down again.
    """
    try:
        return _split(ctx, plan, sizes)
    except NotDistributable as first:
        if sql is None or stand_ins is None:
            raise
        unpushed = stand_ins()
        unpushed.remove_optimizer_rule("push_down_filter")
        try:
            again = unpushed.sql_with_options(sql, READ_ONLY).optimized_logical_plan()
            return _split(unpushed, again, sizes)
        except NotDistributable:
            raise first from None


def _split(
    ctx: SessionContext, plan: LogicalPlan, sizes: dict[tuple[str | None, str | None, str], int]
) -> Split:
    root = tree(plan)
    shown = _SCAN_LINE.findall(plan.display_indent())
    candidates = [
        node for node in scan_nodes(root) if shown.count(_shown_name(node.variant.fqn())) == 1
    ]
    if not candidates:
        raise NotDistributable("every frame it reads is read more than once")
    candidates.sort(key=lambda n: -sizes.get(tuple(n.variant.fqn()), 0))
    reasons = []
    for scan in candidates:
        try:
            found = _split_at(ctx, scan, len(shown))
            found.links = key_links(scan, _top(scan), shown)
            return found
        except NotDistributable as exc:
            reasons.append(f"{_shown_name(scan.variant.fqn())}: {str(exc)[:160]}")
    raise NotDistributable("no frame can drive a split (" + "; ".join(reasons) + ")")


def _shown_name(fqn: Any) -> str:
    return ".".join(p for p in fqn if p)


def _top(scan: Node) -> Node:
    """The highest node the driving ``scan``'s rows reach one by one: the top of ``P``."""
    top = scan
    while top.parent is not None and _keeps_rows(top.parent, top):
        top = top.parent
    return top


def _split_at(ctx: SessionContext, scan: Node, scans_in_plan: int) -> Split:
    top = _top(scan)
    x = top.parent
    upper = []
    node = x.parent if x is not None else None
    while node is not None:
        upper.append(node)
        node = node.parent
    upper.reverse()  # top first
    for node in upper:
        if node.kind not in _REPLAYABLE:
            raise NotDistributable(f"a {node.kind} above the split point")
    inside = (x or top).plan.display_indent().count("TableScan:")
    if scans_in_plan != inside:
        raise NotDistributable("a subquery above the split point")
    driving = tuple(scan.variant.fqn())
    body = ctx.create_dataframe_from_logical_plan(top.plan)
    scanned = {(s.catalog, s.schema, s.table) for s in scans(top.plan)}
    if x is not None and x.kind == "Aggregate":
        types = [f.type for f in ctx.create_dataframe_from_logical_plan(x.plan).schema()]
        return _aggregate(ctx, body, x, upper, driving, scanned, types)
    if x is not None and x.kind not in _REPLAYABLE:
        if x.kind == "Join":
            kind = str(x.variant.join_type())
            raise NotDistributable(
                f"it is on the side of a {kind} join that does not keep its rows"
            )
        raise NotDistributable(f"a {x.kind} over its rows")
    fragment = body
    shape = "rows"
    if x is not None and x.kind == "Sort" and x.variant.get_fetch_val():
        fragment = body.sort(*_sort_exprs(x.variant)).limit(x.variant.get_fetch_val())
        shape = "top-k"
    elif x is not None and x.kind == "Limit":
        fetch, skip = limit_value(x.variant.fetch()), limit_value(x.variant.skip()) or 0
        if fetch is not None:
            fragment = body.limit(fetch + skip)
            shape = "top-k"
    replay = ([x] if x is not None else []) + upper[::-1]
    return Split(
        driving,  # type: ignore[arg-type]
        _sql(ctx, fragment),
        shape,
        _fields(body),
        upper=[n.variant for n in replay[::-1]],
        scanned=scanned,
    )


def _keeps_rows(parent: Node, child: Node) -> bool:
    if parent.kind in _ROW_BY_ROW:
        # A subquery inside a filter or projection runs whole in every task: still exact, as
        # it cannot read the driving frame (which appears only once in the plan).
        return True
    if parent.kind == "Join":
        side = next(i for i, c in enumerate(parent.children) if c is child)
        return side in _PRESERVING.get(str(parent.variant.join_type()), ())
    return False


def _aggregate(
    ctx: SessionContext,
    body: DataFrame,
    x: Node,
    upper: list[Node],
    driving: Any,
    scanned: set[Any],
    types: list[Any],
) -> Split:
    aggregate = x.variant
    groups = [Expr(g) for g in aggregate.group_by_exprs()]
    fields = [_group_field(g) for g in groups]
    named: dict[tuple[str, str], str] = {}  # (function, argument) -> partial column
    exprs: list[Expr] = [g.alias(f"g{i}") for i, g in enumerate(groups)]
    partials = []
    for raw in aggregate.aggregate_exprs():
        expr = Expr(raw)
        fields.append(OutField(None, expr.schema_name()))
        function, argument = _aggregate_call(expr)
        needs = [(function, argument)]
        if function == "avg":
            # AVG of integers reads them as Float64. Summing the integers themselves and
            # dividing at the merge gives the same value, and sum(CAST(v)) beside SUM(v) would
            # be two aggregates DataFusion names alike.
            inner = argument.to_variant()
            if type(inner).__name__ == "Cast" and argument.canonical_name().endswith("AS Float64)"):
                argument = Expr(inner.expr())
            needs = [("sum", argument), ("count", argument)]
        columns = []
        for need_function, arg in needs:
            key = (need_function, arg.canonical_name())
            if key not in named:
                named[key] = f"q{len(named)}"
                call = {"sum": f.sum, "count": f.count, "min": f.min, "max": f.max}[need_function]
                exprs.append(call(arg).alias(named[key]))
            columns.append(named[key])
        partials.append(Partial(function, tuple(columns)))
    fragment = body.aggregate(exprs[: len(groups)], exprs[len(groups) :])
    return Split(
        driving,
        _sql(ctx, fragment),
        "aggregate",
        fields,
        groups=len(groups),
        partials=partials,
        types=types,
        upper=[n.variant for n in upper],
        scanned=scanned,
    )


def _aggregate_call(expr: Expr) -> tuple[str, Expr]:
    variant = expr.to_variant()
    if type(variant).__name__ == "Alias":
        variant = variant.expr().to_variant()
    if type(variant).__name__ != "AggregateFunction":
        raise NotDistributable(f"{expr.schema_name()} is not a plain aggregate")
    function = variant.aggregate_type().lower()
    text = expr.canonical_name()
    if function not in _SPLITTABLE or variant.is_distinct():
        raise NotDistributable(f"{expr.schema_name()} cannot be split exactly")
    if " FILTER (" in text or " ORDER BY " in text:
        raise NotDistributable(f"{expr.schema_name()} has a FILTER or ORDER BY")
    args = variant.args()
    if len(args) != 1:
        raise NotDistributable(f"{expr.schema_name()} takes {len(args)} arguments")
    return function, Expr(args[0])


def _group_field(expr: Expr) -> OutField:
    variant = expr.to_variant()
    if type(variant).__name__ == "Column":
        return OutField(variant.relation(), variant.name())
    return OutField(None, expr.schema_name())


def _fields(df: DataFrame) -> list[OutField]:
    """``df``'s output columns with their qualifiers (DataFusion prints them as ``q.name``)."""
    out = []
    for qualified, arrow_field in zip(
        df.logical_plan().to_variant().schema().field_names(), df.schema(), strict=True
    ):
        name = arrow_field.name
        qualifier = qualified[: -len(name) - 1] if qualified != name else None
        out.append(OutField(qualifier or None, name))
    return out


def _sort_exprs(sort: Any) -> list[Any]:
    from datafusion.expr import SortExpr

    return [SortExpr(Expr(e.expr()), e.ascending(), e.nulls_first()) for e in sort.sort_exprs()]


def limit_value(value: Any) -> int | None:
    """A LIMIT's skip / fetch: None, an int, or a literal expression."""
    if value is None:
        return None
    if hasattr(value, "to_variant"):
        if type(value.to_variant()).__name__ != "Literal":
            raise NotDistributable("a LIMIT that is not a constant")
        value = value.python_value()
        value = value.as_py() if hasattr(value, "as_py") else value
    return None if value is None else int(value)


def _substrait(ctx: SessionContext, df: DataFrame) -> bytes:
    try:
        return Producer.to_substrait_plan(df.logical_plan(), ctx).encode()
    except Exception as exc:  # a plan DataFusion cannot write as Substrait
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NotDistributable(f"its fragment cannot be shipped ({first[:200]})") from None


def _sql(ctx: SessionContext, df: DataFrame) -> str:
    """The fragment as SQL, checked to plan back to exactly the same optimised plan (the
    unparser can drop a filter pushed into a scan inside a subquery; such a fragment would
    give a wrong answer, so it is refused instead)."""
    try:
        sql = str(Unparser(Dialect.default()).plan_to_sql(df.logical_plan()))
        again = ctx.sql_with_options(sql, READ_ONLY).optimized_logical_plan()
    except Exception as exc:  # a plan DataFusion cannot write back as SQL
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NotDistributable(f"its fragment cannot be written as SQL ({first[:200]})") from None
    if _normal(again) != _normal(df.optimized_logical_plan()):
        raise NotDistributable("DataFusion's unparser cannot write its fragment exactly as SQL")
    return sql


_SELECTS = re.compile(r"^\s*(TableScan|Filter|\w+ Join):")
_GENERATED = re.compile(r"__(?:correlated|scalar)_sq_\d+|__common_expr_\d+")
_DECIMAL = re.compile(r"Decimal128\(\d+, \d+\)")
_SCHEMA = re.compile(r"\[([^\[\]]*)\]$")


def _normal(plan: LogicalPlan) -> tuple[list[str], list[str]]:
    """What decides which rows a plan reads — its scans, filters and joins — and its output
    columns, with the names DataFusion generates for subqueries masked."""
    lines = plan.display_indent_schema().splitlines()
    deciding = sorted(
        _GENERATED.sub("_", _SCHEMA.sub("", line).strip()) for line in lines if _SELECTS.match(line)
    )
    # Decimal literals may come back with another precision; values are exact either way and
    # the merge casts every column to the type the plan gives it.
    shown = _SCHEMA.search(lines[0])
    columns = sorted(_DECIMAL.sub("Decimal", shown[1]).split(", ")) if shown else []
    return deciding, columns


def replay(df: DataFrame, upper: list[Any]) -> DataFrame:
    """Apply the plan's own nodes above the split point (top first) to the merged rows."""
    from datafusion.expr import SortExpr

    for node in reversed(upper):
        kind = type(node).__name__
        if kind == "Filter":
            df = df.filter(Expr(node.predicate()))
        elif kind == "Projection":
            df = df.select(*[Expr(e) for e in node.projections()])
        elif kind == "Sort":
            df = df.sort(
                *[
                    SortExpr(Expr(e.expr()), e.ascending(), e.nulls_first())
                    for e in node.sort_exprs()
                ]
            )
            if node.get_fetch_val():
                df = df.limit(node.get_fetch_val())
        elif kind == "Limit":
            df = df.limit(limit_value(node.fetch()), limit_value(node.skip()) or 0)
        elif kind == "SubqueryAlias":
            df = df.alias(node.alias())
        elif kind == "Aggregate":
            df = df.aggregate(
                [Expr(g) for g in node.group_by_exprs()], [Expr(a) for a in node.aggregate_exprs()]
            )
        elif kind == "Distinct":
            df = df.distinct()
        else:  # pragma: no cover - refused by split()
            raise NotDistributable(f"a {kind} above the split point")
    return df
