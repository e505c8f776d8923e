"""Colony temperature and backpressure with forced readings (and one real queue)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apiary.errors import ApiaryError, TaskAbandonedError
from apiary.runtime.bees import BeePool
from apiary.runtime.colony import Colony, Reading, system_sampler
from apiary.runtime.temperature import HOT as HOT_THRESHOLD

MiB = 1 << 20


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[BeePool]:
    with BeePool(2, 16 * MiB, tmp_path, max_attempts=2, retry_delay=0) as pool:
        yield pool


class Sleeps:
    """An injected sleep that counts its calls instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def fixed(*readings: Reading):
    """A sampler returning ``readings`` in turn, then the last one forever."""
    queue = list(readings)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


COLD = Reading(0.1, 0.1)
IDEAL = Reading(0.5, 0.5)
WARM = Reading(0.8, 0.8)
HOT = Reading(1.0, 1.0)  # cpu and memory maxed out, nobody waiting: 0.90
CRITICAL = Reading(1.0, 1.0, queue=1.0)  # ... and a full queue: 1.00


@pytest.mark.parametrize(
    ("reading", "band", "action"),
    [
        (COLD, "cold", "normal"),
        (IDEAL, "ideal", "normal"),
        (WARM, "warm", "normal"),
        (HOT, "hot", "throttling writes"),
        (CRITICAL, "critical", "refusing queries"),
    ],
)
def test_forced_readings_give_the_spec_bands(
    pool: BeePool, reading: Reading, band: str, action: str
) -> None:
    status = Colony(pool, sampler=fixed(reading)).status()
    # "regulation" names the band (as the original SDK did); what it does is "action"
    assert status["band"] == status["regulation"] == band
    assert status["action"] == action
    assert status["setpoint"] == HOT_THRESHOLD  # regulation holds the node at or below it
    assert 0.0 <= status["temperature"] <= 1.0


def test_thermal_pressure_counts(pool: BeePool) -> None:
    cool = Colony(pool, sampler=fixed(IDEAL), thermal=lambda: 0.0).temperature()
    throttling = Colony(pool, sampler=fixed(IDEAL), thermal=lambda: 1.0).temperature()
    assert throttling > cool
    assert Colony(pool, sampler=fixed(IDEAL), thermal=lambda: 1.0).reading()["thermal"] == 1.0


def test_hot_node_makes_writes_wait_until_it_cools(pool: BeePool) -> None:
    sleeps = Sleeps()
    colony = Colony(pool, sampler=fixed(HOT, HOT, HOT, IDEAL), sleep=sleeps, min_interval=0)
    assert colony.admit_write(max_wait=10.0) == pytest.approx(0.3)
    assert sleeps.calls == [0.1, 0.1, 0.1]


def test_write_wait_is_bounded(pool: BeePool) -> None:
    sleeps = Sleeps()
    colony = Colony(pool, sampler=fixed(CRITICAL), sleep=sleeps, min_interval=0)
    assert colony.admit_write(max_wait=1.0) == pytest.approx(1.0)  # then the write proceeds
    assert len(sleeps.calls) == 10
    assert sum(sleeps.calls) == pytest.approx(1.0)


def test_cool_node_admits_writes_at_once(pool: BeePool) -> None:
    sleeps = Sleeps()
    for reading in (COLD, IDEAL, WARM):
        assert Colony(pool, sampler=fixed(reading), sleep=sleeps).admit_write() == 0.0
    assert sleeps.calls == []


def test_critical_node_refuses_queries(pool: BeePool) -> None:
    Colony(pool, sampler=fixed(HOT)).admit_query()  # hot still answers
    with pytest.raises(ApiaryError, match=r"critical.*retry.*add nodes"):
        Colony(pool, sampler=fixed(CRITICAL)).admit_query()


def test_a_real_queue_heats_the_colony(tmp_path: Path) -> None:
    release = threading.Event()

    def block(bee: object) -> None:
        release.wait(5)

    with BeePool(1, 16 * MiB, tmp_path, retry_delay=0) as pool:
        colony = Colony(pool, sampler=fixed(HOT), min_interval=0)
        assert colony.band() == "hot"
        callers = [
            threading.Thread(
                target=pool.run, args=(lambda bee: release.wait(5),), kwargs={"name": n}
            )
            for n in ("running", "waiting")
        ]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 5
        while pool.queue_depth < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        status = colony.status()
        assert status["queue"] == 1.0 and status["band"] == "critical"
        assert status["bees"]["busy"] == 1 and status["bees"]["waiting"] == 1
        with pytest.raises(ApiaryError, match="critical"):
            colony.admit_query()
        release.set()
        for caller in callers:
            caller.join()
        assert colony.band() == "hot"


def test_history_is_bounded_newest_last(pool: BeePool) -> None:
    values = [Reading(i / 10, i / 10) for i in range(10)]
    colony = Colony(pool, sampler=fixed(*values), history=4, min_interval=0)
    temperatures = [colony.temperature() for _ in values]
    assert colony.history == temperatures[-4:]
    assert colony.status()["history"][-1] == colony.history[-1]


def test_readings_are_reused_for_min_interval(pool: BeePool) -> None:
    now = [0.0]
    calls: list[int] = []

    def sampler() -> Reading:
        calls.append(1)
        return IDEAL

    colony = Colony(pool, sampler=sampler, clock=lambda: now[0], min_interval=0.5)
    colony.temperature()
    colony.status()
    assert len(calls) == 1 and len(colony.history) == 1
    now[0] += 0.6
    colony.temperature()
    assert len(calls) == 2 and len(colony.history) == 2


def test_status_reports_bees_and_abandoned_tasks(pool: BeePool) -> None:
    with pytest.raises(TaskAbandonedError):
        pool.run(lambda bee: 1 / 0, name="divide")
    status = Colony(pool, sampler=fixed(IDEAL)).status()
    assert status["bees"]["total"] == 2 and status["bees"]["idle"] == 2
    assert status["bees"]["busy"] == 0 and len(status["bees"]["detail"]) == 2
    [abandoned] = status["abandoned"]
    assert abandoned["task"] == "divide"
    assert [a["error"] for a in abandoned["attempts"]] == [
        "ZeroDivisionError: division by zero"
    ] * 2
    assert set(status) >= {"temperature", "band", "regulation", "action", "setpoint", "history"}


def test_default_sampler_reads_this_machine(pool: BeePool) -> None:
    reading = system_sampler(memory_budget=1 << 40)()
    assert 0.0 <= reading.cpu <= 1.0 and 0.0 <= reading.memory <= 1.0
    assert system_sampler(memory_budget=1)().memory > 1.0  # RSS far over a 1-byte budget
    status = Colony(pool).status()
    assert 0.0 <= status["temperature"] <= 1.0
    assert status["band"] in {"cold", "ideal", "warm", "hot", "critical"}
