"""Tables over a local root's linked cells are kept across queries, never stale, and cleaned up."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from apiary.sdk import Apiary
from apiary.sql.sources import LINKED, TABLES_PREFIX, LinkedTables

PUSHDOWN = "datafusion.execution.parquet.pushdown_filters"


def link_folders(root: Path) -> list[Path]:
    scratch = root / "_scratch"
    return (
        [p for p in scratch.iterdir() if p.name.startswith(TABLES_PREFIX)]
        if scratch.exists()
        else []
    )


def test_kept_tables_follow_new_writes_and_vacuum(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with Apiary("t", str(root), join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"x": "int64"})
        ap.write_to_frame("h", "b", "f", pa.table({"x": [1, 2]}))
        query = "SELECT sum(x) AS s, count(*) AS n FROM h.b.f"
        assert ap.sql(query).to_pylist() == [{"s": 3, "n": 2}]
        assert ap.sql(query).to_pylist() == [{"s": 3, "n": 2}]  # the kept table, same answer
        ap.write_to_frame("h", "b", "f", pa.table({"x": [10]}))
        assert ap.sql(query).to_pylist() == [{"s": 13, "n": 3}]  # new cells: a new table
        ap.overwrite_frame("h", "b", "f", pa.table({"x": [5]}))
        ap.vacuum_frame("h", "b", "f", retention_hours=0, force=True)
        assert ap.sql(query).to_pylist() == [{"s": 5, "n": 1}]
        assert len(link_folders(root)) == 1  # one folder for this process, tables inside
    LINKED.clear()
    assert link_folders(root) == []


def test_tables_in_use_are_not_evicted_and_the_rest_go_beyond_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tables = LinkedTables(limit=1)
    with Apiary("t", str(root), join_swarm=False) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"x": "int64"})
        for n in range(3):
            ap.write_to_frame("h", "b", "f", pa.table({"x": [n]}))
        frame = ap.frame("h", "b", "f")
        cells = sorted(frame.snapshot().cells.values(), key=lambda c: c.path)
        with tables.holding() as held:
            for n in range(3):
                tables.table(held, frame, cells[: n + 1], frame.schema)
            folder = link_folders(root)[0]
            assert len(list(folder.iterdir())) == 3  # all in use: none evicted
        assert len(list(folder.iterdir())) == 1  # the limit, once the query let go
        with tables.holding() as held:
            again = tables.table(held, frame, cells, frame.schema)  # the kept one: the whole frame
            assert again is tables.table(held, frame, cells, frame.schema)
    tables.clear()
    assert link_folders(root) == []


def test_kept_tables_are_made_with_the_options_of_the_bee_that_runs_them(tmp_path: Path) -> None:
    """A Parquet table scans with some options of the context that made it (reorder_filters),
    so the tables of queries run with other options are made, and kept, apart."""
    reorder = "datafusion.execution.parquet.reorder_filters"
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        bee = ap.pool.bees[0]
        plain = bee.options(partitions=2)
        pushed = bee.options(partitions=2, shape={PUSHDOWN: "true"})
        assert plain != pushed
        tables = LinkedTables()
        for options in (plain, pushed):
            shown = {**options, "datafusion.catalog.information_schema": "true"}
            maker = tables.maker(shown)
            assert tables.maker(dict(shown)) is maker
            settings = maker.sql("SELECT name, value FROM information_schema.df_settings")
            values = {row["name"]: row["value"] for row in settings.to_pylist()}
            assert {name: values[name] for name in options} == options
            assert values[reorder] == "true"
