"""A node's heartbeat loop: tell the swarm we are here, and keep a fresh world view."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apiary.errors import ApiaryError
from apiary.storage import Storage
from apiary.swarm.world import Heartbeat, NodeView, Timings, heartbeat_path, read_world

log = logging.getLogger("apiary.node")


class HeartbeatLoop:
    """Writes this node's heartbeat every ``timings.interval`` seconds in a background thread.

    ``describe`` builds the heartbeat's content each time (bees, temperature, cache); the
    loop only owns the timing, the world view and the clean goodbye.
    """

    def __init__(
        self,
        storage: Storage,
        node_id: str,
        describe: Callable[[], Heartbeat],
        timings: Timings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.node_id = node_id
        self.describe = describe
        self.timings = timings
        self.clock = clock
        self.world: list[NodeView] = []
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> list[NodeView]:
        """Write our heartbeat, then judge everyone's against its storage timestamp."""
        heartbeat = self.describe()
        heartbeat.node_id = self.node_id
        heartbeat.sent_at = self.clock().isoformat()
        heartbeat.beats = self.beats + 1
        heartbeat.sees = {view.node_id: view.state for view in self.world}
        path = heartbeat_path(self.node_id)
        self.storage.put(path, heartbeat.model_dump_json().encode())
        reference = self.storage.head(path).last_modified
        world = read_world(self.storage, self.timings, reference, sweep=True)
        self.world = world  # replaced whole, so readers never see a half-built view
        self.beats += 1
        return world

    def start(self) -> None:
        self.beat()  # the first heartbeat is written before start() returns
        self._thread = threading.Thread(target=self._run, name="apiary-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.timings.interval):
            try:
                self.beat()
            except ApiaryError as exc:  # storage down: keep trying, the swarm will judge us
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("heartbeat failed")

    def stop(self) -> None:
        """Stop beating and delete our heartbeat: a graceful exit is not a death."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timings.interval + 30)
        try:
            self.storage.delete(heartbeat_path(self.node_id))
        except ApiaryError as exc:
            log.warning("could not remove heartbeat on shutdown: %s", exc)
