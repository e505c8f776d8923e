"""Per-query DataFusion options from the plan's shape (sql.tuning), on real DataFusion plans."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datafusion import SessionContext

from apiary.sql.sources import placeholder
from apiary.sql.tuning import PUSHDOWN, suited

LINES = pa.schema([("orderkey", pa.int64()), ("partkey", pa.int64()), ("qty", pa.int64())])
PARTS = pa.schema([("partkey", pa.int64()), ("brand", pa.string())])


def plan_of(sql: str):
    ctx = SessionContext()
    ctx.register_table("lines", placeholder(LINES))
    ctx.register_table("parts", placeholder(PARTS))
    return ctx.sql(sql).optimized_logical_plan()


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        (  # a correlated subquery: TPC-H Q17's shape
            "SELECT sum(l.qty) FROM lines l JOIN parts p ON p.partkey = l.partkey "
            "WHERE p.brand = 'b1' AND l.qty < "
            "(SELECT 0.2 * avg(qty) FROM lines WHERE partkey = p.partkey)",
            "the other side's filter",
        ),
        (  # IN over a grouped subquery with HAVING: TPC-H Q18's shape
            "SELECT orderkey, sum(qty) FROM lines WHERE orderkey IN "
            "(SELECT orderkey FROM lines GROUP BY orderkey HAVING sum(qty) > 300) "
            "GROUP BY orderkey",
            "its HAVING",
        ),
        (  # the same by hand: a join with a derived table grouped by the join key
            "SELECT p.brand, t.n FROM parts p JOIN "
            "(SELECT partkey, count(*) AS n FROM lines GROUP BY partkey) t "
            "ON t.partkey = p.partkey WHERE p.brand = 'b1'",
            "the other side's filter",
        ),
        (  # the aggregate reads its frame through a WHERE, the other side is filtered: Q20
            "SELECT p.brand, t.n FROM parts p JOIN "
            "(SELECT partkey, count(*) AS n FROM lines WHERE qty > 3 GROUP BY partkey) t "
            "ON t.partkey = p.partkey WHERE p.brand = 'b1'",
            "read through a WHERE, narrowed by the other side's filter",
        ),
    ],
)
def test_a_selective_join_on_a_whole_frames_group_key_evaluates_filters_in_the_scan(
    sql: str, why: str
) -> None:
    chosen = suited(plan_of(sql))
    assert chosen.options == {PUSHDOWN: "true"}
    assert "GROUP BY key" in chosen.reason and why in chosen.reason


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sum(qty) FROM lines WHERE qty < 24",  # a WHERE range: row by row costs more
        "SELECT p.brand, sum(l.qty) FROM lines l JOIN parts p ON p.partkey = l.partkey "
        "WHERE p.brand = 'b1' GROUP BY p.brand",  # a join, but no aggregate below it
        # through a WHERE, narrowed only by its own HAVING: TPC-H Q15's shape (1.41x slower)
        "SELECT p.brand, t.n FROM parts p JOIN "
        "(SELECT partkey, count(*) AS n FROM lines WHERE qty > 3 GROUP BY partkey "
        "HAVING count(*) > 2) t ON t.partkey = p.partkey",
        # nothing selective: every group is wanted
        "SELECT p.brand, t.n FROM parts p JOIN "
        "(SELECT partkey, count(*) AS n FROM lines GROUP BY partkey) t ON t.partkey = p.partkey",
        # the aggregate is on the side a LEFT JOIN keeps whole
        "SELECT t.partkey, t.n, p.brand FROM "
        "(SELECT partkey, count(*) AS n FROM lines GROUP BY partkey) t "
        "LEFT JOIN parts p ON t.partkey = p.partkey AND p.brand = 'b1'",
        # joined on a column that is not the group key
        "SELECT p.brand, t.n FROM parts p JOIN "
        "(SELECT partkey, max(orderkey) AS m, count(*) AS n FROM lines GROUP BY partkey) t "
        "ON t.m = p.partkey WHERE p.brand = 'b1'",
    ],
)
def test_other_shapes_keep_the_bees_defaults(sql: str) -> None:
    chosen = suited(plan_of(sql))
    assert chosen.options == {}
    assert chosen.reason == ""
