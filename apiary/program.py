"""How to start this very program again as a separate process."""

from __future__ import annotations

import sys


def apiary_command(*args: str) -> list[str]:
    """``apiary <args>`` as this very program: the frozen binary runs itself, Python ``-m``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "apiary", *args]
