"""A bee's DataFusion session is kept from task to task, and let go after a task that failed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datafusion.catalog import Table
from support.waiting import wait_until

from apiary.errors import TaskTimeoutError
from apiary.runtime.bees import KEPT_VALUES, RUNTIME_DIR, BeePool
from apiary.sql.sources import register_table

MiB = 1 << 20
PUSHDOWN = "datafusion.execution.parquet.pushdown_filters"


def runtime_folders(pool: BeePool) -> list[str]:
    bee = pool.bees[0]
    return sorted(p.name for p in bee.spill_dir.iterdir() if p.name.startswith(RUNTIME_DIR))


def setting(ctx, name: str) -> str:
    ctx.sql("SET datafusion.catalog.information_schema = true")
    rows = ctx.sql(f"SELECT value FROM information_schema.df_settings WHERE name = '{name}'")
    return rows.to_pylist()[0]["value"]


@pytest.fixture
def pool(tmp_path: Path):
    with BeePool(1, 256 * MiB, tmp_path / "scratch", task_timeout=30.0) as pool:
        yield pool


@pytest.fixture
def cell(tmp_path: Path) -> Path:
    path = tmp_path / "cell.parquet"
    pq.write_table(pa.table({"x": list(range(100_000))}), path, row_group_size=10_000)
    return path


def test_the_session_is_kept_and_tables_last_one_task(pool: BeePool, cell: Path) -> None:
    def first(bee):
        ctx = bee.session(catalog="h", schema="b")
        register_table(ctx, "h", "b", "t", Table(ctx.read_parquet(str(cell))))
        return ctx, bee.collect(ctx.sql("SELECT count(*) AS n FROM t")).to_pylist()

    def second(bee):
        ctx = bee.session(catalog="h", schema="b", shape={PUSHDOWN: "true"})
        return ctx, ctx.catalog("h").schema("b").names(), setting(ctx, PUSHDOWN)

    kept, counted = pool.run(first, name="first")
    assert counted == [{"n": 100_000}]
    again, tables, pushdown = pool.run(second, name="second")
    assert again is kept  # the same session: its caches stay warm
    assert tables == set()  # the first task's table went with it
    assert pushdown == "true"  # this task's shape was set on the kept session
    assert pool.run(lambda bee: setting(bee.session(), PUSHDOWN), name="third") == "false"
    assert len(runtime_folders(pool)) == 1  # one runtime, kept, never emptied away


def test_a_task_that_fails_takes_the_session_with_it(pool: BeePool) -> None:
    batch = "datafusion.execution.batch_size"

    def mark(bee) -> str:  # an option no task sets: it tells this session from a new one
        bee.session().sql(f"SET {batch} = 1234")
        return setting(bee.session(), batch)

    def fails(bee):
        bee.collect(bee.session().sql("SELECT * FROM nowhere"))

    assert pool.run(mark, name="mark") == "1234"
    assert pool.run(lambda bee: setting(bee.session(), batch), name="kept") == "1234"
    with pytest.raises(Exception, match="nowhere"):
        pool.run(fails, name="fails", retry=False)
    assert pool.run(lambda bee: setting(bee.session(), batch), name="new") == "8192"
    assert wait_until(lambda: len(runtime_folders(pool)) == 1, timeout=5.0)


def test_a_timed_out_query_leaves_a_new_session_that_works(tmp_path: Path) -> None:
    slow = "SELECT count(*) FROM generate_series(1, 3000000000) WHERE value % 7 = 3"
    with BeePool(1, 256 * MiB, tmp_path / "scratch", task_timeout=1.0) as pool:
        with pytest.raises(TaskTimeoutError):
            pool.run(lambda bee: bee.collect(bee.session().sql(slow)), name="slow", retry=False)
        assert wait_until(lambda: pool.idle == 1, timeout=10.0)
        answer = pool.run(
            lambda bee: bee.collect(bee.session().sql("SELECT 41 + 1 AS a")).to_pylist(),
            name="after",
        )
        assert answer == [{"a": 42}]
        assert len(runtime_folders(pool)) == 1


def test_values_are_kept_with_the_session_and_go_with_it(pool: BeePool) -> None:
    made: list[str] = []

    def make(name: str):
        def run():
            made.append(name)
            return object()

        return run

    first = pool.run(lambda bee: (bee.session(), bee.keep("a", make("a")))[1], name="first")
    again = pool.run(lambda bee: (bee.session(), bee.keep("a", make("a")))[1], name="again")
    assert again is first and made == ["a"]  # made once, met again by the next task
    other = pool.run(lambda bee: (bee.session(), bee.keep("b", make("b")))[1], name="other")
    assert other is not first and made == ["a", "b"]

    def fails(bee):
        bee.collect(bee.session().sql("SELECT * FROM nowhere"))

    with pytest.raises(Exception, match="nowhere"):
        pool.run(fails, name="fails", retry=False)
    after = pool.run(lambda bee: (bee.session(), bee.keep("a", make("a")))[1], name="after")
    assert after is not first and made == ["a", "b", "a"]  # the failed task's session took it


def test_only_the_most_recently_used_values_are_kept(pool: BeePool) -> None:
    def fill(bee):
        bee.session()
        return [bee.keep(i, object) for i in range(KEPT_VALUES + 1)]

    values = pool.run(fill, name="fill")
    assert pool.run(lambda bee: bee.keep(KEPT_VALUES, object), name="newest") is values[-1]
    assert pool.run(lambda bee: bee.keep(0, object), name="oldest") is not values[0]
