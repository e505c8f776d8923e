"""The real image, booted: the aarch64 release in an image ``apiary-image build`` made from a
Raspberry Pi OS-shaped arm64 Debian base, started by ``qemu-system-aarch64 -M virt -cpu
cortex-a72`` in software emulation, with no network and the storage root shared over 9p.

Costs (2 shared cores, see image/README.md "Boot test"): the aarch64 release and the boot root
are cached under ~/.cache/apiary-build; cold they take tens of minutes, warm nothing. The image
build takes ~20 s, the boot about a minute, each `apiary` command in the guest 20-60 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.boot_base import BOOT_ROOT, BOOT_START, STORAGE, kernel_files, make_pi_base
from support.frozen import FrozenRelease, frozen_release
from support.qemu_guest import Guest, guest_cmdline

from image import fat
from image.foreign import cache_root, ensure_root

pytestmark = [pytest.mark.boot, pytest.mark.slow, pytest.mark.timeout(5400)]

REPO = Path(__file__).resolve().parents[2]
NODE = "pi-boot"
APIARY_TOML = f"""\
# Written on the boot partition after flashing, as a user would.
storage = "{STORAGE}"
node_id = "{NODE}"
heartbeat_interval = 2.0
suspect_after = 20.0
dead_after = 40.0
forget_after = 80.0
"""
QUERY = "SELECT count(*) * 7 AS answer FROM demo.sensors.readings"


@dataclass
class Booted:
    guest: Guest
    storage: Path  # the host side of the shared storage root
    times: dict[str, float] = field(default_factory=dict)


def _host_apiary(*args: str, storage: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "APIARY_HOME": str(home),
           "APIARY_CONFIG": str(home / "absent.toml"), "COLUMNS": "120"}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "apiary", *args, "--storage", str(storage)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


def _base_image() -> Path:
    """The Pi-shaped base, cached beside its root (keyed by the root and this builder)."""
    root = ensure_root(BOOT_ROOT)
    builder = (REPO / "tests/support/boot_base.py").read_bytes()
    key = hashlib.sha256(builder).hexdigest()[:12]
    base = cache_root() / f"{root.name}-base-{key}.img"
    if not base.exists():
        partial = base.with_name(base.name + ".partial")
        make_pi_base(partial, root)
        partial.rename(base)
        for stale in cache_root().glob("boot-arm64-*-base-*.img"):
            if stale != base:  # of an older root or builder: ~1.2 GB each
                stale.unlink()
    return base


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    times: dict[str, float] = {}
    started = time.monotonic()
    release: FrozenRelease = frozen_release("aarch64")
    times["aarch64 release (cached or built)"] = time.monotonic() - started

    started = time.monotonic()
    base = _base_image()
    times["Pi-shaped base (cached or built)"] = time.monotonic() - started

    work = tmp_path_factory.mktemp("boot")
    image = work / "apiary.img"
    started = time.monotonic()
    build = subprocess.run(
        [sys.executable, "-m", "image", "build", "--base", str(base),
         "--binary", str(release.tarball), "--out", str(image)],
        capture_output=True, text=True, cwd=REPO, timeout=900,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    times["apiary-image build"] = time.monotonic() - started

    # The user edits apiary.toml on the boot partition after flashing.
    settings = work / "apiary.toml"
    settings.write_text(APIARY_TOML)
    fat.put_file(image, BOOT_START * 512, settings, "apiary.toml", epoch=1_700_000_000)
    cmdline = fat.read_file(image, BOOT_START * 512, "cmdline.txt", epoch=1_700_000_000)

    # The host writes a frame into the shared root before the node starts.
    shared = work / "shared"
    storage = shared / "root"
    storage.parent.mkdir()
    demo = _host_apiary("demo", "--rows", "1000", "--batches", "1", storage=storage,
                        home=work / "host-home")  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    for path in [shared, *shared.rglob("*")]:  # the guest's apiary user writes here too
        path.chmod(0o777 if path.is_dir() else 0o666)

    kernel, initrd = kernel_files(ensure_root(BOOT_ROOT))
    guest = Guest(image=image, kernel=kernel, initrd=initrd,
                  cmdline=guest_cmdline(cmdline.decode()), shared=shared,
                  console=work / "console.log")  # fmt: skip
    guest.start()
    try:
        times["boot to multi-user (probe up)"] = guest.wait_ready(600)
        # The probe starts beside the boot's other jobs: wait for all of them (first boot's
        # move of apiary.toml, `apiary hardware`, the node's start) before looking.
        started = time.monotonic()
        _status, out = guest.run("systemctl is-system-running --wait\n", 900)
        assert out.strip() in ("running", "degraded"), out
        times["boot finished (every start job done)"] = time.monotonic() - started
        yield Booted(guest, storage, times)
    finally:
        guest.kill()
        print("\nboot test times (s):", json.dumps({k: round(v, 1) for k, v in times.items()}))


def _ok(booted: Booted, script: str, seconds: float = 300) -> str:
    started = time.monotonic()
    rc, out = booted.guest.run(script, seconds)
    booted.times[f"guest: {script.splitlines()[0][:40]}"] = time.monotonic() - started
    assert rc == 0, f"{script!r} exited {rc}: {out}"
    return out


def test_first_boot_moved_the_settings_off_the_boot_partition(booted: Booted) -> None:
    out = _ok(booted, "stat -c '%U:%G %a' /etc/apiary /etc/apiary/apiary.toml\n"
                      "test -e /boot/firmware/apiary.toml && echo on-fat || echo moved\n"
                      "test -e /boot/firmware/cmdline.txt && echo fat-mounted\n"
                      "cat /etc/apiary/apiary.toml\n")  # fmt: skip
    lines = out.splitlines()
    assert lines[:4] == ["root:apiary 750", "root:apiary 640", "moved", "fat-mounted"], out
    assert f'node_id = "{NODE}"' in out


def test_hardware_detection_ran_at_start(booted: Booted) -> None:
    out = _ok(booted, "systemctl show apiary -p ExecStartPre\n"
                      "journalctl -b -u apiary.service -o cat --no-pager | head -40\n")  # fmt: skip
    assert "argv[]=/opt/apiary/apiary hardware" in out, out
    assert "code=exited ; status=0 }" in out, out
    assert "not a Raspberry Pi" in out and "linux,dummy-virt" in out, out  # qemu's virt board
    # ...and it saw the unit's MemoryMax through its cgroup: 75 % of the guest's 1.9 GiB.
    assert "cgroup memory limit       │ 1.5 GiB" in out, out


def test_service_runs_as_apiary_within_its_memory_max(booted: Booted) -> None:
    out = _ok(booted, "systemctl is-active apiary\n"
                      "ps -o user= -p $(systemctl show -p MainPID --value apiary)\n"
                      "cat /sys/fs/cgroup/system.slice/apiary.service/memory.max\n"
                      "awk '/MemTotal/ {print $2 * 1024}' /proc/meminfo\n")  # fmt: skip
    active, user, memory_max, total = out.split()
    assert (active, user) == ("active", "apiary")
    assert memory_max != "max" and 0.70 < int(memory_max) / int(total) <= 0.76, out


def test_node_heartbeat_reaches_the_host(booted: Booted, tmp_path: Path) -> None:
    deadline, started = time.monotonic() + 600, time.monotonic()
    while True:
        swarm = _host_apiary("swarm", "--json", storage=booted.storage, home=tmp_path)
        assert swarm.returncode == 0, swarm.stderr[-3000:]
        states = {n["node_id"]: n["state"] for n in json.loads(swarm.stdout)["nodes"]}
        if states.get(NODE) == "alive":
            break
        tail = booted.guest.console_tail()
        assert time.monotonic() < deadline, f"{NODE} not alive: {states}\n{tail}"
        time.sleep(2)
    booted.times["node alive in apiary swarm (after ready)"] = time.monotonic() - started


def test_guest_reads_the_frame_the_host_wrote(booted: Booted) -> None:
    out = _ok(booted, f'/usr/local/bin/apiary sql --storage {STORAGE} "{QUERY}" --format csv\n',
              seconds=600)  # fmt: skip
    assert out.splitlines()[-2:] == ['"answer"', "7000"], out


def test_clean_poweroff_removes_the_heartbeat(booted: Booted, tmp_path: Path) -> None:
    test_node_heartbeat_reaches_the_host(booted, tmp_path)  # still there before
    started = time.monotonic()
    assert booted.guest.poweroff(600) == 0
    booted.times["poweroff"] = time.monotonic() - started
    swarm = _host_apiary("swarm", "--json", storage=booted.storage, home=tmp_path)
    assert swarm.returncode == 0, swarm.stderr[-3000:]
    assert NODE not in {n["node_id"] for n in json.loads(swarm.stdout)["nodes"]}, swarm.stdout
