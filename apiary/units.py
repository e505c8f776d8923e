"""How figures read on screen, the same in every command and in the TUI (pure logic).

Memory and sizes are binary with IEC names ("23.5 GiB", "512 MiB"): budgets come from cgroups
and ``/proc/meminfo``, which count in powers of two.
"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: float | None) -> str:
    """``512 MiB``, ``23.5 GiB``, ``1 GiB``: three significant figures at most, no ``.0``."""
    if n is None:
        return "—"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B" or abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 row``, ``0 rows``, ``4,000 rows``."""
    word = singular if n == 1 else (plural or f"{singular}s")
    return f"{n:,} {word}"
