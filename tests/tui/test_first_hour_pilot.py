"""The TUI's first-hour rough edges (issue 15), driven by a pilot on a real local root."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from textual.geometry import Region
from tui_support import app_on, farm_root, wait_for

from apiary import Apiary
from tui.app import ApiaryApp
from tui.components.editor import SqlEditor
from tui.components.frame_details import FrameDetails
from tui.components.help import KEYS
from tui.components.namespace import NamespaceTree
from tui.components.results import ResultsView
from tui.data import Source

pytestmark = pytest.mark.tui
SMALL = (80, 24)


async def run(pilot, app: ApiaryApp, query: str) -> None:
    app.result = app.error = None
    app.query_one(SqlEditor).text = query
    await pilot.press("f5")
    await wait_for(pilot, lambda: app._cancel is None and (app.result or app.error), query)


async def select_frame(pilot, app: ApiaryApp, path: tuple[str, str, str]) -> None:
    tree = app.query_one(NamespaceTree)
    await wait_for(pilot, lambda: tree.frames(), "the first listing")
    tree.focus()
    node = next(n for n in tree._tree_nodes.values() if n.data == path)
    tree.move_cursor(node)
    await pilot.pause()


async def test_a_key_clears_the_editor_and_the_help_lists_it(root: str) -> None:
    assert any("clear the editor" in what for _, what in KEYS)
    app = app_on(root)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        editor = app.query_one(SqlEditor)
        await pilot.press(*"SELECT 1")
        assert editor.text == "SELECT 1"
        await pilot.press("ctrl+l")
        assert editor.text == "" and app.focused is editor


async def test_an_error_clears_the_previous_results(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        await run(pilot, app, "SELECT region FROM farm.sensors.temps ORDER BY region")
        results = app.query_one(ResultsView)
        assert results.table.row_count == 4
        await run(pilot, app, "SELECT * FROM farm.sensors.tmps")
        assert results.has_class("-error")
        assert results.table.row_count == 0 and not results.table.columns
        assert results.result is None
        results.action_page(1)  # paging has nothing to show, and does not bring them back
        assert results.table.row_count == 0


async def test_i_inserts_a_name_with_a_separating_space(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        editor = app.query_one(SqlEditor)
        editor.text = "SELECT * FROM"
        editor.move_cursor(editor.document.end)
        await select_frame(pilot, app, ("farm", "sensors", "temps"))
        await pilot.press("i")
        assert editor.text == "SELECT * FROM farm.sensors.temps"
        editor.text = "SELECT * FROM "  # a space there already: no second one
        editor.move_cursor(editor.document.end)
        await select_frame(pilot, app, ("farm", "sensors", "temps"))
        await pilot.press("i")
        assert editor.text == "SELECT * FROM farm.sensors.temps"
        editor.text = "SELECT count(*) FROM ("  # after an opening parenthesis: none either
        editor.move_cursor(editor.document.end)
        await select_frame(pilot, app, ("farm", "sensors", "temps"))
        await pilot.press("i")
        assert editor.text == "SELECT count(*) FROM (farm.sensors.temps"


@pytest.fixture
def wide_root(tmp_path) -> str:
    """demo.sensors.readings with 30 columns: a name as long as the demo's, a long list."""
    root = farm_root(str(tmp_path / "root"), {"region": ["north"], "temp": [1.0]})
    columns = {f"measurement_{i:02d}": "float64" for i in range(30)}
    with Apiary("test", root) as ap:
        ap.create_hive("demo")
        ap.create_box("demo", "sensors")
        ap.create_frame("demo", "sensors", "readings", columns)
        ap.write_to_frame(
            "demo", "sensors", "readings", pa.table({name: [1.0] for name in columns})
        )
    return root


async def test_the_frame_panel_keeps_the_name_whole_and_scrolls_every_column(
    wide_root: str,
) -> None:
    app = app_on(wide_root)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        await select_frame(pilot, app, ("demo", "sensors", "readings"))
        await pilot.press("enter")
        details = app.query_one(FrameDetails)
        await wait_for(pilot, lambda: details.rows, "DESCRIBE")
        await pilot.pause()
        body = details.body
        lines = [s.text for s in body.render_lines(Region(0, 0, *body.size))]
        assert any("demo.sensors.readings" in line for line in lines), lines  # not cut mid-word
        assert any("measurement_29" in line for line in lines)  # the whole list is there
        assert details.max_scroll_y > 0  # and reachable: the panel scrolls
        details.scroll_end(animate=False)
        await pilot.pause()
        assert details.scroll_y == details.max_scroll_y


async def test_at_80_by_24_the_tree_leaves_room_for_results(root: str) -> None:
    app = app_on(root)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        sidebar = app.query_one("#sidebar").size.width
        results = app.query_one(ResultsView).outer_size.width
        assert sidebar <= 24 and results >= 56  # was 28 and 52


def test_the_swarm_row_and_the_gauge_show_one_temperature(root: str) -> None:
    source = Source("test", root, node_id="pi-test")
    try:
        source.snapshot()
        deadline = time.monotonic() + 1.0  # load the node so its temperature moves
        while time.monotonic() < deadline:
            sum(i * i for i in range(20_000))
        for _ in range(3):
            snap = source.snapshot()
            (mine,) = [n for n in snap.nodes if n.node_id == "pi-test"]
            assert snap.colony is not None
            assert (mine.temperature, mine.band) == (snap.colony.temperature, snap.colony.band)
            assert mine.regulation == snap.colony.regulation
    finally:
        source.close()


def test_a_missing_root_is_said_so_and_not_created(tmp_path) -> None:
    typo = tmp_path / "srv" / "apairy"
    for observe in (True, False):
        snap = Source("test", str(typo), observe=observe).snapshot()
        assert not snap.reachable and f"{typo} does not exist" in snap.error
    assert not typo.parent.exists()
