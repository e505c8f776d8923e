"""The aarch64 release, built on this x86-64 machine inside an arm64 Debian root (qemu-user).

``python3 -m image.binary --arch aarch64`` (``just binary --arch aarch64``): tens of minutes
cold, nothing when ~/.cache/apiary-build holds the build of the current sources.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile

import pytest
from support.frozen import FrozenRelease, frozen_release

import apiary
from image.elf import EM_AARCH64, parse_header, read_header
from image.foreign import BUILDER, cache_root

pytestmark = [pytest.mark.binary, pytest.mark.aarch64, pytest.mark.slow, pytest.mark.timeout(5400)]


@pytest.fixture(scope="module")
def arm_release() -> FrozenRelease:
    return frozen_release("aarch64")


def test_every_elf_file_of_the_tree_is_aarch64(arm_release: FrozenRelease) -> None:
    assert arm_release.arch == "aarch64"
    assert arm_release.tarball.name == f"apiary-{apiary.__version__}-linux-aarch64.tar.gz"
    machines: dict[int, int] = {}
    for path in arm_release.tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = parse_header(read_header(path))
            if info is not None:
                machines[info.machine] = machines.get(info.machine, 0) + 1
                assert info.is_arm64, f"{path} is {info.name}"
    assert machines.get(EM_AARCH64, 0) > 50, machines  # the program and its libraries
    main = parse_header(read_header(arm_release.executable))
    assert main is not None and main.is_arm64


def test_version_runs_under_qemu_user(arm_release: FrozenRelease) -> None:
    qemu = shutil.which("qemu-aarch64-static")
    assert qemu is not None, "apt-get install qemu-user-static"
    # The builder root lends the program its loader and libc, as Raspberry Pi OS would;
    # QEMU_LD_PREFIX also reaches the bootloader's re-execution through binfmt.
    sysroot = cache_root() / f"builder-arm64-{BUILDER.key()}"
    proc = subprocess.run(
        [qemu, "-L", str(sysroot), str(arm_release.executable), "--version"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QEMU_LD_PREFIX": str(sysroot)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"apiary, version {apiary.__version__}"


def test_tarball_matches_its_checksum_and_holds_the_tree(arm_release: FrozenRelease) -> None:
    assert hashlib.sha256(arm_release.tarball.read_bytes()).hexdigest() == arm_release.sha256
    with tarfile.open(arm_release.tarball) as tar:
        program = tar.getmember("apiary/apiary")
        header = tar.extractfile(program).read(64)  # type: ignore[union-attr]
    info = parse_header(header)
    assert info is not None and info.is_arm64
    assert program.mode == 0o755
