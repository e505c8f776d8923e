"""The coordinator takes an answer the moment it can, not at its next look in the bucket (on a
local root that look is 2-10 ms away; it was most of what sharing a short query cost): its own
task's when that task ends, and on a local root any node's when the kernel says it landed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from support.fragment import FRAGMENT

from apiary.ledger import CellMeta
from apiary.storage import open_storage
from apiary.swarm.coordinator import Coordinator, Outcome
from apiary.swarm.manifest import Manifest, Task, result_path
from apiary.swarm.worker import ipc_bytes
from apiary.swarm.world import Heartbeat, NodeView

HOUR = 3600.0


def test_its_own_tasks_answer_is_taken_without_waiting_for_the_next_look(tmp_path) -> None:
    # A memory root: no kernel to tell when a file lands, so only the task's end can wake it.
    storage = open_storage(f"memory://wake-{tmp_path.name}")
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


def test_another_nodes_answer_on_a_local_root_is_taken_as_it_lands(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "root"))
    world = [
        NodeView(Heartbeat(node_id=node, bees_idle=1, cores=1), 0.0, "alive")
        for node in ("n1", "n2")
    ]
    coordinator = Coordinator(
        storage, "n1", lambda: world, poll_interval=HOUR, wait_interval=HOUR, local=None
    )
    cells = [CellMeta(path=f"cell_{c}.parquet", rows=1, bytes=10) for c in "ab"]

    def remote_worker() -> None:  # another process on this machine, as far as files go
        while not (manifests := list(storage.list("_queries"))):
            time.sleep(0.01)
        manifest = Manifest.model_validate_json(storage.get(manifests[0].path))
        time.sleep(0.3)  # the coordinator is waiting by now
        for task in manifest.tasks:
            result = pa.table({"n": [len(task.cells)]})
            storage.put(result_path(manifest.query_id, task.task_id, task.node), ipc_bytes(result))

    worker = threading.Thread(target=remote_worker, daemon=True)
    worker.start()
    outcome: list[Outcome] = []
    thread = threading.Thread(
        target=lambda: outcome.append(coordinator.run(FRAGMENT, cells)), daemon=True
    )
    thread.start()
    thread.join(timeout=60)  # an hour's wait if the answers landing did not wake it
    assert not thread.is_alive()
    assert sum(r.column("n")[0].as_py() for r in outcome[0].results) == 2
    assert outcome[0].tasks_per_node == {"n1": 1, "n2": 1}
    assert list(storage.list("_queries")) == []  # its folder went with it
