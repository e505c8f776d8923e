"""A task reads only the rows of a narrowed frame within its own key range.

The coordinator narrows another frame of a join to the cells that may hold keys of the task's
own cells, and sends the key range too, so the scan skips the row groups of a cell that only
straddles the range. The range comes from the manifest, which is untrusted input: a bad one
is refused or fails the task, and never reads more than the cells it names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.farm_task import COUNT_SITES, JOINED, NODE, make_farm, run_task, task_manifest

from apiary.swarm.manifest import Manifest
from apiary.swarm.worker import Worker


@pytest.fixture
def farm(tmp_path: Path):
    """The farm's frames and a real worker for ``node-x``."""
    ap = make_farm(tmp_path / "root")
    yield ap, Worker(ap.storage, NODE)
    ap.shutdown()


def test_the_task_reads_only_the_rows_within_its_range(farm) -> None:
    ap, worker = farm
    assert run_task(ap, worker, task_manifest(ap, COUNT_SITES, None)) == [{"q0": 200}]
    ranged = task_manifest(ap, COUNT_SITES, {"column": "v", "low": 0, "high": 9})
    assert run_task(ap, worker, ranged) == [{"q0": 10}]


def test_a_join_under_the_range_answers_as_without_it(farm) -> None:
    ap, worker = farm
    plain = run_task(ap, worker, task_manifest(ap, JOINED, None))
    ranged = run_task(ap, worker, task_manifest(ap, JOINED, {"column": "v", "low": 0, "high": 9}))
    assert plain == ranged == [{"q0": 10, "q1": 10}]


@pytest.mark.parametrize(
    ("key_range", "reason"),
    [
        ({"column": "nope", "low": 0, "high": 9}, "which its frame does not have"),
        ({"column": "v", "low": "zero", "high": 9}, "is not a int64 value"),
    ],
)
def test_a_range_that_does_not_fit_the_frame_fails_the_task(farm, key_range, reason) -> None:
    ap, worker = farm
    error = run_task(ap, worker, task_manifest(ap, COUNT_SITES, key_range))
    assert isinstance(error, str) and reason in error, error
    assert worker.tasks_run == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"column": "v; DROP", "low": 0, "high": 9}, "column"),
        ({"column": "v", "low": "x" * 1000, "high": 9}, "at most 256 characters"),
        ({"column": "v", "low": [1], "high": 9}, "low"),
    ],
)
def test_a_malformed_range_is_refused(farm, change, reason) -> None:
    ap, worker = farm
    error = run_task(ap, worker, task_manifest(ap, COUNT_SITES, change))
    assert isinstance(error, str) and "refused" in error and reason in error, error


def test_a_range_on_the_driving_frame_is_refused(farm) -> None:
    ap, _ = farm
    body = task_manifest(ap, COUNT_SITES, None)
    body["tasks"][0]["frame_ranges"] = {"0": {"column": "v", "low": 0, "high": 9}}
    with pytest.raises(ValueError, match="other than the driving one"):
        Manifest.model_validate(body)
