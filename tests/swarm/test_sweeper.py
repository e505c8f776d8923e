"""An answered query's folder is deleted behind its answer; a failed or cancelled one's at once.

Deleting a folder is a listing and a delete per object: round trips on S3, ~1 ms on a local root
(removing folders other nodes watch). The answer does not wait for it; but a query that ends
without an answer deletes its folder before raising, since that is what stops its tasks on
other nodes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest
from support.fragment import FRAGMENT

from apiary.errors import QueryCancelledError
from apiary.ledger import CellMeta
from apiary.storage import open_storage
from apiary.swarm.coordinator import Coordinator, Sweeper
from apiary.swarm.manifest import Manifest, Task, result_path
from apiary.swarm.worker import ipc_bytes
from apiary.swarm.world import Heartbeat, NodeView

CELLS = [CellMeta(path="cell_a.parquet", rows=1, bytes=10)]
ALONE = [NodeView(Heartbeat(node_id="n1", bees_idle=1, cores=1), 0.0, "alive")]


def _coordinator(root: str, jobs: list[Callable[[], None]], answers: bool) -> Coordinator:
    storage = open_storage(root)
    runner = ThreadPoolExecutor(1)

    def answer(manifest: Manifest, task: Task) -> None:
        if answers:
            result = pa.table({"n": [len(task.cells)]})
            storage.put(result_path(manifest.query_id, task.task_id, "n1"), ipc_bytes(result))

    return Coordinator(
        storage,
        "n1",
        lambda: ALONE,
        poll_interval=0.01,
        local=lambda manifest, task: runner.submit(answer, manifest, task),
        sweep=jobs.append,  # kept, not run: the test runs them
    )


def test_the_answer_returns_before_its_folder_is_deleted_behind_it(tmp_path) -> None:
    jobs: list[Callable[[], None]] = []
    coordinator = _coordinator(str(tmp_path / "root"), jobs, answers=True)
    outcome = coordinator.run(FRAGMENT, CELLS)
    assert outcome.results[0].to_pylist() == [{"n": 1}]
    left = {o.path.rsplit("/", 1)[-1] for o in coordinator.storage.list("_queries")}
    assert left == {"manifest.json", "t0000.n1.arrow"}
    (job,) = jobs
    job()
    assert coordinator.storage.list("_queries") == []
    assert not (tmp_path / "root" / "_queries").exists()


def test_a_cancelled_query_deletes_its_folder_before_it_raises(tmp_path) -> None:
    jobs: list[Callable[[], None]] = []
    coordinator = _coordinator(str(tmp_path / "root"), jobs, answers=False)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(QueryCancelledError):
        coordinator.run(FRAGMENT, CELLS, cancel)
    assert coordinator.storage.list("_queries") == []
    assert jobs == []  # nothing left for a sweep


def test_closing_a_sweeper_finishes_what_it_was_given() -> None:
    sweeper = Sweeper()
    done: list[int] = []

    def slow(n: int) -> None:
        time.sleep(0.05)
        done.append(n)

    for n in range(5):
        sweeper.submit(lambda n=n: slow(n))
    sweeper.close()
    assert done == [0, 1, 2, 3, 4]
    sweeper.submit(lambda: done.append(5))  # a sweeper closed once still takes work
    sweeper.close()
    assert done == [0, 1, 2, 3, 4, 5]


def test_a_sweep_that_fails_leaves_the_sweeper_working(caplog) -> None:
    sweeper = Sweeper()
    done: list[str] = []

    def broken() -> None:
        raise OSError("the bucket went away")

    sweeper.submit(broken)
    sweeper.submit(lambda: done.append("next"))
    sweeper.close()
    assert done == ["next"]
    assert "the bucket went away" in caplog.text
