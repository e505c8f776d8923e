"""A CTE the query names more than once is computed once (sql.ctes): the same answer, said in
``last_query`` and EXPLAIN; a CTE whose references read differently is left to DataFusion."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from datafusion import SessionContext

from apiary import Apiary
from apiary.sql.ctes import computed_once
from apiary.sql.sources import placeholder

READINGS = pa.schema([("device", pa.string()), ("v", pa.int64())])

# TPC-H Q15's shape: the CTE's rows, and its maximum through a scalar subquery.
TOP = (
    "WITH totals (device, total) AS (SELECT device, sum(v) FROM readings GROUP BY device) "
    "SELECT device, total FROM totals WHERE total = (SELECT max(total) FROM totals) "
    "ORDER BY device"
)
# Each reference filters on the group key, which DataFusion pushes below the aggregate.
PER_DEVICE = (
    "WITH t AS (SELECT device, sum(v) AS s FROM readings GROUP BY device) "
    "SELECT * FROM t WHERE device = 'd1' UNION ALL SELECT * FROM t WHERE device = 'd2'"
)


def plan_of(sql: str):
    ctx = SessionContext()
    ctx.register_table("readings", placeholder(READINGS))
    return ctx.sql(sql).optimized_logical_plan()


def test_the_cte_is_cut_from_the_query_with_its_column_names() -> None:
    once = computed_once(TOP, plan_of(TOP))
    assert once is not None and once.names == ["totals"]
    assert once.first == (
        (
            "totals",
            "WITH totals (device, total) AS (SELECT device, sum(v) FROM readings GROUP BY "
            "device) SELECT * FROM totals",
        ),
    )
    assert once.main.startswith("SELECT device, total FROM totals WHERE")


def test_ctes_before_the_repeated_one_go_with_it_and_stay_in_the_query() -> None:
    sql = (
        "-- positive readings only\n"
        "WITH pos AS (SELECT * FROM readings WHERE v > 0), "
        "t AS (SELECT device, sum(v) AS s FROM pos GROUP BY device) "
        "SELECT a.device FROM t a JOIN (SELECT max(s) AS m FROM t) b ON a.s = b.m;"
    )
    once = computed_once(sql, plan_of(sql))
    assert once is not None and once.names == ["t"]
    assert once.first[0][1].startswith("WITH pos AS (SELECT * FROM readings WHERE v > 0), t AS")
    assert once.first[0][1].endswith("SELECT * FROM t")
    assert once.main.startswith("WITH pos AS (SELECT * FROM readings WHERE v > 0) SELECT a.")
    assert not once.main.endswith(";")


@pytest.mark.parametrize(
    "sql",
    [
        PER_DEVICE,
        # named once
        "WITH t AS (SELECT device, sum(v) AS s FROM readings GROUP BY device) SELECT * FROM t",
        # no aggregate: each reference is a scan DataFusion streams
        "WITH t AS (SELECT * FROM readings WHERE v > 1) "
        "SELECT * FROM t a JOIN t b ON a.device = b.device",
        # a quoted name, and a CTE of constants
        'WITH "T" AS (SELECT device, sum(v) AS s FROM readings GROUP BY device) '
        'SELECT * FROM "T" a JOIN "T" b ON a.s = b.s',
        "WITH c AS (SELECT max(x) AS m FROM (VALUES (1), (2)) AS v(x)) SELECT * FROM c a, c b",
        "SELECT device, sum(v) FROM readings GROUP BY device",  # no WITH at all
    ],
)
def test_ctes_whose_references_read_differently_or_little_are_left_inline(sql: str) -> None:
    assert computed_once(sql, plan_of(sql)) is None


@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE t AS (SELECT 1 AS n) SELECT * FROM t a, t b",
        "WITH t AS (SELECT device, sum(v) AS s FROM readings GROUP BY device SELECT * FROM t",
        "WITH t AS (SELECT ')' AS s, count(*) AS n FROM readings GROUP BY 1) SELECT * FROM t a",
    ],
)
def test_a_with_clause_that_does_not_read_as_ctes_then_a_query_is_left_alone(sql: str) -> None:
    try:
        plan = plan_of(sql)
    except Exception:  # not even DataFusion plans it: the cut must not either
        plan = plan_of("SELECT 1")
    assert computed_once(sql, plan) is None


# -- through Apiary ----------------------------------------------------------------------------


def totals(rows: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for device, v in rows:
        out[device] = out.get(device, 0) + v
    return out


@pytest.fixture
def ap(tmp_path: Path):
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "readings", {"device": "string", "v": "int64"})
        for cell in range(3):  # a few cells
            rows = [(f"d{(i * 7 + cell) % 5}", i * (cell + 1) % 97) for i in range(400)]
            ap.write_to_frame("h", "b", "readings", pa.table({
                "device": [d for d, _ in rows], "v": [v for _, v in rows]}))  # fmt: skip
        ap.sql("USE HIVE h")
        ap.sql("USE BOX b")
        yield ap


def all_rows(ap: Apiary) -> list[tuple[str, int]]:
    table = ap.read_from_frame("h", "b", "readings")
    return list(zip(table.column("device").to_pylist(), table.column("v").to_pylist(), strict=True))


def test_a_cte_named_twice_is_computed_once_with_the_same_answer(ap: Apiary) -> None:
    sums = totals(all_rows(ap))
    top = max(sums.values())
    got = ap.sql(TOP).to_pylist()
    assert got == [{"device": d, "total": t} for d, t in sorted(sums.items()) if t == top]
    assert ap.last_query.computed_once == ["totals"]
    explained = ap.sql("EXPLAIN " + TOP)
    kinds, plans = (explained.column(c).to_pylist() for c in ("plan_type", "plan"))
    rows = dict(zip(kinds, plans, strict=True))
    assert "totals" in rows["apiary common table expressions"]
    # the kept table went with the query: the next one cannot read it
    with pytest.raises(Exception, match="totals"):
        ap.sql("SELECT * FROM totals")


def test_a_cte_whose_references_filter_differently_is_computed_where_named(ap: Apiary) -> None:
    sums = totals(all_rows(ap))
    got = sorted((r["device"], r["s"]) for r in ap.sql(PER_DEVICE).to_pylist())
    assert got == [("d1", sums["d1"]), ("d2", sums["d2"])]
    assert ap.last_query.computed_once == []


def test_a_cte_named_like_a_frame_the_query_reads_stays_inline(ap: Apiary) -> None:
    """``readings`` the CTE shadows the frame by its bare name; the frame is still read as
    h.b.readings, so the CTE's rows cannot be kept under that name in h.b."""
    sql = (
        "WITH readings AS (SELECT device, sum(v) AS v FROM h.b.readings GROUP BY device) "
        "SELECT count(*) AS n FROM readings a JOIN readings b ON a.v = b.v"
    )
    sums = totals(all_rows(ap))
    expected = sum(1 for a in sums.values() for b in sums.values() if a == b)
    assert ap.sql(sql).column("n").to_pylist() == [expected]
    assert ap.last_query.computed_once == []


