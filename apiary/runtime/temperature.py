"""Colony temperature: one 0.0–1.0 figure for how hard this node is working.

Bands (SPEC §8): cold < 0.3 ≤ ideal < 0.7 ≤ warm ≤ 0.85 < hot ≤ 0.95 < critical.
"""

from __future__ import annotations

HOT = 0.85  # above this a node is hot: writes wait
CRITICAL = 0.95  # above this a node is critical: new queries are refused

# How much the whole machine's load (other programs included) adds: it fills this share of the
# headroom the node's own load leaves, so on its own it reads at most 0.15 ("cold") and only
# tips a node that is already warm from its own work.
MACHINE_SHARE = 0.15


def band(temperature: float) -> str:
    if temperature < 0.3:
        return "cold"
    if temperature < 0.7:
        return "ideal"
    if temperature <= HOT:
        return "warm"
    if temperature <= CRITICAL:
        return "hot"
    return "critical"


def blend(
    cpu: float,
    memory: float,
    queue: float = 0.0,
    thermal: float | None = None,
    machine: float = 0.0,
) -> float:
    """Weighted blend of this node's own pressures in 0..1; the worst one sets a floor.

    A node at 100 % memory is in trouble however idle its CPU is, so the node's own blend never
    reads cooler than 90 % of its hottest input. ``machine`` (the whole machine's load) is minor:
    see ``MACHINE_SHARE``.
    """
    parts = [(cpu, 0.4), (memory, 0.4), (queue, 0.2)]
    if thermal is not None:  # a throttling SoC slows this node whoever heats it
        parts = [(cpu, 0.3), (memory, 0.3), (queue, 0.15), (thermal, 0.25)]
    clamped = [(_unit(v), w) for v, w in parts]
    weighted = sum(v * w for v, w in clamped) / sum(w for _, w in clamped)
    own = max(weighted, 0.9 * max(v for v, _ in clamped))
    return round(own + MACHINE_SHARE * _unit(machine) * (1.0 - own), 3)


def write_wait(temperature: float, max_wait: float) -> float:
    """Seconds a write waits at ``temperature``: none up to the hot threshold, rising linearly
    to ``max_wait`` at the critical one (and staying there above it)."""
    if temperature <= HOT or max_wait <= 0:
        return 0.0
    return max_wait * min((temperature - HOT) / (CRITICAL - HOT), 1.0)


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)
