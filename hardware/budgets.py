"""Budgets derived from a hardware profile: bees, memory per bee and leafcutter cell size.

The reserve rule: the interpreter, pyarrow/DataFusion libraries and the OS page cache need
memory no bee may take. Reserve 25 % of the memory budget, at least 96 MiB (a bare Python with
pyarrow loaded) and at most 512 MiB (beyond that, more reserve only starves the bees) — but never
more than half the budget, so a tiny container still leaves its bees something.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from apiary.cells.sizing import leafcutter
from apiary.errors import ConfigError
from hardware.detect import HardwareProfile, MiB

RESERVE_FRACTION = 0.25
RESERVE_MIN_BYTES = 96 * MiB
RESERVE_MAX_BYTES = 512 * MiB


@dataclass(frozen=True)
class Budgets:
    bees: int
    memory_budget_bytes: int
    reserve_bytes: int
    node_memory_bytes: int  # what all bees share: budget minus reserve
    memory_per_bee_bytes: int
    cell_target_bytes: int
    cell_max_bytes: int
    thermal_headroom: float | None  # 0..1 on a Pi, 1 = cool; feeds colony temperature

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reserve_for(memory_budget_bytes: int) -> int:
    """The interpreter/OS reserve for a memory budget (see the module docstring)."""
    wanted = int(memory_budget_bytes * RESERVE_FRACTION)
    clamped = min(max(wanted, RESERVE_MIN_BYTES), RESERVE_MAX_BYTES)
    return min(clamped, memory_budget_bytes // 2)


def budgets(profile: HardwareProfile, *, reserve_mb: int | None = None) -> Budgets:
    """One bee per core, the node's memory split evenly between them, cells sized to fit a bee.

    ``reserve_mb`` replaces the reserve rule. Raises ``ConfigError`` when memory is unknown (no
    ``/proc/meminfo`` and no cgroup limit: set ``memory_mb``) or the reserve leaves nothing.
    """
    budget = profile.memory_budget_bytes
    if budget is None or budget <= 0:
        raise ConfigError(
            "could not read this machine's memory (/proc/meminfo or a cgroup limit); "
            "set memory_mb in the config"
        )
    if reserve_mb is None:
        reserve = reserve_for(budget)
    elif isinstance(reserve_mb, bool) or not isinstance(reserve_mb, int) or reserve_mb < 0:
        raise ConfigError(f"reserve_mb must be a whole number ≥ 0, got {reserve_mb!r}")
    else:
        reserve = reserve_mb * MiB
    node = budget - reserve
    bees = profile.cores
    per_bee = node // bees
    if per_bee <= 0:
        raise ConfigError(
            f"a reserve of {reserve // MiB} MiB leaves no memory for {bees} bee(s) out of "
            f"{budget // MiB} MiB; lower reserve_mb or raise memory_mb"
        )
    sizing = leafcutter(per_bee)
    return Budgets(
        bees=bees,
        memory_budget_bytes=budget,
        reserve_bytes=reserve,
        node_memory_bytes=node,
        memory_per_bee_bytes=per_bee,
        cell_target_bytes=sizing.target_bytes,
        cell_max_bytes=sizing.max_bytes,
        thermal_headroom=profile.thermal_headroom,
    )
