"""Helpers for the TUI tests (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from tui.app import ApiaryApp
from tui.data import Source


async def wait_for(pilot, check: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    """Let the app run until ``check()`` is truthy; fail naming ``what`` after ``timeout`` s."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        result = check()
        if result:
            return result
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def app_on(root: str, refresh: float = 0.5, **kwargs) -> ApiaryApp:
    return ApiaryApp(Source("test", root, **kwargs), refresh=refresh)


def farm_root(uri: str, rows: dict[str, list]) -> str:
    """A local root at ``uri`` holding farm.sensors.temps (region, temp), partitioned by region."""
    import pyarrow as pa

    from apiary import Apiary

    with Apiary("test", uri) as ap:
        ap.create_hive("farm")
        ap.create_box("farm", "sensors")
        ap.create_frame(
            "farm", "sensors", "temps", {"region": "string", "temp": "float64"}, ["region"]
        )
        ap.write_to_frame("farm", "sensors", "temps", pa.table(rows))
    return uri
