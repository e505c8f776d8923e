"""Splitting plans and merging partials, in one process over real frames and real DataFusion.

Each query is split, its fragment run once per slice of the driving frame's cells (as tasks on
separate nodes would), the partials merged, and the answer compared with the query run whole.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pyarrow as pa
import pytest
from datafusion import SessionConfig, SessionContext

from apiary import Apiary
from apiary.bench.compare import result_difference
from apiary.ledger import CellMeta
from apiary.ledger.models import ColumnStats
from apiary.sql.planning import PlanningHive
from apiary.sql.readonly import READ_ONLY
from apiary.sql.sources import frame_table, plain_types, register_table
from apiary.swarm import merge as merge_module
from apiary.swarm.keys import key_range, within
from apiary.swarm.merge import merge
from apiary.swarm.split import NotDistributable, split

FRAMES = ("readings", "sensors")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("split-root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("APIARY_HOME", str(tmp_path_factory.mktemp("split-home")))
        with Apiary("split", str(root), join_swarm=False) as ap:
            ap.create_hive("farm")
            ap.create_box("farm", "data")
            ap.create_frame(
                "farm",
                "data",
                "readings",
                {"sensor": "int64", "v": "int64", "price": "decimal128(12, 2)", "tag": "string"},
            )
            ap.create_frame("farm", "data", "sensors", {"sensor": "int64", "site": "string"})
            for batch in range(6):  # six cells, each a range of sensors
                sensors = range(batch * 10, batch * 10 + 10)
                ap.write_to_frame(
                    "farm",
                    "data",
                    "readings",
                    pa.table(
                        {
                            "sensor": [s for s in sensors for _ in range(3)],
                            "v": [s * 7 % 11 for s in sensors for _ in range(3)],
                            "price": [Decimal(f"{s}.{r}5") for s in sensors for r in range(3)],
                            "tag": [None if s % 4 == 0 else f"t{s % 3}" for s in sensors
                                    for _ in range(3)],
                        }
                    ),
                )  # fmt: skip
                ap.write_to_frame(
                    "farm",
                    "data",
                    "sensors",
                    pa.table({"sensor": list(sensors), "site": [f"s{x % 4}" for x in sensors]}),
                )
            ap.sql("USE farm.data")
            yield ap


def shared(ap: Apiary, sql: str, tasks: int = 3) -> tuple[pa.Table, object]:
    """``sql`` split, run as ``tasks`` slices of its driving frame, and merged."""
    state = ap.registry.state()
    config = SessionConfig().with_default_catalog_and_schema("farm", "data")

    def stand_ins() -> SessionContext:
        ctx = SessionContext(config)
        ctx.register_catalog_provider("farm", PlanningHive(state, "farm", []))
        return ctx

    planning = stand_ins()
    plan = planning.sql_with_options(sql, READ_ONLY).optimized_logical_plan()
    frames = {name: ap.frame("farm", "data", name) for name in FRAMES}
    sizes = {(None, None, n): f.snapshot().bytes for n, f in frames.items()}
    found = split(planning, plan, sizes, sql, stand_ins)
    driving = found.driving[2]
    cells = sorted(frames[driving].snapshot().cells.values(), key=lambda c: c.path)
    partials = []
    for k in range(tasks):
        ctx = SessionContext(config)
        for name, frame in frames.items():
            mine = cells[k::tasks] if name == driving else list(frame.snapshot().cells.values())
            register_table(ctx, "farm", "data", name, frame_table(ctx, frame, mine))
        # plain string columns, as a worker sends them (Worker._execute)
        partials.append(
            plain_types(ctx.sql_with_options(found.fragment_sql, READ_ONLY).to_arrow_table())
        )
    return plain_types(merge(found, partials)), found


TOP_GROUPS = (
    "SELECT r.sensor, s.site, sum(r.price) AS total FROM readings r "
    "JOIN sensors s ON r.sensor = s.sensor GROUP BY r.sensor, s.site "
    "ORDER BY total DESC, r.sensor LIMIT 5"
)
QUERIES = {
    "aggregate-of-expressions": "SELECT tag, sum(v * 2 + 1) AS s, avg(price) AS a, "
    "avg(v) AS av, count(tag) AS c, count(*) AS n, min(price) AS lo, max(tag) AS hi "
    "FROM readings GROUP BY tag ORDER BY tag",
    "ratio-of-sums-having": "SELECT tag, sum(CASE WHEN v > 5 THEN price ELSE 0 END) / sum(price) "
    "AS share FROM readings GROUP BY tag HAVING count(*) > 10 ORDER BY share DESC",
    "join-aggregate": "SELECT s.site, count(*) AS n, sum(r.price) AS total FROM readings r "
    "JOIN sensors s ON r.sensor = s.sensor WHERE r.v < 9 GROUP BY s.site ORDER BY s.site",
    "top-k": "SELECT sensor, v, price FROM readings ORDER BY price DESC, sensor LIMIT 7",
    "top-k-offset": "SELECT sensor, v, price FROM readings ORDER BY price DESC, sensor "
    "LIMIT 4 OFFSET 3",
    "rows": "SELECT r.sensor, s.site FROM readings r JOIN sensors s ON r.sensor = s.sensor "
    "WHERE r.v = 3",
    "semi-join": "SELECT count(*) AS n FROM readings WHERE sensor IN "
    "(SELECT sensor FROM sensors WHERE site = 's1')",
    "count-distinct": "SELECT count(DISTINCT v) AS dv FROM readings",
    "empty": "SELECT sum(v) AS s, count(*) AS n, avg(price) AS a FROM readings WHERE v > 100",
    "aggregate-over-aggregate": "SELECT n, count(*) AS sensors FROM (SELECT sensor, count(*) "
    "AS n FROM readings GROUP BY sensor) GROUP BY n ORDER BY n",
    "top-groups": TOP_GROUPS,
    "top-groups-offset": TOP_GROUPS.replace("LIMIT 5", "LIMIT 3 OFFSET 2"),
    "top-groups-having": TOP_GROUPS.replace("ORDER BY", "HAVING count(*) > 2 ORDER BY"),
    "top-groups-computed": TOP_GROUPS.replace(
        "sum(r.price) AS total", "sum(r.price) * 2 AS total"
    ).replace("total DESC, r.sensor", "r.sensor DESC"),
    # orders and extremes pyarrow alone must get right, or leave to DataFusion
    "nulls-first": "SELECT tag, count(*) AS n, min(tag) AS lo FROM readings GROUP BY tag "
    "ORDER BY tag NULLS FIRST",
    "nulls-mixed": "SELECT tag, v, count(*) AS n FROM readings GROUP BY tag, v "
    "ORDER BY tag DESC NULLS LAST, v DESC NULLS FIRST LIMIT 9",
    "float-extremes": "SELECT tag, max(CAST(v AS DOUBLE) / 0.0) AS hi, "
    "min(CAST(v AS DOUBLE) / 0.0) AS lo FROM readings GROUP BY tag ORDER BY tag",
    "float-total": "SELECT min(CAST(v AS DOUBLE) / 0.0) AS lo, sum(v) AS s FROM readings",
    "total": "SELECT sum(price) AS s, min(tag) AS lo, max(tag) AS hi, count(*) AS n FROM readings",
    "by-sensor": "SELECT sensor, sum(price) AS s, count(*) AS n FROM readings GROUP BY sensor "
    "ORDER BY sensor",
    # the sort key is computed by a function the bindings cannot convert: replayed, not read
    "top-rounded": "SELECT sensor, round(sum(v) * 1.5, 1) AS s FROM readings GROUP BY sensor "
    "ORDER BY s DESC, sensor LIMIT 4",
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_split_query_merges_to_the_single_node_answer(farm: Apiary, name: str) -> None:
    sql = QUERIES[name]
    got, _ = shared(farm, sql)
    expected = farm.sql(sql)
    assert expected.num_rows > 0, "the query must return something to prove anything"
    difference = result_difference(got, expected, ordered="ORDER BY" in sql)
    assert difference is None, difference


def test_the_other_frame_of_a_join_is_narrowed_to_the_key_range(farm: Apiary) -> None:
    _, found = shared(farm, QUERIES["join-aggregate"])
    assert [(link.scan[2], link.column, link.driving_column) for link in found.links] == [
        ("sensors", "sensor", "sensor")
    ]


def test_a_frame_also_read_by_a_global_aggregate_is_not_narrowed(farm: Apiary) -> None:
    # sensors is read a second time by an aggregate over all of it: dropping sensors outside
    # a task's range would change that average, so no narrowing is allowed.
    sql = (
        "SELECT count(*) AS n FROM readings r JOIN sensors s ON r.sensor = s.sensor "
        "WHERE r.v > (SELECT avg(sensor) / 10 FROM sensors)"
    )
    got, found = shared(farm, sql)
    assert [link.scan[2] for link in found.links] == []
    assert result_difference(got, farm.sql(sql), ordered=False) is None


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT tag, median(v) AS m FROM readings GROUP BY tag", "cannot be split exactly"),
        ("SELECT count(DISTINCT tag), count(DISTINCT v) FROM readings", "cannot be split"),
        ("SELECT sum(a.v) FROM readings a JOIN readings b USING (sensor)", "more than once"),
        (
            "SELECT sensor, sum(v) OVER (PARTITION BY tag) AS w FROM readings",
            "no frame can drive",
        ),
    ],
)
def test_what_cannot_be_split_exactly_says_why(farm: Apiary, sql: str, reason: str) -> None:
    with pytest.raises(NotDistributable, match=reason):
        shared(farm, sql)


def cell(low: object, high: object, nulls: int = 0, rows: int = 10) -> CellMeta:
    stats = {"k": ColumnStats(min=low, max=high, null_count=nulls)}
    return CellMeta(path=f"c{low}-{high}.parquet", rows=rows, bytes=1, stats=stats)


def test_key_ranges_keep_only_overlapping_cells_and_unknowns() -> None:
    mine = [cell(10, 20), cell(15, 30), cell(None, None, nulls=10)]
    assert key_range(mine, "k", pa.int64()) == (10, 30)
    others = [cell(0, 9), cell(5, 10), cell(30, 40), cell(31, 50), cell(None, None, nulls=10)]
    unknown = CellMeta(path="u.parquet", rows=3, bytes=1)
    kept = within([*others, unknown], "k", pa.int64(), (10, 30))
    assert [c.path for c in kept] == ["c5-10.parquet", "c30-40.parquet", "u.parquet"]
    assert key_range([*mine, unknown], "k", pa.int64()) is None  # one unknown cell: no range


@pytest.mark.parametrize(
    ("name", "qualified_rows"),
    [
        ("top-groups", None),
        ("top-groups-offset", None),
        ("top-groups-computed", 5),
        ("top-groups-having", 60),
        ("top-k", None),
        ("top-k-offset", None),
    ],
)
def test_only_the_first_rows_by_the_final_order_get_their_qualifiers(
    farm: Apiary, monkeypatch: pytest.MonkeyPatch, name: str, qualified_rows: int | None
) -> None:
    """Under ORDER BY … LIMIT k on columns the merged rows hold, only k rows can be in the
    answer, so only those go through the joins that give rows their qualifiers; with a HAVING
    under the sort every group may matter. Where the sort and limit are all the plan has left
    (top-k rows), its first rows are the answer and need no qualifiers (None); so do rows
    that the nodes above only pick, order and cut (pyarrow finishes those)."""
    seen = []
    real = merge_module._qualified

    def spy(ctx, rows, fields):
        seen.append(rows.num_rows)
        return real(ctx, rows, fields)

    monkeypatch.setattr(merge_module, "_qualified", spy)
    got, _ = shared(farm, QUERIES[name])
    assert seen == ([] if qualified_rows is None else [qualified_rows])
    assert result_difference(got, farm.sql(QUERIES[name]), ordered=True) is None


@pytest.mark.parametrize("name", ["total", "top-groups", "nulls-first", "nulls-mixed", "top-k"])
def test_a_merge_that_only_adds_picks_and_orders_needs_no_datafusion(
    farm: Apiary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Re-aggregating partials and picking, ordering and cutting the merged rows is done by
    pyarrow's kernels: no DataFusion context is made (~1-2 ms of every shared query)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the merge made a DataFusion context")

    monkeypatch.setattr(merge_module, "SessionContext", refused)
    got, _ = shared(farm, QUERIES[name])
    expected = farm.sql(QUERIES[name])
    assert result_difference(got, expected, ordered="ORDER BY" in QUERIES[name]) is None


@pytest.mark.parametrize(("name", "by_datafusion"), [("by-sensor", False), ("nulls-mixed", True)])
def test_many_partial_groups_keyed_by_strings_are_merged_by_datafusion(
    farm: Apiary, monkeypatch: pytest.MonkeyPatch, name: str, by_datafusion: bool
) -> None:
    """pyarrow hashes string keys slower than DataFusion: past ``KERNEL_STRING_ROWS`` partial
    rows (here 2) a merge grouped by a string goes to DataFusion; one keyed by integers alone
    stays with pyarrow. The answer is the same either way."""
    made = []
    real = merge_module.SessionContext

    def counted(*args: object, **kwargs: object) -> object:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_module, "KERNEL_STRING_ROWS", 2)
    monkeypatch.setattr(merge_module, "SessionContext", counted)
    got, _ = shared(farm, QUERIES[name])
    assert result_difference(got, farm.sql(QUERIES[name]), ordered=True) is None
    assert bool(made) is by_datafusion


@pytest.mark.parametrize("name", ["float-extremes", "float-total"])
def test_what_pyarrow_would_order_differently_is_merged_by_datafusion(
    farm: Apiary, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """pyarrow's MIN/MAX pass over NaN where DataFusion's MIN returns it: such columns go to
    DataFusion, and the answer keeps its NaN."""
    made = []
    real = merge_module.SessionContext

    def counted(*args: object, **kwargs: object) -> object:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(merge_module, "SessionContext", counted)
    got, _ = shared(farm, QUERIES[name])
    expected = farm.sql(QUERIES[name])
    assert result_difference(got, expected, ordered="ORDER BY" in QUERIES[name]) is None
    assert made, "a MIN/MAX of floats must be merged by DataFusion"
    if name == "float-total":  # a NaN among the values: DataFusion's MIN of them is NaN
        assert math.isnan(got.column("lo")[0].as_py())
