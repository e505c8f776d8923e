"""The SQL side driven by a pilot, against a real local root, real bees and real DataFusion."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.processes import child_env
from textual.widgets import DataTable
from tui_support import app_on, wait_for

from tui.app import ApiaryApp
from tui.components.editor import SqlEditor
from tui.components.frame_details import FrameDetails
from tui.components.namespace import NamespaceTree
from tui.components.results import PAGE, ResultsView

pytestmark = pytest.mark.tui
SIZE = (100, 30)
# Seconds of CPU work: only a cancel ends it within the test.
SLOW = (
    "SELECT count(*) FROM (SELECT unnest(range(40000)) AS a) x "
    "CROSS JOIN (SELECT unnest(range(400000)) AS b) y WHERE (a * b) % 7 = 3"
)


def rows(app: ApiaryApp) -> list[list[str]]:
    table = app.query_one(ResultsView).table
    return [[str(v) for v in table.get_row_at(i)] for i in range(table.row_count)]


async def run(pilot, app: ApiaryApp, query: str) -> None:
    editor = app.query_one(SqlEditor)
    editor.text = query
    await pilot.press("f5")
    await wait_for(pilot, lambda: app._cancel is None and (app.result or app.error), query)


async def test_a_typed_query_runs_and_its_rows_show(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        assert app.focused is app.query_one(SqlEditor)
        await pilot.press(*"SELECT region, count(*) AS n FROM farm.sensors.temps")
        await pilot.press("enter", *"GROUP BY region ORDER BY region")
        assert app.query_one(SqlEditor).text.count("\n") == 1  # multi-line editing
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.result or app.error, "the query")
        assert app.error is None
        assert rows(app) == [["north", "2"], ["south", "1"], ["west", "1"]]
        table = app.query_one(ResultsView).table
        assert [str(c.label) for c in table.columns.values()] == ["region", "n"]
        status = str(app.query_one(ResultsView).status.render())
        assert "3 rows in" in status
        assert "farm.sensors.temps: 3 cells considered" in status  # pruning figures


async def test_a_bad_query_shows_its_error_and_the_app_keeps_working(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await run(pilot, app, "SELECT * FROM farm.sensors.tmps")
        assert app.error is not None
        assert "EntityNotFoundError" in app.error and "did you mean farm.sensors.temps" in app.error
        results = app.query_one(ResultsView)
        assert results.has_class("-error")
        assert "did you mean farm.sensors.temps" in str(results.status.render())
        app.result = app.error = None
        await run(pilot, app, "SELECT count(*) AS n FROM farm.sensors.temps")
        assert rows(app) == [["4"]] and not results.has_class("-error")


async def test_history_recalls_queries_across_sessions_and_the_shell_file(
    root: str, isolated_home
) -> None:
    (isolated_home / "sql_history").write_text("SHOW HIVES;\n")  # as apiary shell leaves it
    first = app_on(root)
    async with first.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await run(pilot, first, "SELECT 1 AS one\nFROM farm.sensors.temps LIMIT 1")
    lines = (isolated_home / "sql_history").read_text().splitlines()
    assert lines == ["SHOW HIVES;", "SELECT 1 AS one FROM farm.sensors.temps LIMIT 1"]

    second = app_on(root)
    async with second.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        editor = second.query_one(SqlEditor)
        editor.text = "SELECT 2"  # a draft, given back after walking the history
        await pilot.press("ctrl+up")
        assert editor.text == "SELECT 1 AS one FROM farm.sensors.temps LIMIT 1"
        await pilot.press("ctrl+up")
        assert editor.text == "SHOW HIVES;"
        await pilot.press("ctrl+down", "ctrl+down")
        assert editor.text == "SELECT 2"


async def test_a_running_query_can_be_cancelled_and_the_app_stays_usable(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        app.query_one(SqlEditor).text = SLOW
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.source.apiary().pool.busy, "the query to start")
        assert app._cancel is not None
        assert "running" in str(app.query_one(ResultsView).status.render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.error, "the cancel")
        assert "cancelled" in app.error
        await wait_for(pilot, lambda: not app.source.apiary().pool.busy, "the bee to stop")
        app.error = None
        await run(pilot, app, "SELECT 42 AS answer")
        assert rows(app) == [["42"]]


async def test_a_million_row_result_shows_its_count_and_first_page(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await run(pilot, app, "SELECT unnest(range(1000000)) AS n")
        assert app.error is None, app.error
        results = app.query_one(ResultsView)
        assert "1,000,000 rows" in str(results.status.render())
        assert results.table.row_count == PAGE  # only one page became table rows
        assert rows(app)[0] == ["0"] and rows(app)[-1] == [str(PAGE - 1)]
        results.table.focus()
        await pilot.press("]", "]")
        assert rows(app)[0] == [str(2 * PAGE)]
        assert results.border_subtitle.startswith(f"page 3/{1_000_000 // PAGE}")
        await pilot.press("[")
        assert rows(app)[0] == [str(PAGE)]
        # Still responsive: typing lands in the editor at once.
        await pilot.press("f3", *"SELECT 3")
        assert "SELECT 3" in app.query_one(SqlEditor).text


async def test_the_tree_lists_a_frame_another_process_creates(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        tree = app.query_one(NamespaceTree)
        await wait_for(pilot, lambda: tree.frames(), "the first listing")
        assert tree.frames() == ["farm.sensors.temps"]
        script = (
            "from apiary import Apiary\n"
            f"with Apiary('test', {root!r}) as ap:\n"
            "    ap.create_box('farm', 'lab')\n"
            "    ap.create_frame('farm', 'lab', 'events', {'id': 'int64'})\n"
        )
        subprocess.run([sys.executable, "-c", script], check=True, env=child_env(), timeout=120)
        await wait_for(pilot, lambda: "farm.lab.events" in tree.frames(), "the new frame")

        # Selecting a frame describes it; i puts its name into the editor.
        tree.focus()
        node = next(n for n in tree._tree_nodes.values() if n.data == ("farm", "sensors", "temps"))
        tree.move_cursor(node)
        await pilot.press("enter")
        details = app.query_one(FrameDetails)
        await wait_for(pilot, lambda: details.rows, "DESCRIBE")
        described = dict(details.rows)
        assert described["frame"] == "farm.sensors.temps"
        assert (described["version"], described["cells"], described["rows"]) == ("1", "3", "4")
        assert described["partition_by"] == "region"
        assert described["temp"] == "float64"
        await pilot.press("i")
        editor = app.query_one(SqlEditor)
        assert "farm.sensors.temps" in editor.text and app.focused is editor


async def test_results_table_is_a_datatable_one_page_long(root: str) -> None:
    # Guards the design: a real DataTable (keyboard, mouse, cell cursor) holding one page.
    app = app_on(root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await run(pilot, app, "SELECT * FROM farm.sensors.temps ORDER BY temp")
        assert isinstance(app.query_one(ResultsView).table, DataTable)
        assert rows(app)[0] == ["1.5", "north"] or rows(app)[0] == ["north", "1.5"]
