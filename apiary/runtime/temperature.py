"""Colony temperature: one 0.0–1.0 figure for how hard this node is working.

Bands (SPEC §8): cold < 0.3 ≤ ideal < 0.7 ≤ warm ≤ 0.85 < hot ≤ 0.95 < critical.
"""

from __future__ import annotations


def band(temperature: float) -> str:
    if temperature < 0.3:
        return "cold"
    if temperature < 0.7:
        return "ideal"
    if temperature <= 0.85:
        return "warm"
    if temperature <= 0.95:
        return "hot"
    return "critical"


def blend(cpu: float, memory: float, queue: float = 0.0, thermal: float | None = None) -> float:
    """Weighted blend of utilisations in 0..1; the worst single pressure sets a floor.

    A node at 100 % memory is in trouble however idle its CPU is, so the blend never reads
    cooler than 90 % of the hottest input.
    """
    parts = [(cpu, 0.4), (memory, 0.4), (queue, 0.2)]
    if thermal is not None:
        parts = [(cpu, 0.3), (memory, 0.3), (queue, 0.15), (thermal, 0.25)]
    clamped = [(min(max(v, 0.0), 1.0), w) for v, w in parts]
    weighted = sum(v * w for v, w in clamped) / sum(w for _, w in clamped)
    return round(max(weighted, 0.9 * max(v for v, _ in clamped)), 3)
