"""Synthetic Raspberry Pi OS images and Apiary binaries, built rootlessly, and ways to look inside.

Imported by conftest.py and the tests (a unique module name: test folders are not packages).

The base has Raspberry Pi OS's layout: an MBR with a FAT32 ``bootfs`` (``config.txt``,
``cmdline.txt``) from 4 MiB and an ext4 ``rootfs`` (4 KiB blocks) with Debian's account files,
systemd folders and ``/usr/lib/aarch64-linux-gnu``. Everything is made with sfdisk, mkfs.vfat,
mtools and mke2fs on plain files, with fixed ids and times.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXED_TIME = 1700000000
DISK_ID = "0x5e3da6b0"
MiB = 1 << 20
BOOT_START = 8192  # sectors: 4 MiB, as Raspberry Pi OS
BOOT_SECTORS = 40 * MiB // 512
ROOT_SECTORS = 24 * MiB // 512
CONFIG_TXT = b"# synthetic config.txt\narm_64bit=1\ndtparam=audio=on\n"
CMDLINE_TXT = b"console=serial0,115200 console=tty1 root=PARTUUID=5e3da6b0-02 rootfstype=ext4\n"
NEEDED = ("sfdisk", "mkfs.vfat", "mcopy", "mdir", "mtype", "mke2fs", "debugfs", "e2fsck", "xz")

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
_rpc:x:101:65534::/run/rpcbind:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin
pi:x:1000:1000:,,,:/home/pi:/bin/bash
"""
GROUP = """root:x:0:
daemon:x:1:
shadow:x:42:
messagebus:x:107:
systemd-journal:x:999:
systemd-network:x:998:
systemd-timesync:x:997:
pi:x:1000:
nogroup:x:65534:
"""
SHADOW = """root:*:19500:0:99999:7:::
daemon:*:19500:0:99999:7:::
pi:$y$j9T$fake$hashonlyforthetestimage:19500:0:99999:7:::
"""
GSHADOW = "root:*::\nshadow:*::\npi:!::\n"


def need_tools() -> None:
    missing = [t for t in NEEDED if shutil.which(t) is None]
    if missing:
        message = f"image tools missing: {', '.join(missing)} (apt: fdisk mtools dosfstools ...)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "E2FSPROGS_FAKE_TIME": str(FIXED_TIME),
        "SOURCE_DATE_EPOCH": str(FIXED_TIME),
        "TZ": "UTC",
        "MTOOLSRC": "/dev/null",
        "MTOOLS_SKIP_CHECK": "1",
    }


def sh(*args: str | Path, input: bytes | None = None) -> bytes:
    done = subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, env=_env(), check=False
    )
    assert done.returncode == 0, f"{args}: {done.stderr.decode()}"
    return done.stdout


@dataclass(frozen=True)
class BaseSpec:
    boot_files: tuple[str, ...] = ("config.txt", "cmdline.txt")
    arch_libs: str = "aarch64-linux-gnu"
    partitions: int = 2
    root_mib: int = 24


def make_base(path: Path, spec: BaseSpec = BaseSpec()) -> Path:
    """Write a synthetic Raspberry Pi OS image to ``path``."""
    work = path.parent / f"{path.name}.parts"
    work.mkdir()
    boot = work / "boot.fat"
    sh("mkfs.vfat", "-C", "-F", "32", "-S", "512", "-s", "1", "-i", "5e3da6b0", "-n", "bootfs",
       boot, str(BOOT_SECTORS // 2))  # fmt: skip
    for name in spec.boot_files:
        local = work / name
        local.write_bytes(CONFIG_TXT if name == "config.txt" else CMDLINE_TXT)
        os.utime(local, (FIXED_TIME, FIXED_TIME))
        sh("mcopy", "-m", "-i", boot, local, f"::/{name}")

    tree = work / "root"
    for folder in (
        "etc/systemd/system/multi-user.target.wants",
        "usr/lib/systemd/system",
        f"usr/lib/{spec.arch_libs}",
        "usr/local/bin",
        "usr/sbin",
        "opt",
        "var/lib",
        "home/pi",
    ):
        (tree / folder).mkdir(parents=True, exist_ok=True)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("shadow", SHADOW)):
        (tree / "etc" / name).write_text(text)
    (tree / "etc/gshadow").write_text(GSHADOW)
    (tree / "usr/lib/systemd/system/ssh.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tree / "etc/systemd/system/multi-user.target.wants/ssh.service").symlink_to(
        "/usr/lib/systemd/system/ssh.service"
    )
    for p in [tree, *tree.rglob("*")]:
        os.utime(p, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)
    root = work / "root.ext4"
    sh("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", tree, "-L", "rootfs",
       "-U", "8a0b4f2c-3d6e-4f70-9a1b-2c3d4e5f6071",
       "-E", "root_owner=0:0,hash_seed=1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b",
       root, f"{spec.root_mib}M")  # fmt: skip
    # Debian's ownership, whoever runs the tests: everything root, shadow files root:shadow 0640.
    fix = ["sif / uid 0", "sif / gid 0"]
    for p in sorted(tree.rglob("*")):
        rel = "/" + p.relative_to(tree).as_posix()
        fix += [f"sif {rel} uid 0", f"sif {rel} gid 0"]
    for name in ("shadow", "gshadow"):
        fix += [f"sif /etc/{name} gid 42", f"sif /etc/{name} mode 0100640"]
    sh("debugfs", "-w", "-f", "-", root, input="\n".join(fix).encode() + b"\n")

    root_start = BOOT_START + BOOT_SECTORS
    lines = [
        "label: dos",
        f"label-id: {DISK_ID}",
        f"start={BOOT_START}, size={BOOT_SECTORS}, type=c",
        f"start={root_start}, size={spec.root_mib * MiB // 512}, type=83",
    ]
    end = root_start + spec.root_mib * MiB // 512
    if spec.partitions == 3:
        lines.append(f"start={end}, size=8192, type=83")
        end += 8192
    with path.open("wb") as f:
        f.truncate(end * 512)
    sh("sfdisk", "--no-reread", "--no-tell-kernel", "-q", path,
       input="\n".join(lines).encode() + b"\n")  # fmt: skip
    with path.open("r+b") as f:
        for start, part in ((BOOT_START, boot), (root_start, root)):
            f.seek(start * 512)
            f.write(part.read_bytes())
    shutil.rmtree(work)
    return path


def elf_header(machine: int, *, bits: int = 64) -> bytes:
    """A minimal, valid ELF executable header for ``machine`` (183 AArch64, 62 x86-64)."""
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1, 1]) + bytes(9)
    if bits == 64:
        return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x400000, 0, 0, 0, 64, 0, 0,
                                   64, 0, 0)  # fmt: skip
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, 0x10000, 0, 0, 0, 52, 0, 0, 40,
                               0, 0)  # fmt: skip


