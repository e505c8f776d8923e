"""Detect this machine's hardware from files under injectable ``/proc`` and ``/sys`` roots.

The board comes from ``hardware.board`` (device tree, then cpuinfo), limits from
``hardware.cgroups``, temperature and throttling from ``hardware.thermal`` and the boot medium
from ``hardware.boot``. A missing or unreadable file never raises: the field it feeds becomes
None or "unknown", so tests run against captured trees and odd kernels cannot stop a node."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware import boot, cgroups, thermal
from hardware.board import read_board
from hardware.files import count_cpus, read_text
from hardware.models import PiModel
from hardware.overrides import Overrides, parse_overrides
from hardware.thermal import Throttling

MiB = 1024 * 1024


@dataclass(frozen=True)
class HardwareProfile:
    model: PiModel | None  # None: not a Raspberry Pi we know
    model_name: str | None  # as the device tree (or cpuinfo) gives it
    revision: int | None
    ram_mb: int | None  # RAM variant from the revision code
    soc: str | None
    cores: int  # CPUs this process may use: online, capped by affinity and CPU quota
    cpus_online: int | None
    cpus_allowed: int | None  # this process's affinity (taskset, cgroup cpuset)
    cpu_quota: float | None  # cgroup CPU quota in CPUs
    memory_total_bytes: int | None  # MemTotal: physical memory the kernel manages
    memory_limit_bytes: int | None  # cgroup memory limit
    memory_budget_bytes: int | None  # min(physical, cgroup limit), or the override
    temperature_c: float | None
    throttling: Throttling | None  # None: the firmware does not say
    root_device: str | None
    boot_medium: str  # one of boot.MEDIA
    in_container: bool  # a cgroup limit at the hierarchy's root (see hardware.cgroups)
    overridden: tuple[str, ...] = ()

    @property
    def is_pi(self) -> bool:
        return self.model is not None

    @property
    def revision_code(self) -> str | None:
        return None if self.revision is None else f"{self.revision:x}"

    @property
    def thermal_headroom(self) -> float | None:
        """0..1 (1 = cool) on a Pi with a thermal zone; None elsewhere."""
        if not self.is_pi or self.temperature_c is None:
            return None
        return thermal.thermal_headroom(self.temperature_c)

    def to_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "model": model.key if model else None,
            "model_name": self.model_name,
            "revision": self.revision_code,
            "ram_mb": self.ram_mb,
            "soc": self.soc,
            "max_clock_mhz": model.max_clock_mhz if model else None,
            "cores": self.cores,
            "cpus_online": self.cpus_online,
            "cpus_allowed": self.cpus_allowed,
            "cpu_quota": self.cpu_quota,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_limit_bytes": self.memory_limit_bytes,
            "memory_budget_bytes": self.memory_budget_bytes,
            "temperature_c": self.temperature_c,
            "thermal_headroom": self.thermal_headroom,
            "throttling": self.throttling.to_dict() if self.throttling else None,
            "root_device": self.root_device,
            "boot_medium": self.boot_medium,
            "in_container": self.in_container,
            "overridden": list(self.overridden),
        }


def _meminfo_total(proc: Path) -> int | None:
    for line in (read_text(proc / "meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) * 1024  # the kernel says "kB" and means KiB
    return None


def _allowed_cpus(proc: Path) -> int | None:
    """CPUs this process may run on ("Cpus_allowed_list" in /proc/self/status)."""
    for line in (read_text(proc / "self/status") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "Cpus_allowed_list":
            return count_cpus(value)
    return None


def _cores(online: int | None, allowed: int | None, quota: float | None) -> int:
    caps = [n for n in (online, allowed) if n is not None]
    if quota is not None:
        caps.append(math.ceil(quota))  # a quota of 1.5 CPUs can keep 2 busy
    return max(1, min(caps, default=1))


def detect(
    proc: Path = Path("/proc"),
    sys: Path = Path("/sys"),
    *,
    overrides: Mapping[str, Any] | None = None,
) -> HardwareProfile:
    """This machine's hardware profile; ``overrides`` (config) replace detected values.

    Raises ``ConfigError`` for an invalid override; never for missing or odd kernel files.
    """
    chosen = parse_overrides(overrides)
    board = read_board(proc, sys)
    online_text = read_text(sys / "devices/system/cpu/online")
    online = count_cpus(online_text) if online_text is not None else None
    online = online or board.processors or None
    allowed = _allowed_cpus(proc)
    limits = cgroups.read_limits(proc, sys)
    total = _meminfo_total(proc)
    budgets = [m for m in (total, limits.memory_bytes) if m is not None]
    device = boot.root_device(proc)

    profile = HardwareProfile(
        model=board.model,
        model_name=board.name,
        revision=board.revision,
        ram_mb=board.ram_mb,
        soc=board.model.soc if board.model else None,
        cores=_cores(online, allowed, limits.cpu_quota),
        cpus_online=online,
        cpus_allowed=allowed,
        cpu_quota=limits.cpu_quota,
        memory_total_bytes=total,
        memory_limit_bytes=limits.memory_bytes,
        memory_budget_bytes=min(budgets, default=None),
        temperature_c=thermal.read_temperature(sys),
        throttling=thermal.read_throttled(sys),
        root_device=device,
        boot_medium=boot.medium(device, sys),
        in_container=limits.at_root,
    )
    return _apply(profile, chosen)


def _apply(profile: HardwareProfile, chosen: Overrides) -> HardwareProfile:
    changes: dict[str, Any] = {}
    if chosen.cores is not None:
        changes["cores"] = chosen.cores
    if chosen.memory_mb is not None:
        changes["memory_budget_bytes"] = chosen.memory_mb * MiB
    if chosen.model is not None:
        changes["model"] = chosen.model
        changes["soc"] = chosen.model.soc
    if not changes:
        return profile
    return dataclasses.replace(profile, overridden=chosen.names, **changes)
