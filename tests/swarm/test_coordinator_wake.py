"""The coordinator takes its own task's answer the moment that task ends, not at its next look
in the bucket (on a local root that look is 10 ms away; it was most of what sharing a short
query cost)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from apiary.ledger import CellMeta
from apiary.storage import open_storage
from apiary.swarm.coordinator import Coordinator, Outcome
from apiary.swarm.manifest import FrameRef, Manifest, Task, result_path
from apiary.swarm.worker import ipc_bytes
from apiary.swarm.world import Heartbeat, NodeView

HOUR = 3600.0
FRAGMENT = Manifest(
    query_id="0" * 32,
    coordinator="n1",
    frames=[
        FrameRef(
            hive="h", box="b", frame="f", columns=[{"name": "x", "type": "int64", "nullable": True}]
        )
    ],
    fragment_sql="SELECT count(*) AS n FROM h.b.f",
    tasks=[],
)


def test_its_own_tasks_answer_is_taken_without_waiting_for_the_next_look(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    runner = ThreadPoolExecutor(1)
    started = threading.Event()

    def answer(manifest: Manifest, task: Task) -> None:
        started.set()
        time.sleep(0.3)  # still running when the coordinator first looks
        result = pa.table({"n": [len(task.cells)]})
        storage.put(result_path(manifest.query_id, task.task_id, "n1"), ipc_bytes(result))

    coordinator = Coordinator(
        storage,
        "n1",
        lambda: [NodeView(Heartbeat(node_id="n1", bees_idle=1, cores=1), 0.0, "alive")],
        poll_interval=HOUR,  # between looks: only the task's end can cut the wait short
        wait_interval=HOUR,
        local=lambda manifest, task: runner.submit(answer, manifest, task),
    )
    cells = [CellMeta(path="cell_a.parquet", rows=1, bytes=10)]
    outcome: list[Outcome] = []
    thread = threading.Thread(
        target=lambda: outcome.append(coordinator.run(FRAGMENT, cells)), daemon=True
    )
    thread.start()
    thread.join(timeout=60)  # an hour's wait if the end of its own task did not wake it
    assert not thread.is_alive()
    assert started.is_set()
    assert outcome[0].results[0].to_pylist() == [{"n": 1}]
    assert outcome[0].tasks_per_node == {"n1": 1}
    assert storage.counters["list"] <= 3  # a look before the answer, one after, the cleanup
    runner.shutdown()