def make_binary_tree(folder: Path, machine: int = 183, *, big_bytes: int = 0) -> Path:
    """A PyInstaller-like onedir tree: ``apiary`` (an ELF header) and ``_internal/``."""
    internal = folder / "_internal"
    (internal / "lib-dynload").mkdir(parents=True)
    program = folder / "apiary"
    program.write_bytes(elf_header(machine) + bytes(4096))
    program.chmod(0o755)
    (internal / "base_library.zip").write_bytes(b"PK" + bytes(range(256)) * 64)
    (internal / "libpython3.11.so.1.0").write_bytes(elf_header(machine) + b"\x01" * 20000)
    (internal / "libpython3.11.so.1.0").chmod(0o755)
    (internal / "libpython3.11.so").symlink_to("libpython3.11.so.1.0")
    (internal / "lib-dynload/_json.cpython-311-aarch64-linux-gnu.so").write_bytes(b"\x02" * 9000)
    (internal / "with space.txt").write_text("names with spaces survive\n")
    if big_bytes:
        (internal / "big.bin").write_bytes(os.urandom(big_bytes))
    return folder


def make_tarball(tree: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(tree, arcname="apiary")
    return out


class Built:
    """Looks inside a built image with the tools themselves, not with the builder's code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        table = json.loads(sh("sfdisk", "--json", path))["partitiontable"]
        self.table = table
        boot, root = table["partitions"]
        self.boot_offset = boot["start"] * 512
        self.root_offset = root["start"] * 512
        self.root_size = root["size"] * 512
        self.rootfs = f"{path}?offset={self.root_offset}"

    def stat(self, path: str) -> dict[str, object] | None:
        done = subprocess.run(
            ["debugfs", "-R", f'stat "{path}"', self.rootfs], capture_output=True, env=_env()
        )
        text = done.stdout.decode()
        if "Inode:" not in text:
            return None
        m = re.search(r"Type:\s+(\S+)\s+Mode:\s+(\d+).*?User:\s+(\d+)\s+Group:\s+(\d+)", text, re.S)
        assert m, text
        link = re.search(r'Fast link dest: "(.*)"', text)
        mtime = re.search(r"mtime: 0x([0-9a-f]+)", text)
        return {
            "type": m.group(1),
            "mode": int(m.group(2), 8),
            "uid": int(m.group(3)),
            "gid": int(m.group(4)),
            "link": link.group(1) if link else None,
            "mtime": int(mtime.group(1), 16) if mtime else None,
        }

    def cat(self, path: str) -> bytes:
        return sh("debugfs", "-R", f'cat "{path}"', self.rootfs)

    def boot_names(self) -> list[str]:
        out = sh("mdir", "-b", "-i", f"{self.path}@@{self.boot_offset}", "::/")
        return sorted(line.rsplit("/", 1)[-1] for line in out.decode().splitlines() if line)

    def boot_cat(self, name: str) -> bytes:
        return sh("mtype", "-i", f"{self.path}@@{self.boot_offset}", f"::/{name}")

    def fsck(self) -> str:
        return sh("e2fsck", "-fn", self.rootfs).decode()