def test_rows_larger_than_the_bee_leave_the_query_to_run_as_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="apiary.sql.session")
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        ap.settings.memory_per_bee = 16 << 20  # before the bees exist
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "big", {"k": "int64", "v": "int64"})
        n = 1_200_000  # 19 MB of (k, sum) rows: more than the bee holds as a result
        keys = pa.array(range(n), pa.int64())
        ap.write_to_frame("h", "b", "big", pa.table({"k": keys, "v": keys}))
        sql = (
            "WITH t AS (SELECT k, sum(v) AS s FROM h.b.big GROUP BY k) "
            "SELECT s FROM t WHERE s = (SELECT max(s) FROM t)"
        )
        assert ap.sql(sql).column("s").to_pylist() == [n - 1]
        assert ap.last_query.computed_once == []  # tried, then dropped:
        assert "CTEs ['t'] not computed first" in caplog.text
        assert "larger than bee" in caplog.text


def test_a_cte_computed_once_feeds_a_join_without_equality_and_an_insert(ap: Apiary) -> None:
    """A join with no equality is a plan DataFusion cannot stop, run in a sealed child when
    it reads only cells; over the kept rows it runs in the bee (they cannot be sent)."""
    sums = totals(all_rows(ap))
    sql = (
        "WITH t AS (SELECT device, sum(v) AS s FROM readings GROUP BY device) "
        "SELECT a.device AS lo, b.device AS hi FROM t a, t b WHERE a.s < b.s ORDER BY 1, 2"
    )
    expected = sorted((a, b) for a in sums for b in sums if sums[a] < sums[b])
    assert [(r["lo"], r["hi"]) for r in ap.sql(sql).to_pylist()] == expected
    assert ap.last_query.computed_once == ["t"]
    ap.create_frame("h", "b", "tops", {"device": "string", "s": "int64"})
    done = ap.sql(
        "INSERT INTO tops WITH t AS (SELECT device, sum(v) AS s FROM readings GROUP BY device) "
        "SELECT a.device, a.s FROM t a JOIN (SELECT max(s) AS m FROM t) b ON a.s = b.m"
    ).to_pylist()[0]
    top = max(sums.values())
    assert done["rows_inserted"] == sum(1 for s in sums.values() if s == top)
    assert ap.last_query.computed_once == ["t"]
    assert ap.read_from_frame("h", "b", "tops").column("s").to_pylist() == [top] * len(
        [s for s in sums.values() if s == top]
    )


def test_a_cte_named_like_a_frame_of_the_default_box_public_stays_inline(
    ap: Apiary, caplog: pytest.LogCaptureFixture
) -> None:
    """After USE HIVE alone, bare names resolve in the box ``public``: a frame there named like
    the CTE keeps the CTE inline too. It is not computed first at all (its rows could not be
    kept under the frame's name, so that work would be thrown away)."""
    caplog.set_level(logging.INFO, logger="apiary.sql.session")
    ap.create_hive("g")
    ap.create_box("g", "public")
    ap.create_frame("g", "public", "readings", {"device": "string", "v": "int64"})
    ap.write_to_frame("g", "public", "readings", ap.read_from_frame("h", "b", "readings"))
    ap.sql("USE HIVE g")  # another hive, no box yet: bare names resolve in g.public
    sql = (
        "WITH readings AS (SELECT device, sum(v) AS v FROM g.public.readings GROUP BY device), "
        "raw AS (SELECT count(*) AS rows FROM g.public.readings) "
        "SELECT count(*) AS n, max(raw.rows) AS rows FROM readings a "
        "JOIN readings b ON a.v = b.v CROSS JOIN raw"
    )
    sums = totals(all_rows(ap))
    expected = sum(1 for a in sums.values() for b in sums.values() if a == b)
    assert ap.sql(sql).to_pylist() == [{"n": expected, "rows": 1200}]
    assert ap.last_query.computed_once == []
    assert "not computed first" not in caplog.text
