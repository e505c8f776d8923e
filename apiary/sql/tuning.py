"""DataFusion options chosen per query from the shape of its optimised plan (pure logic).

Bees evaluate filters after decoding (``pushdown_filters`` off, runtime.bees.TUNED): a WHERE
range evaluated row by row inside the Parquet decoder costs more than filtering decoded
batches. On TPC-H SF1 over Apiary's cells, 2 cores, pushdown made Q6 1.74x slower and Q5, Q7,
Q8, Q9, Q12, Q15 and Q22 1.36-1.43x.

It pays in one shape: a join on the GROUP BY key of an aggregate over a frame, where the join's
other side is filtered or the aggregate's result is (HAVING). DataFusion pushes the join's key
filter, built from the selective side, into that frame's scan, so the aggregate computes only
the groups the join keeps instead of all of them. That is how a correlated subquery is planned
(TPC-H Q17: 0.45 of the time with pushdown) and an IN over a grouped subquery with HAVING (Q18:
0.76). Where the aggregate reads its frame through a WHERE, the WHERE is evaluated row by row
too, and only a filtered other side pays for that: Q20 (partsupp narrowed by part) 0.80;
Q15, narrowed only by a HAVING on the aggregate's own result, 1.41.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from datafusion import Expr, LogicalPlan

from apiary.sql.plan import column_name, projected

PUSHDOWN = "datafusion.execution.parquet.pushdown_filters"

# Join types by the sides whose rows the join may drop (where a key filter can reach).
_FILTERABLE = {
    "Inner": (0, 1),
    "LeftSemi": (0, 1),
    "RightSemi": (0, 1),
    "Left": (1,),
    "LeftAnti": (1,),
    "Right": (0,),
    "RightAnti": (0,),
}


@dataclass(frozen=True)
class Suited:
    """Options a plan's shape asks for, with the reason (EXPLAIN and ``last_query``)."""

    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def suited(plan: LogicalPlan) -> Suited:
    """The options that suit ``plan`` beyond the bees' defaults (none for most plans)."""
    for join in _joins(plan):
        variant = join.to_variant()
        sides = join.inputs()
        for side in _FILTERABLE.get(str(variant.join_type()), ()):
            for pair in variant.on():
                name = column_name(Expr(pair[side]))
                if name is None:
                    continue
                grouped = _grouped(sides[side], name)
                if grouped is None:
                    continue
                having, where = grouped
                filtered = _filtered(sides[1 - side])
                if not (filtered or (having and not where)):
                    continue
                why = "the other side's filter" if filtered else "its HAVING"
                over = "a frame read through a WHERE" if where else "a whole frame"
                return Suited(
                    {PUSHDOWN: "true"},
                    f"filters evaluated in the Parquet scan: a join on {name}, the GROUP BY key "
                    f"of an aggregate over {over}, narrowed by {why}",
                )
    return Suited()


def applied(chosen: Suited, *over: Mapping[str, str]) -> dict[str, str]:
    """``chosen``'s options that none of ``over`` names: the node's own settings and a
    session's SETs are choices someone made, and win over the plan's shape."""
    return {k: v for k, v in chosen.options.items() if not any(k in o for o in over)}


def _joins(plan: LogicalPlan) -> Iterator[LogicalPlan]:
    if type(plan.to_variant()).__name__ == "Join":
        yield plan
    for child in plan.inputs():
        yield from _joins(child)


def _grouped(plan: LogicalPlan, name: str) -> tuple[bool, bool] | None:
    """Follow column ``name`` down from ``plan`` through aliases, projections and filters to an
    aggregate grouped by it that reads one frame: whether a filter (HAVING) was passed on the
    way and whether the frame is read through a WHERE, or None when the column does not lead
    to such an aggregate."""
    having = False
    node = plan
    while True:
        variant = node.to_variant()
        kind = type(variant).__name__
        if kind == "SubqueryAlias":
            pass
        elif kind == "Filter":
            having = True
        elif kind == "Projection":
            found = projected(variant, name)
            if found is None:
                return None
            name = found[1]
        elif kind == "Aggregate":
            groups = {column_name(Expr(g)) for g in variant.group_by_exprs()}
            if name not in groups or (scan := _scan(node.inputs()[0])) is None:
                return None
            return having, scan
        else:
            return None
        node = node.inputs()[0]


def _scan(plan: LogicalPlan) -> bool | None:
    """Whether ``plan`` reads one frame (a scan, or a union of scans: a view over files, through
    projections and aliases) through a WHERE; None when it reads anything else."""
    variant = plan.to_variant()
    kind = type(variant).__name__
    if kind in ("Projection", "SubqueryAlias", "Union", "Filter"):
        found = [_scan(child) for child in plan.inputs()]
        if any(f is None for f in found):
            return None
        return kind == "Filter" or any(found)
    return bool(variant.filters()) if kind == "TableScan" else None


def _filtered(plan: LogicalPlan) -> bool:
    """Whether anything under ``plan`` filters rows by a WHERE condition."""
    variant = plan.to_variant()
    kind = type(variant).__name__
    if kind == "Filter" or (kind == "TableScan" and variant.filters()):
        return True
    return any(_filtered(child) for child in plan.inputs())
