"""Read-only SQL: the statement options every query runs with, and a check of a plan's shape.

A user's SQL (``Apiary.sql``) and a distributed query's fragment (read by a worker from the
bucket, so untrusted) both run with :data:`READ_ONLY`, which makes DataFusion refuse DDL
(CREATE EXTERNAL TABLE), DML (INSERT, COPY ... TO) and statements (SET, PREPARE) *before*
anything runs. :func:`check_read_only` then looks at the plan itself: only query nodes, and
only scans of the tables the caller registered (no table functions, information_schema, URL
tables). It works on any ``LogicalPlan``, however it was made (SQL text or plan bytes).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from datafusion import DataFrame, LogicalPlan, SessionContext, SQLOptions

from apiary.errors import SqlError
from apiary.sql.plan import scans

READ_ONLY = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)

# Plan nodes that only compute over their inputs. Everything else (Explain, Analyze, Copy, Dml,
# Ddl, Statement, DescribeTable, Extension, ...) is refused.
_QUERY_NODES = {
    "Aggregate",
    "Distinct",
    "EmptyRelation",
    "Filter",
    "Join",
    "Limit",
    "Projection",
    "Sort",
    "Subquery",
    "SubqueryAlias",
    "TableScan",
    "Union",
    "Unnest",
    "Values",
    "WindowExpr",
}
# The same nodes as DataFusion's rendering names them (joins show as "<Kind> Join"). The
# rendering also shows subqueries inside expressions, which the ``inputs()`` walk does not reach.
_SHOWN_NODES = (_QUERY_NODES - {"Join", "WindowExpr"}) | {"DistinctOn", "WindowAggr"}
_SHOWN_LABEL = re.compile(r"^\s*([A-Za-z]+(?: Join)?)(?::|$)")


Tables = Collection[str | tuple[str, str, str]]  # names in the default schema, or full names
DEFAULT = ("datafusion", "public")


def plan_read_only(
    ctx: SessionContext, sql: str, tables: Tables, default: tuple[str, str] = DEFAULT
) -> DataFrame:
    """``sql`` planned in ``ctx`` under :data:`READ_ONLY` and checked; not yet run.

    ``default`` is the catalog and schema ``ctx`` resolves unqualified names in."""
    try:
        df = ctx.sql_with_options(sql, READ_ONLY)
    except Exception as exc:  # DataFusion refuses before executing anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SqlError(f"{first[:300]} (only read-only queries run here)") from None
    check_read_only(df.optimized_logical_plan(), tables, default)
    return df


def check_read_only(plan: LogicalPlan, tables: Tables, default: tuple[str, str] = DEFAULT) -> None:
    """Raise :class:`SqlError` unless ``plan`` is a query that reads only ``tables``."""
    kinds: list[str] = []
    _walk(plan, kinds)
    labels = [m.group(1) for m in map(_SHOWN_LABEL.match, plan.display_indent().splitlines()) if m]
    odd = sorted(
        {k for k in kinds if k not in _QUERY_NODES}
        | {x for x in labels if x not in _SHOWN_NODES and not x.endswith(" Join")}
    )
    if odd:
        raise SqlError(f"only read-only queries run here; this plan has {', '.join(odd)}")
    allowed = {(*default, t) if isinstance(t, str) else tuple(t) for t in tables}
    for scan in scans(plan):
        full = (scan.catalog or default[0], scan.schema or default[1], scan.table)
        if full not in allowed:
            shown = ".".join(p for p in (scan.catalog, scan.schema, scan.table) if p)
            names = sorted(".".join(name) for name in allowed)
            raise SqlError(
                f"only read-only queries over {', '.join(names)[:300]} run here; "
                f"this one reads {shown[:100]}"
            )


def _walk(plan: LogicalPlan, kinds: list[str]) -> None:
    try:
        kinds.append(type(plan.to_variant()).__name__)
    except Exception:  # a node the bindings cannot even describe is not a plain query node
        kinds.append("an unsupported node")
    for child in plan.inputs():
        _walk(child, kinds)
