"""Reading DataFusion's optimised logical plan: which tables a query scans, with which filters.

The optimiser has already pushed WHERE conjuncts down to the scans (``full_filters``) and
normalised BETWEEN and small IN lists; this module turns those expressions into
:mod:`apiary.sql.pruning` predicates. Anything it does not recognise is simply not used for
pruning, which is always safe.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datafusion import Expr, LogicalPlan

from apiary.sql.pruning import And, Cmp, InList, IsNull, Or, Predicate

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


@dataclass
class Scan:
    """One table scan: the name parts as written (missing parts are None) and its filters."""

    catalog: str | None
    schema: str | None
    table: str
    predicates: list[Predicate] = field(default_factory=list)


def scans(plan: LogicalPlan) -> list[Scan]:
    """Every scan in the plan, including those inside subquery expressions.

    The plan tree reached through ``inputs()`` misses subqueries that live inside expressions
    (``x < (SELECT max(x) FROM t)``). Those still appear in DataFusion's own rendering of the
    plan, so every scan counted there but not reached is added without filters: its frame is
    then read whole rather than pruned by another scan's WHERE clause.
    """
    found: list[Scan] = []
    _collect(plan, found)
    reached = Counter(_display_name(scan) for scan in found)
    shown = Counter(_SCAN_LINE.findall(plan.display_indent()))
    for name, count in shown.items():
        for _ in range(count - reached[name]):
            # A version suffix may hold dots ("f@2026-11-30T12:00:00.5Z"): split before it.
            head, at, suffix = name.partition("@")
            parts = head.split(".")
            parts[-1] += at + suffix
            found.append(Scan(*([None] * (3 - len(parts)) + parts)))  # type: ignore[arg-type]
    return found


_SCAN_LINE = re.compile(r"TableScan: (\S+)")


def _display_name(scan: Scan) -> str:
    return ".".join(p for p in (scan.catalog, scan.schema, scan.table) if p)


def _collect(plan: LogicalPlan, found: list[Scan]) -> None:
    variant = plan.to_variant()
    if type(variant).__name__ == "TableScan":
        catalog, schema, table = variant.fqn()
        preds = [p for p in (to_predicate(f) for f in variant.filters()) if p is not None]
        found.append(Scan(catalog, schema, table, preds))
    for child in plan.inputs():
        _collect(child, found)


def to_predicate(expr: Expr) -> Predicate | None:
    """The pruning predicate for ``expr``, or None when it cannot help prune."""
    variant = expr_variant(expr)
    kind = type(variant).__name__
    if kind == "BinaryExpr":
        op = variant.op().upper()
        if op in ("AND", "OR"):
            left, right = to_predicate(variant.left()), to_predicate(variant.right())
            if op == "AND":
                parts = tuple(p for p in (left, right) if p is not None)
                return (And(parts) if len(parts) > 1 else parts[0]) if parts else None
            return Or((left, right)) if left is not None and right is not None else None
        if op not in _FLIP:
            return None
        column, value = column_name(variant.left()), _literal(variant.right())
        if column is not None and value is not _NOT_LITERAL:
            return Cmp(column, op, value)
        column, value = column_name(variant.right()), _literal(variant.left())
        if column is not None and value is not _NOT_LITERAL:
            return Cmp(column, _FLIP[op], value)
        return None
    if kind in ("IsNull", "IsNotNull"):
        column = column_name(variant.expr())
        return IsNull(column, negated=kind == "IsNotNull") if column else None
    if kind == "InList":
        column = column_name(variant.expr())
        values = tuple(_literal(v) for v in variant.list())
        if column is None or _NOT_LITERAL in values:
            return None
        return InList(column, values, negated=variant.negated())
    if kind == "Between":
        column = column_name(variant.expr())
        low, high = _literal(variant.low()), _literal(variant.high())
        if column is None or _NOT_LITERAL in (low, high):
            return None
        if variant.negated():
            return Or((Cmp(column, "<", low), Cmp(column, ">", high)))
        return And((Cmp(column, ">=", low), Cmp(column, "<=", high)))
    return None


_NOT_LITERAL = object()


def expr_variant(expr: Expr) -> Any:
    """``expr``'s variant, or None for one the bindings cannot convert (a scalar function
    such as ``substring(c, 1, 2)``): such an expression can never prune, nor pass a column on."""
    try:
        return expr.to_variant()
    except ValueError:
        return None


def column_name(expr: Expr) -> str | None:
    """The name of the column ``expr`` is, or None when it is anything else."""
    variant = expr_variant(expr)
    return variant.name() if type(variant).__name__ == "Column" else None


def projected(
    projection: Any, name: str, qualifier: str | None = None
) -> tuple[str | None, str] | None:
    """The input column, as (qualifier, name), that a Projection variant outputs unchanged as
    column ``name`` (of relation ``qualifier``, when given; an alias has none); None when the
    projection computes it or does not output it."""
    for raw in projection.projections():
        variant = expr_variant(Expr(raw))
        kind = type(variant).__name__
        if kind == "Alias":
            if qualifier is None and variant.alias() == name:
                inner = expr_variant(Expr(variant.expr()))
                if type(inner).__name__ != "Column":
                    return None
                return inner.relation(), inner.name()
        elif (
            kind == "Column"
            and variant.name() == name
            and (qualifier is None or variant.relation() == qualifier)
        ):
            return variant.relation(), variant.name()
    return None


def _literal(expr: Expr) -> Any:
    if type(expr_variant(expr)).__name__ != "Literal":
        return _NOT_LITERAL
    value = expr.python_value()
    return value.as_py() if hasattr(value, "as_py") else value
