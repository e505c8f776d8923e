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

from apiary.errors import ApiaryError
from apiary.runtime import temperature
from apiary.runtime.bees import BeePool

HISTORY_KEPT = 120  # samples: a minute at the default half-second spacing, enough for a sparkline


@dataclass(frozen=True)
class Reading:
    """CPU utilisation and memory pressure, each 0..1; ``queue`` (waiting callers per bee)
    is measured from the pool unless a sampler sets it."""

    cpu: float
    memory: float
    queue: float | None = None


def system_sampler(memory_budget: int | None = None) -> Callable[[], Reading]:
    """Readings of this machine: CPU since the previous reading; memory as the worse of the
    system's use and this process's RSS over ``memory_budget`` (pass the node's cgroup-aware
    budget; None = physical memory)."""
    budget = memory_budget or psutil.virtual_memory().total
    process = psutil.Process()
    psutil.cpu_percent(interval=None)  # the first call only starts psutil's measuring window

    def reading() -> Reading:
        own = process.memory_info().rss / budget
        system = psutil.virtual_memory().percent / 100
        return Reading(psutil.cpu_percent(interval=None) / 100, max(own, system))

    return reading


class Colony:
    """Temperature of one node's bee pool, with the regulation the SPEC asks for.

    ``thermal`` returns thermal pressure 0..1 (0 = cool, 1 = at the SoC's throttle point) or
    None where unknown. Readings are reused for ``min_interval`` seconds: psutil's CPU figure
    over a few milliseconds is noise, and the history keeps an even pace.
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
    ) -> None:
        self.pool = pool
        self._thermal = thermal
        self._sampler = sampler or system_sampler()
        self._sleep = sleep
        self._clock = clock
        self._min_interval = min_interval
        self._step = step
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
            value = temperature.blend(sample.cpu, sample.memory, queue, thermal)
            reading = {
                "temperature": value,
                "band": temperature.band(value),
                "cpu": round(sample.cpu, 3),
                "memory": round(sample.memory, 3),
                "queue": round(queue, 3),
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

    def admit_write(self, max_wait: float = 10.0) -> float:
        """Wait while the node is hot or worse, at most ``max_wait`` s; return the seconds waited.

        The write then proceeds whatever the temperature: backpressure slows writers down, it
        never loses their data.
        """
        waited = 0.0
        # Counted in steps slept, not by the clock, so the bound holds whatever the clock does.
        while max_wait - waited > 1e-6 and self.band() in ("hot", "critical"):
            pause = min(self._step, max_wait - waited)
            self._sleep(pause)
            waited += pause
        return round(waited, 3)

    def admit_query(self) -> None:
        """Refuse a new query while the node is critical."""
        reading = self.reading()
        if reading["band"] == "critical":
            raise ApiaryError(
                f"this node is critical (temperature {reading['temperature']:.2f}: cpu "
                f"{reading['cpu']:.0%}, memory {reading['memory']:.0%}, "
                f"{self.pool.queue_depth} tasks waiting for {self.pool.size} bees) and refuses "
                "new queries; retry in a few seconds, or add nodes to the colony"
            )

    def regulation(self, band: str | None = None) -> str:
        band = band or self.band()
        if band == "critical":
            return "refusing queries"
        if band == "hot":
            return "throttling writes"
        return "normal"

    def status(self) -> dict[str, Any]:
        reading = self.reading()
        bees = self.pool.status()
        return {
            **reading,
            "regulation": self.regulation(reading["band"]),
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
