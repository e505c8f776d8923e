"""Detection against captured /proc and /sys trees of every supported board, and containers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware import budgets, detect

FIXTURES = Path(__file__).parent / "fixtures"
KiB = 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class Expected:
    model: str | None
    name: str | None
    revision: str | None
    ram_mb: int | None
    cores: int
    budget: int  # memory budget, bytes
    per_bee: int  # memory per bee, bytes
    boot: str
    temperature: float | None


CASES: dict[str, Expected] = {
    # 944,268 kB; reserve 25 % (230.5 MiB); 4 bees share the rest.
    "pi3b": Expected(
        "3B", "Raspberry Pi 3 Model B Rev 1.2", "a02082", 1024, 4, 944_268 * KiB, 181_299_456,
        "sd", 51.54,
    ),
    "pi3bplus": Expected(
        "3B+", "Raspberry Pi 3 Model B Plus Rev 1.3", "a020d3", 1024, 4, 948_304 * KiB,
        182_074_368, "usb", 55.844,
    ),
    # 3.7 GiB: the reserve is capped at 512 MiB.
    "pi4b_4gb": Expected(
        "4B", "Raspberry Pi 4 Model B Rev 1.4", "c03114", 4096, 4, 3_884_360 * KiB,
        (3_884_360 * KiB - 512 * MiB) // 4, "sd", 47.225,
    ),
    "pi4b_8gb": Expected(
        "4B", "Raspberry Pi 4 Model B Rev 1.4", "d03114", 8192, 4, 7_998_532 * KiB,
        (7_998_532 * KiB - 512 * MiB) // 4, "usb", 44.303,
    ),
    "pi400": Expected(
        "400", "Raspberry Pi 400 Rev 1.0", "c03130", 4096, 4, 3_885_020 * KiB, 860_347_392,
        "sd", 38.946,
    ),
    "pi5_8gb": Expected(
        "5", "Raspberry Pi 5 Model B Rev 1.0", "d04170", 8192, 4, 8_245_376 * KiB, 1_976_598_528,
        "nvme", 52.65,
    ),
    "pi500": Expected(
        "500", "Raspberry Pi 500 Rev 1.0", "d04190", 8192, 4, 8_245_360 * KiB, 1_976_594_432,
        "sd", 46.1,
    ),
    # 429 MiB: a 107 MiB reserve (25 %) leaves 80 MiB per bee.
    "zero2w": Expected(
        "Zero 2 W", "Raspberry Pi Zero 2 W Rev 1.0", "902120", 512, 4, 439_328 * KiB, 84_350_976,
        "sd", 55.31,
    ),
    "cm4_2gb": Expected(
        "CM4", "Raspberry Pi Compute Module 4 Rev 1.0", "b03140", 2048, 4, 1_891_180 * KiB,
        363_106_560, "sd", 49.173,
    ),
    "cm5_4gb": Expected(
        "CM5", "Raspberry Pi Compute Module 5 Rev 1.0", "c04180", 4096, 4, 4_141_040 * KiB,
        925_888_512, "emmc", 50.212,
    ),
    "pi4b_throttled": Expected(
        "4B", "Raspberry Pi 4 Model B Rev 1.5", "c03115", 4096, 4, 3_884_360 * KiB, 860_178_432,
        "sd", 82.797,
    ),
    # x86 host with 16 GB; the container has memory.max 512 MiB and cpu.max 1.5 CPUs → 2 bees,
    # (512 - 128 reserve) / 2 = 192 MiB each.
    "container_cgroupv2": Expected(
        None, None, None, None, 2, 512 * MiB, 192 * MiB, "unknown", 44.0,
    ),
    # A Pi 4 running Docker on cgroup v1: 1 GiB limit, quota 2 CPUs; (1024 - 256) / 2 = 384 MiB.
    "cgroupv1_limited": Expected(
        "4B", "Raspberry Pi 4 Model B Rev 1.2", "c03112", 4096, 2, 1024 * MiB, 384 * MiB,
        "unknown", 61.004,
    ),
}  # fmt: skip


def test_every_fixture_tree_has_expectations() -> None:
    assert sorted(CASES) == sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture(name: str, captured) -> None:
    want = CASES[name]
    profile = detect(*captured(name))
    plan = budgets(profile)
    assert (profile.model.key if profile.model else None) == want.model
    assert profile.model_name == want.name
    assert profile.revision_code == want.revision
    assert profile.ram_mb == want.ram_mb
    assert profile.cores == want.cores
    assert profile.memory_budget_bytes == want.budget
    assert plan.bees == want.cores
    assert plan.memory_per_bee_bytes == want.per_bee
    assert plan.cell_target_bytes == max(want.per_bee // 4, 16 * MiB)
    assert profile.boot_medium == want.boot
    assert profile.temperature_c == pytest.approx(want.temperature)
    if want.model is not None:
        assert profile.soc == profile.model.soc
        assert profile.ram_mb in profile.model.ram_mb
        assert 0.0 <= profile.thermal_headroom <= 1.0


@pytest.mark.parametrize(
    ("name", "soc"),
    [
        ("pi3b", "BCM2837"),
        ("pi3bplus", "BCM2837B0"),
        ("zero2w", "BCM2710A1"),
        ("pi4b_4gb", "BCM2711"),
        ("pi400", "BCM2711"),
        ("cm4_2gb", "BCM2711"),
        ("pi5_8gb", "BCM2712"),
        ("pi500", "BCM2712"),
        ("cm5_4gb", "BCM2712"),
    ],
)
def test_soc(name: str, soc: str, captured) -> None:
    assert detect(*captured(name)).soc == soc


def test_bare_pis_are_not_in_a_container(captured) -> None:
    for name, want in CASES.items():
        profile = detect(*captured(name))
        if want.model is not None and name != "cgroupv1_limited":
            assert not profile.in_container, name
            assert profile.memory_limit_bytes is None, name
            assert profile.memory_budget_bytes == profile.memory_total_bytes, name


def test_container_budget_comes_from_cgroup_v2(captured) -> None:
    profile = detect(*captured("container_cgroupv2"))
    assert profile.memory_total_bytes == 16_318_456 * KiB
    assert profile.memory_limit_bytes == 536_870_912
    assert profile.memory_budget_bytes == 536_870_912
    assert profile.cpus_online == 8 and profile.cpus_allowed == 8
    assert profile.cpu_quota == 1.5
    assert profile.cores == 2  # ceil(150000 / 100000)
    assert profile.in_container
    assert not profile.is_pi and profile.soc is None
    assert profile.root_device is None  # "/" is an overlay
    # An x86 thermal zone is reported, but headroom only feeds colony temperature on a Pi.
    assert profile.temperature_c == 44.0 and profile.thermal_headroom is None


def test_cgroup_v1_limits(captured) -> None:
    profile = detect(*captured("cgroupv1_limited"))
    assert profile.memory_limit_bytes == 1 << 30
    assert profile.memory_budget_bytes == 1 << 30
    assert profile.cpus_online == 4 and profile.cpu_quota == 2.0 and profile.cores == 2
    assert profile.in_container
    # The device tree is visible inside the container, so the board is still known.
    assert profile.model is not None and profile.model.key == "4B"


def test_device_tree_under_sys_is_read_too(captured) -> None:
    proc, sys = captured("pi3bplus")
    assert not (proc / "device-tree").exists()
    assert (sys / "firmware/devicetree/base/model").read_bytes().endswith(b"\0")
    assert detect(proc, sys).model_name == "Raspberry Pi 3 Model B Plus Rev 1.3"


def test_device_tree_wins_over_cpuinfo(tree) -> None:
    proc, sys = tree(
        {
            "proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\0",
            "proc/device-tree/system/linux,revision": bytes.fromhex("00d04170"),
            "proc/cpuinfo": "Revision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.model_name == "Raspberry Pi 5 Model B Rev 1.0"
    assert profile.revision_code == "d04170"
    assert profile.model.key == "5" and profile.ram_mb == 8192


def test_cpuinfo_alone_is_enough(tree) -> None:
    cpuinfo = "processor\t: 0\nRevision\t: 902120\nModel\t\t: Raspberry Pi Zero 2 W Rev 1.0\n"
    proc, sys = tree({"proc/cpuinfo": cpuinfo})
    profile = detect(proc, sys)
    assert profile.model.key == "Zero 2 W"
    assert profile.model_name == "Raspberry Pi Zero 2 W Rev 1.0"
    assert profile.ram_mb == 512
    assert profile.cores == 1  # no /sys/devices/system/cpu/online: count "processor" lines


def test_model_from_name_when_there_is_no_revision(tree) -> None:
    # Some distribution kernels print no Revision line and no linux,revision property.
    proc, sys = tree({"sys/firmware/devicetree/base/model": b"Raspberry Pi 400 Rev 1.1\0"})
    profile = detect(proc, sys)
    assert profile.model.key == "400"
    assert profile.revision is None and profile.ram_mb is None


def test_unknown_board_keeps_its_name(tree) -> None:
    proc, sys = tree({"proc/device-tree/model": b"Radxa ROCK 5B\0"})
    profile = detect(proc, sys)
    assert profile.model is None and profile.model_name == "Radxa ROCK 5B"
    assert profile.soc is None and profile.thermal_headroom is None


def test_systemd_memory_max_is_honoured_without_calling_it_a_container(tree) -> None:
    service = "sys/fs/cgroup/system.slice/apiary.service"
    proc, sys = tree(
        {
            "proc/meminfo": "MemTotal:        3884360 kB\n",
            "proc/self/cgroup": "0::/system.slice/apiary.service\n",
            f"{service}/memory.max": "805306368\n",
            f"{service}/cpu.max": "max 100000\n",
            "sys/fs/cgroup/system.slice/memory.max": "max\n",
            "sys/devices/system/cpu/online": "0-3\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.memory_budget_bytes == 768 * MiB
    assert profile.cores == 4 and profile.cpu_quota is None
    assert not profile.in_container


def test_the_tightest_limit_in_the_cgroup_chain_wins(tree) -> None:
    proc, sys = tree(
        {
            "proc/meminfo": "MemTotal:        8000000 kB\n",
            "proc/self/cgroup": "0::/a/b\n",
            "sys/fs/cgroup/a/b/memory.max": "2147483648\n",
            "sys/fs/cgroup/a/memory.max": "1073741824\n",
            "sys/fs/cgroup/a/b/cpu.max": "400000 100000\n",
            "sys/fs/cgroup/a/cpu.max": "50000 100000\n",
            "sys/devices/system/cpu/online": "0-7\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.memory_budget_bytes == 1 << 30
    assert profile.cpu_quota == 0.5 and profile.cores == 1


def test_cgroup_v1_unlimited_is_a_huge_number(tree) -> None:
    proc, sys = tree(
        {
            "proc/meminfo": "MemTotal:        3884360 kB\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.memory_limit_bytes is None and profile.cpu_quota is None
    assert profile.memory_budget_bytes == 3_884_360 * KiB
    assert not profile.in_container


def test_a_limit_above_physical_memory_changes_nothing(tree) -> None:
    proc, sys = tree(
        {
            "proc/meminfo": "MemTotal:        1000000 kB\n",
            "sys/fs/cgroup/memory.max": str(64 << 30),
        }
    )
    assert detect(proc, sys).memory_budget_bytes == 1_000_000 * KiB


def test_affinity_caps_cores(tree) -> None:
    # taskset or a cgroup cpuset shows up in the process's allowed CPUs.
    proc, sys = tree(
        {
            "sys/devices/system/cpu/online": "0-7\n",
            "proc/self/status": "Name:\tpython3\nCpus_allowed:\td\nCpus_allowed_list:\t0,2-3\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.cpus_online == 8 and profile.cpus_allowed == 3 and profile.cores == 3


@pytest.mark.parametrize("missing", ["empty", "absent"])
def test_missing_files_never_crash(missing: str, tmp_path: Path, tree) -> None:
    proc, sys = tree({}) if missing == "empty" else (tmp_path / "nope", tmp_path / "nada")
    profile = detect(proc, sys)
    assert profile.model is None and profile.model_name is None and profile.revision is None
    assert profile.ram_mb is None and profile.soc is None
    assert profile.cores == 1 and profile.cpus_online is None and profile.cpus_allowed is None
    assert profile.memory_total_bytes is None and profile.memory_budget_bytes is None
    assert profile.temperature_c is None and profile.thermal_headroom is None
    assert profile.throttling is None
    assert profile.boot_medium == "unknown" and profile.root_device is None
    assert not profile.in_container
    profile.to_dict()  # still printable


def test_garbage_files_never_crash(tree) -> None:
    proc, sys = tree(
        {
            "proc/cpuinfo": "Revision\t: not-hex\nno colon here\n",
            "proc/meminfo": "MemTotal: lots\n",
            "proc/cmdline": "",
            "proc/mounts": "garbage\n",
            "proc/self/cgroup": "nonsense\n",
            "proc/self/status": "Cpus_allowed_list:\tall of them\n",
            "proc/device-tree/system/linux,revision": b"\x01",
            "sys/devices/system/cpu/online": "zero-three\n",
            "sys/class/thermal/thermal_zone0/temp": "hot\n",
            "sys/devices/platform/soc/soc:firmware/get_throttled": "zz\n",
            "sys/fs/cgroup/memory.max": "lots\n",
            "sys/fs/cgroup/cpu.max": "a b c\n",
        }
    )
    profile = detect(proc, sys)
    assert profile.revision is None and profile.memory_total_bytes is None
    assert profile.cores == 1 and profile.temperature_c is None and profile.throttling is None


def test_profile_to_dict_is_json_ready(captured) -> None:
    import json

    data = detect(*captured("pi4b_throttled")).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["model"] == "4B" and data["revision"] == "c03115"
    assert data["throttling"]["under_voltage"] is True
    assert data["throttling"]["raw"] == "0x70007"


def test_live_machine() -> None:
    profile = detect()
    assert profile.cores >= 1
    if hasattr(os, "sched_getaffinity"):
        assert profile.cpus_allowed == len(os.sched_getaffinity(0))
    assert profile.memory_budget_bytes is not None and profile.memory_budget_bytes > 0
    plan = budgets(profile)
    assert plan.bees == profile.cores and plan.memory_per_bee_bytes > 0
