"""Colony temperature measures this node's own load; the write wait is proportional (issue item 7).

Other programs keeping the machine busy used to make every node "hot", so each 1-row write
waited the full 10 s. Now the machine's load is a minor input that cannot make a node hot on its
own, and a hot node's writers wait in proportion to how far above the hot threshold it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow as pa
import pytest

from apiary import Apiary
from apiary.config import load_settings
from apiary.runtime import temperature
from apiary.runtime.bees import BeePool
from apiary.runtime.colony import Colony, Reading, system_sampler

MiB = 1 << 20


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[BeePool]:
    with BeePool(2, 16 * MiB, tmp_path, retry_delay=0) as pool:
        yield pool


class Sleeps(list[float]):
    """An injected sleep that records its calls instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def colony(pool: BeePool, reading: Reading, sleeps: Sleeps, **kwargs: float) -> Colony:
    return Colony(pool, sampler=lambda: reading, sleep=sleeps, min_interval=0, **kwargs)


# -- pure logic ------------------------------------------------------------------------------


@pytest.mark.parametrize("machine", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("own", [0.0, 0.2, 0.5])
def test_a_busy_machine_alone_cannot_make_a_node_hot(own: float, machine: float) -> None:
    value = temperature.blend(own, own, 0.0, machine=machine)
    assert temperature.band(value) in ("cold", "ideal")
    assert value >= temperature.blend(own, own, 0.0)  # but it is felt


def test_the_machine_tips_a_node_already_warm_from_its_own_work() -> None:
    own = temperature.blend(0.94, 0.94)  # 0.846: the top of warm
    assert temperature.band(own) == "warm"
    assert temperature.band(temperature.blend(0.94, 0.94, machine=1.0)) == "hot"


@pytest.mark.parametrize(
    ("value", "wait"),
    [(0.5, 0.0), (0.85, 0.0), (0.875, 1.0), (0.9, 2.0), (0.95, 4.0), (1.0, 4.0)],
)
def test_the_write_wait_grows_from_hot_to_critical(value: float, wait: float) -> None:
    assert temperature.write_wait(value, 4.0) == pytest.approx(wait)


def test_machine_load_alone_admits_writes_at_once(pool: BeePool) -> None:
    sleeps = Sleeps()
    busy_machine = Reading(cpu=0.05, memory=0.1, machine=1.0)
    assert colony(pool, busy_machine, sleeps).admit_write() == 0.0
    assert sleeps == []


def test_a_hot_node_waits_in_proportion(pool: BeePool) -> None:
    sleeps = Sleeps()
    hot = Reading(cpu=1.0, memory=1.0)  # 0.90: halfway from hot to critical
    assert temperature.blend(1.0, 1.0) == 0.9
    assert colony(pool, hot, sleeps, write_wait_max=2.0).admit_write() == pytest.approx(1.0)
    assert sum(sleeps) == pytest.approx(1.0) and max(sleeps) <= 0.1 + 1e-9


def test_no_wait_when_the_maximum_is_zero(pool: BeePool) -> None:
    sleeps = Sleeps()
    critical = Reading(cpu=1.0, memory=1.0, queue=1.0)
    assert colony(pool, critical, sleeps, write_wait_max=0).admit_write() == 0.0
    assert sleeps == []


def test_reading_reports_own_and_machine_load(pool: BeePool) -> None:
    reading = colony(pool, Reading(0.25, 0.5, machine=0.9), Sleeps()).reading()
    assert (reading["cpu"], reading["memory"], reading["machine"]) == (0.25, 0.5, 0.9)


def test_the_wait_maximum_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().write_wait_max == 5.0
    monkeypatch.setenv("APIARY_WRITE_WAIT_MAX", "0.5")
    assert load_settings().write_wait_max == 0.5
    with Apiary("t", str(tmp_path / "root")) as ap:
        assert ap.colony.write_wait_max == 0.5


def test_the_sampler_reads_this_process_against_its_cores() -> None:
    sample = system_sampler(memory_budget=1 << 40, cores=1)
    time.sleep(0.3)
    reading = sample()
    assert 0.0 <= reading.cpu <= 1.0 and 0.0 <= reading.machine <= 1.0
    assert reading.memory < 0.01  # this process's RSS over 1 TiB


def test_the_sampler_measures_this_process_not_the_machine() -> None:
    sample = system_sampler(memory_budget=1 << 40, cores=1)
    time.sleep(0.3)
    idle = sample().cpu
    started, cpu_started = time.monotonic(), time.process_time()
    while time.process_time() - cpu_started < 0.4:  # this process works 0.4 s of CPU
        pass
    share = (time.process_time() - cpu_started) / (time.monotonic() - started)
    busy = sample().cpu
    assert busy == pytest.approx(share, abs=0.1) and busy > idle


# -- real load from other processes ------------------------------------------------------------

BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """Every core kept at 100 % by separate processes (bounded in time, killed at the end)."""
    burners = [
        subprocess.Popen([sys.executable, "-c", BURN.format(seconds=120)])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        psutil.cpu_percent(interval=None)
        deadline = time.monotonic() + 20
        while psutil.cpu_percent(interval=0.5) < 90:
            assert time.monotonic() < deadline, "the burners did not load the machine"
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait(10)


@pytest.mark.multiprocess
def test_a_one_row_write_does_not_wait_on_a_busy_machine(
    tmp_path: Path, busy_machine: None
) -> None:
    with Apiary("busy", str(tmp_path / "root")) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"n": "int64"})
        ap.colony_status()
        time.sleep(0.6)  # so the next reading covers a real window of the busy machine
        rows = [pa.table({"n": [i]}) for i in range(3)]
        results = [ap.write_to_frame("h", "b", "f", row) for row in rows]
        status = ap.colony_status()
    assert [r["waited_ms"] for r in results] == [0.0, 0.0, 0.0]
    assert all(temperature.band(r["temperature"]) not in ("hot", "critical") for r in results)
    assert status["machine"] > 0.8  # the machine really was busy while we wrote
