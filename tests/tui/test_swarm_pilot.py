"""The swarm panel over real `apiary node` processes: alive, then suspect and dead once one is
killed (short heartbeat timings)."""

from __future__ import annotations

import signal

import pytest
from support.nodes import start_apiary_node, stop_all, use_short_timings
from tui_support import app_on, wait_for

from tui.components.bees import BeesPanel
from tui.components.swarm import SwarmPanel

pytestmark = [pytest.mark.tui, pytest.mark.multiprocess]


def states(panel: SwarmPanel) -> dict[str, str]:
    return {node.node_id: node.state for node in panel.nodes}


async def test_nodes_show_alive_then_suspect_and_dead_after_one_is_killed(
    tmp_path, monkeypatch
) -> None:
    use_short_timings(monkeypatch)
    uri = str(tmp_path / "root")
    nodes = [start_apiary_node(uri, "pi-a", quiet=True), start_apiary_node(uri, "pi-b", quiet=True)]
    try:
        app = app_on(uri, refresh=0.3, observe=True)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(SwarmPanel)
            await wait_for(
                pilot,
                lambda: states(panel) == {"pi-a": "alive", "pi-b": "alive"},
                "both nodes alive",
                timeout=120,
            )
            # Observing: the bees shown are the selected node's, from its heartbeat.
            assert app.snapshot is not None and app.snapshot.selected == "pi-a"
            bees = app.query_one(BeesPanel)
            assert len(app.snapshot.bees) >= 1 and bees.border_title == "Bees · pi-a"

            nodes[1].send_signal(signal.SIGKILL)  # no goodbye: the heartbeat just ages
            nodes[1].wait(timeout=30)
            await wait_for(pilot, lambda: states(panel).get("pi-b") == "suspect", "pi-b suspect")
            assert states(panel)["pi-a"] == "alive"
            await wait_for(pilot, lambda: states(panel).get("pi-b") == "dead", "pi-b dead")
            assert states(panel)["pi-a"] == "alive"
            assert "1 alive 0 suspect 1 dead" in str(panel.border_title)

            # Selecting the other node switches the bees panel to it.
            table = panel.query_one("DataTable")
            table.focus()
            await pilot.press("down")
            await wait_for(pilot, lambda: app.snapshot.selected == "pi-b", "pi-b selected")
            assert bees.border_title == "Bees · pi-b"
    finally:
        stop_all(nodes)
