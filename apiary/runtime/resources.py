"""This machine's cores and memory budget, honouring cgroup limits (containers, MemoryMax)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

_CGROUP_V2_MEMORY = "fs/cgroup/memory.max"
_CGROUP_V1_MEMORY = "fs/cgroup/memory/memory.limit_in_bytes"


def cgroup_memory_limit(sys_root: Path = Path("/sys")) -> int | None:
    """The cgroup memory limit in bytes, or None when unlimited or not in a cgroup."""
    for relative in (_CGROUP_V2_MEMORY, _CGROUP_V1_MEMORY):
        try:
            text = (sys_root / relative).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # v1 reports "no limit" as a huge number
            return int(text)
    return None


def memory_budget(sys_root: Path = Path("/sys")) -> int:
    total = psutil.virtual_memory().total
    limit = cgroup_memory_limit(sys_root)
    return min(total, limit) if limit else total


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
