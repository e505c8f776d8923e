"""CPU and memory limits that cgroups put on this process (containers, systemd ``MemoryMax``).

Limits nest, so every cgroup from the process's own (``/proc/self/cgroup``) up to the root of the
hierarchy is checked and the tightest wins. Inside a container the process's cgroup path often
names a directory that is not visible there (``/docker/<id>``); those are skipped, and the
hierarchy's root, which is then the container's own cgroup, still counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardware.files import read_text

# cgroup v1 says "no limit" with the largest page-aligned 64-bit number (9223372036854771712).
UNLIMITED = 1 << 60
_V2 = ""  # /proc/self/cgroup names the unified (v2) hierarchy with an empty controller list
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int | None = None  # None: unlimited
    cpu_quota: float | None = None  # in CPUs (quota / period); None: unlimited
    at_root: bool = False  # a limit sits at the hierarchy's root: only a container sees that


def membership(proc: Path) -> dict[str, str]:
    """Controller → this process's cgroup path, from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    for line in (read_text(proc / "self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[_V2] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def _chain(base: Path, path: str) -> list[Path]:
    """The process's own cgroup directory, then each ancestor, ending at ``base`` (the root)."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), 0, -1)] + [base]


def _memory_limit(text: str | None) -> int | None:
    value = (text or "").strip()
    if not value.isdigit() or int(value) >= UNLIMITED:  # "max" (v2) or a huge number (v1)
        return None
    return int(value)


def _v2_quota(text: str | None) -> float | None:
    fields = (text or "").split()
    if len(fields) != 2 or not fields[0].isdigit() or not fields[1].isdigit():
        return None  # "max 100000" is unlimited
    period = int(fields[1])
    return int(fields[0]) / period if period else None


def _v1_quota(directory: Path) -> float | None:
    quota = (read_text(directory / "cpu.cfs_quota_us") or "").strip()
    period = (read_text(directory / "cpu.cfs_period_us") or "").strip()
    if not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None  # quota -1 is unlimited
    return int(quota) / int(period)


def read_limits(proc: Path, sys_root: Path) -> CgroupLimits:
    paths = membership(proc)
    root = sys_root / "fs/cgroup"
    memory: list[tuple[int, bool]] = []  # (limit, found at the root)
    quota: list[tuple[float, bool]] = []

    for directory in _chain(root, paths.get(_V2, "/")):
        limit = _memory_limit(read_text(directory / "memory.max"))
        if limit is not None:
            memory.append((limit, directory == root))
        cpus = _v2_quota(read_text(directory / "cpu.max"))
        if cpus is not None:
            quota.append((cpus, directory == root))

    v1_memory = root / "memory"
    for directory in _chain(v1_memory, paths.get("memory", "/")):
        limit = _memory_limit(read_text(directory / "memory.limit_in_bytes"))
        if limit is not None:
            memory.append((limit, directory == v1_memory))
    for name in _V1_CPU_DIRS:
        for directory in _chain(root / name, paths.get("cpu", "/")):
            cpus = _v1_quota(directory)
            if cpus is not None:
                quota.append((cpus, directory == root / name))

    return CgroupLimits(
        memory_bytes=min((m for m, _ in memory), default=None),
        cpu_quota=min((q for q, _ in quota), default=None),
        at_root=any(r for _, r in memory) or any(r for _, r in quota),
    )
