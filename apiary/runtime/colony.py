"""Colony temperature and backpressure (SPEC §8): how hard this node is working, and what it
does about it — writes wait (bounded) when hot, new queries are refused when critical.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from apiary.errors import NodeBusyError
from apiary.runtime import temperature
from apiary.runtime.bees import BeePool

DEFAULT_WRITE_WAIT_MAX = 5.0  # seconds a write waits at most, on a critical node
HISTORY_KEPT = 120  # samples: a minute at the default half-second spacing, enough for a sparkline


@dataclass(frozen=True)
class Reading:
    """This node's own load, each 0..1: ``cpu`` is its process's CPU (bee threads included) over
    its cores, ``memory`` its RSS over its memory budget, ``queue`` waiting callers per bee
    (measured from the pool unless a sampler sets it). ``machine`` is the whole machine's load,
    other programs included: a minor input (see ``temperature.MACHINE_SHARE``)."""

    cpu: float
    memory: float
    queue: float | None = None
    machine: float = 0.0


# CPU figures over a shorter window are noise: a process that just ran a line of Python for a
# millisecond was "100 % busy" in it.
MIN_CPU_WINDOW = 0.2


def system_sampler(
    memory_budget: int | None = None,
    cores: int | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], Reading]:
    """Readings of this process on this machine, CPU measured since the previous reading.

    ``memory_budget`` is the node's cgroup-aware budget (None = physical memory) and ``cores``
    the cores it may use (None = all of the machine's). The machine's own CPU and memory use
    become ``machine``.
    """
    budget = memory_budget or psutil.virtual_memory().total
    share = 100.0 * (cores or psutil.cpu_count() or 1)
    process = psutil.Process()
    # The first calls only start psutil's measuring windows.
    process.cpu_percent(interval=None)
    psutil.cpu_percent(interval=None)
    last = {"at": clock(), "own": 0.0, "machine": 0.0}

    def reading() -> Reading:
        now = clock()
        if now - last["at"] >= MIN_CPU_WINDOW:
            last.update(
                at=now,
                own=process.cpu_percent(interval=None) / share,
                machine=psutil.cpu_percent(interval=None) / 100,
            )
        own_memory = process.memory_info().rss / budget
        machine_memory = psutil.virtual_memory().percent / 100
        return Reading(
            cpu=min(last["own"], 1.0),
            memory=own_memory,
            machine=max(last["machine"], machine_memory),
        )

    return reading


class Colony:
    """Temperature of one node's bee pool, with the regulation the SPEC asks for.

    ``thermal`` returns thermal pressure 0..1 (0 = cool, 1 = at the SoC's throttle point) or
    None where unknown. A hot node's writers wait up to ``write_wait_max`` seconds, in proportion
    to how far above the hot threshold it is (``temperature.write_wait``). Readings are reused
    for ``min_interval`` seconds: psutil's CPU figure over a few milliseconds is noise, and the
    history keeps an even pace.
    """

    def __init__(
        self,
        pool: BeePool,
        *,
        thermal: Callable[[], float | None] = lambda: None,
        sampler: Callable[[], Reading] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = 0.5,
        history: int = HISTORY_KEPT,
        step: float = 0.1,
        write_wait_max: float = DEFAULT_WRITE_WAIT_MAX,
    ) -> None:
        self.pool = pool
        self._thermal = thermal
        self._sampler = sampler or system_sampler()
        self._sleep = sleep
        self._clock = clock
        self._min_interval = min_interval
        self._step = step
        self.write_wait_max = write_wait_max
        self._history: deque[float] = deque(maxlen=history)
        self._last: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def reading(self) -> dict[str, Any]:
        """The latest inputs and temperature, sampling anew when the last one is stale."""
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < self._min_interval:
                return self._last[1]
            sample = self._sampler()
            queue = sample.queue
            if queue is None:
                queue = self.pool.queue_depth / self.pool.size
            thermal = self._thermal()
            value = temperature.blend(sample.cpu, sample.memory, queue, thermal, sample.machine)
            reading = {
                "temperature": value,
                "band": temperature.band(value),
                "cpu": round(sample.cpu, 3),
                "memory": round(sample.memory, 3),
                "queue": round(queue, 3),
                "machine": round(sample.machine, 3),
                "thermal": thermal,
            }
            self._history.append(value)
            self._last = (now, reading)
            return reading

    def temperature(self) -> float:
        return self.reading()["temperature"]

    def band(self) -> str:
        return self.reading()["band"]

    @property
    def history(self) -> list[float]:
        with self._lock:
            return list(self._history)

    # -- regulation --------------------------------------------------------------------------

    def admit_write(self, max_wait: float | None = None) -> float:
        """Wait while the node is hot or worse; return the seconds waited.

        The wait allowed is re-read at every step from the temperature, so it ends as soon as the
        node cools; at most ``max_wait`` (default ``write_wait_max``) at critical. The write then
        proceeds whatever the temperature: backpressure slows writers down, it never loses
        their data.
        """
        limit = self.write_wait_max if max_wait is None else max_wait
        waited = 0.0
        # Counted in steps slept, not by the clock, so the bound holds whatever the clock does.
        while True:
            allowed = temperature.write_wait(self.temperature(), limit)
            if allowed - waited <= 1e-6:
                return round(waited, 3)
            pause = min(self._step, allowed - waited)
            self._sleep(pause)
            waited += pause

    def admit_query(self) -> None:
        """Refuse a new query while the node is critical."""
        reading = self.reading()
        if reading["band"] == "critical":
            raise NodeBusyError(
                f"this node is critical (temperature {reading['temperature']:.2f}: cpu "
                f"{reading['cpu']:.0%}, memory {reading['memory']:.0%}, "
                f"{self.pool.queue_depth} tasks waiting for {self.pool.size} bees) and refuses "
                "new queries; retry in a few seconds, or add nodes to the colony"
            )

    def action(self, band: str | None = None) -> str:
        """What regulation does in ``band`` (default: the current one)."""
        band = band or self.band()
        if band == "critical":
            return "refusing queries"
        if band == "hot":
            return "throttling writes"
        return "normal"

    def status(self) -> dict[str, Any]:
        """The reading plus what regulation does about it.

        ``regulation`` names the band (as the original SDK's did) and ``action`` what the node
        does in it; ``setpoint`` is the temperature regulation holds the node at or below
        (writes are slowed above it).
        """
        reading = self.reading()
        bees = self.pool.status()
        return {
            **reading,
            "regulation": reading["band"],
            "setpoint": temperature.HOT,
            "action": self.action(reading["band"]),
            "history": self.history,
            "bees": {
                "total": self.pool.size,
                "idle": sum(b["state"] == "idle" for b in bees),
                "busy": sum(b["task"] is not None for b in bees),
                "waiting": self.pool.queue_depth,
                "detail": bees,
            },
            "abandoned": [a.as_dict() for a in self.pool.abandoned],
        }
