"""SVG snapshots (pytest-textual-snapshot) of the main screen, the results view and the help.

The fixture swarm is real heartbeat files on a local root, their modification times set to
known ages before a frozen storage clock; every other clock the UI reads is frozen too.
Update baselines with ``pytest tests/tui/test_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tui_support import farm_root, wait_for

from apiary import Apiary
from apiary.swarm.world import Heartbeat, heartbeat_path
from tui.app import ApiaryApp
from tui.components.editor import SqlEditor
from tui.data import Source

pytestmark = pytest.mark.tui
FROZEN = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
GiB = 1 << 30
SIZE = (80, 24)


def bees(busy: list[tuple[str, float, int]], idle: int) -> list[dict]:
    rows = [
        {"id": i, "state": "busy", "task": task, "elapsed_s": age, "memory_used": used}
        for i, (task, age, used) in enumerate(busy)
    ]
    rows += [{"id": len(busy) + i, "state": "idle"} for i in range(idle)]
    for row in rows:
        row.setdefault("task", None)
        row.setdefault("elapsed_s", None)
        row.setdefault("memory_used", 0)
        row["memory_budget"] = GiB // 2
    return rows


FLEET = [  # (heartbeat, age in seconds on the storage's clock)
    (
        Heartbeat(
            node_id="pi-kitchen",
            version="0.1.0",
            cores=4,
            memory_budget=2 * GiB,
            bees_busy=2,
            bees_idle=2,
            temperature=0.78,
            band="warm",
            cached_cells=["a", "b", "c"],
            cache_bytes=96 << 20,
            started_at="2025-06-01T09:00:00+00:00",
            beats=2160,
            sees={"pi-garage": "alive", "pi-attic": "dead"},
            bees=bees(
                [
                    ("sql: SELECT region, avg(temp) FROM farm", 3.2, 300 << 20),
                    ("task 7", 0.4, 64 << 20),
                ],
                2,
            ),
            abandoned=[
                {
                    "task": "sql: SELECT * FROM farm.sensors.big",
                    "at": 0,
                    "attempts": [{"attempt": 1, "bee": 2, "error": "MemoryExceededError: …"}],
                }
            ],
        ),
        1.0,
    ),
    (
        Heartbeat(
            node_id="pi-garage",
            version="0.1.0",
            cores=4,
            memory_budget=GiB,
            bees_idle=4,
            temperature=0.12,
            band="cold",
            beats=300,
        ),
        18.0,
    ),
    (
        Heartbeat(
            node_id="pi-attic",
            version="0.1.0",
            cores=2,
            memory_budget=GiB,
            bees_idle=2,
            temperature=0.91,
            band="hot",
            regulation="throttling writes",
            beats=12,
        ),
        41.0,
    ),
]


@pytest.fixture
def fleet_root(tmp_path: Path) -> str:
    uri = farm_root(str(tmp_path / "fleet"), {"region": ["north", "south"], "temp": [1.5, 3.0]})
    with Apiary("test", uri) as ap:
        for beat, age in FLEET:
            ap.storage.put(heartbeat_path(beat.node_id), beat.model_dump_json().encode())
            stamp = (FROZEN - timedelta(seconds=age)).timestamp()
            os.utime(Path(uri) / heartbeat_path(beat.node_id), (stamp, stamp))
    return uri


def fleet_app(root: str) -> ApiaryApp:
    source = Source(
        "test",
        root,
        observe=True,
        clock=lambda: FROZEN,
        storage_now=lambda: FROZEN,
        timer=lambda: 0.0,
        label="s3://fleet/apiary",
    )
    return ApiaryApp(source, refresh=3600, clock=lambda: FROZEN)


async def first_refresh(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.refreshes >= 1, "the first refresh")
    await pilot.pause()


def test_main_screen_with_a_fixture_swarm(fleet_root: str, snap_compare) -> None:
    assert snap_compare(fleet_app(fleet_root), terminal_size=SIZE, run_before=first_refresh)


def test_results_view(fleet_root: str, snap_compare) -> None:
    async def run_query(pilot) -> None:
        await first_refresh(pilot)
        app = pilot.app
        await pilot.press("f3")
        editor = app.query_one(SqlEditor)
        editor.cursor_blink = False
        editor.text = "SELECT region, temp\nFROM farm.sensors.temps\nORDER BY temp"
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.result or app.error, "the query")
        await pilot.pause()

    assert snap_compare(fleet_app(fleet_root), terminal_size=SIZE, run_before=run_query)


def test_help_screen(fleet_root: str, snap_compare) -> None:
    async def open_help(pilot) -> None:
        await first_refresh(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(fleet_app(fleet_root), terminal_size=SIZE, run_before=open_help)
