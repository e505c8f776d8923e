"""An unreachable root shows a clear full-panel notice, and the app recovers by itself."""

from __future__ import annotations

import pytest
from tui_support import app_on, wait_for

from tui.components.swarm import SwarmPanel
from tui.components.unreachable import Unreachable

pytestmark = pytest.mark.tui


@pytest.mark.parametrize("observe", [True, False], ids=["observer", "attached"])
async def test_unreachable_root_shows_why_then_recovers(tmp_path, observe: bool) -> None:
    blocker = tmp_path / "mnt"
    blocker.write_text("not a directory")  # like a bucket mount that is not there
    uri = str(blocker / "root")
    app = app_on(uri, refresh=0.2, observe=observe)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first refresh")
        assert not app.snapshot.reachable
        assert app.query_one("#monitor").has_class("-unreachable")
        notice = app.query_one(Unreachable)
        assert notice.display and not app.query_one("#monitor-panels").display
        assert f"storage root {uri} does not exist" in app.snapshot.error
        assert "UNREACHABLE" in app.sub_title

        blocker.unlink()  # the mount comes back with the root on it (the TUI makes no root)
        (blocker / "root").mkdir(parents=True)
        await wait_for(pilot, lambda: app.snapshot.reachable, "recovery")
        assert not app.query_one("#monitor").has_class("-unreachable")
        assert app.query_one("#monitor-panels").display
        if not observe:  # attached: our own node is back in the swarm
            await wait_for(
                pilot,
                lambda: [n.state for n in app.query_one(SwarmPanel).nodes] == ["alive"],
                "our node alive",
            )
