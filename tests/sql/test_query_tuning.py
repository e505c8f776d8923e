"""A query whose plan shape suits filters in the Parquet scan gets them, says so in EXPLAIN and
``last_query``, and answers exactly as without; the node's settings and a session's SET win."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.sql.tuning import PUSHDOWN

# TPC-H Q17's shape: a correlated subquery aggregating a whole frame by the join key.
CORRELATED = (
    "SELECT sum(l.qty) AS s FROM lines l JOIN parts p ON p.partkey = l.partkey "
    "WHERE p.brand = 'b1' AND l.qty < "
    "(SELECT 0.5 * avg(qty) FROM lines WHERE partkey = p.partkey)"
)
PLAIN = "SELECT sum(qty) AS s FROM lines WHERE qty < 24"


def expected_correlated() -> int:
    qty = {k: [q for q in range(1000) if q % 10 == k] for k in range(10)}
    chosen = [k for k in range(10) if k % 3 == 1]  # brand b1
    return sum(q for k in chosen for q in qty[k] if q < 0.5 * sum(qty[k]) / len(qty[k]))


def load(ap: Apiary) -> None:
    ap.create_hive("h")
    ap.create_box("h", "b")
    ap.create_frame("h", "b", "lines", {"partkey": "int64", "qty": "int64"})
    ap.create_frame("h", "b", "parts", {"partkey": "int64", "brand": "string"})
    for start in range(0, 1000, 250):  # a few cells
        rows = range(start, start + 250)
        ap.write_to_frame("h", "b", "lines", pa.table({"partkey": [i % 10 for i in rows],
                                                       "qty": list(rows)}))  # fmt: skip
    brands = [f"b{i % 3}" for i in range(10)]
    ap.write_to_frame("h", "b", "parts", pa.table({"partkey": list(range(10)), "brand": brands}))
    ap.sql("USE HIVE h")
    ap.sql("USE BOX b")


def explained(ap: Apiary, sql: str) -> dict[str, str]:
    table = ap.sql("EXPLAIN " + sql)
    kinds, plans = table.column("plan_type").to_pylist(), table.column("plan").to_pylist()
    return dict(zip(kinds, plans, strict=True))


@pytest.fixture
def ap(tmp_path: Path):
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        load(ap)
        yield ap


def test_a_correlated_subquery_evaluates_filters_in_the_scan(ap: Apiary) -> None:
    plan = explained(ap, CORRELATED)
    assert "GROUP BY key" in plan["apiary options"]
    # DataFusion took the WHERE into the Parquet scan: no separate filter step is left.
    assert "FilterExec" not in plan["physical_plan"]
    assert "predicate=brand@1 = b1" in plan["physical_plan"]

    result = ap.sql(CORRELATED)
    assert "GROUP BY key" in ap.last_query.tuning
    assert result.column("s").to_pylist() == [expected_correlated()]


def test_other_queries_keep_filters_after_the_scan(ap: Apiary) -> None:
    plan = explained(ap, PLAIN)
    assert "apiary options" not in plan
    assert "FilterExec" in plan["physical_plan"]
    assert ap.sql(PLAIN).column("s").to_pylist() == [sum(range(24))]
    assert ap.last_query.tuning == ""


def test_a_session_set_overrides_the_choice_and_answers_alike(ap: Apiary) -> None:
    ap.sql(f"SET {PUSHDOWN} = false")
    plan = explained(ap, CORRELATED)
    assert "apiary options" not in plan
    assert "FilterExec" in plan["physical_plan"]
    assert ap.sql(CORRELATED).column("s").to_pylist() == [expected_correlated()]
    assert ap.last_query.tuning == ""
    ap.sql(f"RESET {PUSHDOWN}")
    assert "apiary options" in explained(ap, CORRELATED)


def test_the_nodes_own_setting_overrides_the_choice(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text(f'[datafusion]\n"{PUSHDOWN}" = false\n')
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        load(ap)
        plan = explained(ap, CORRELATED)
        assert "apiary options" not in plan
        assert "FilterExec" in plan["physical_plan"]
        assert ap.sql(CORRELATED).column("s").to_pylist() == [expected_correlated()]
