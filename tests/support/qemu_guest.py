"""A booted Apiary image under ``qemu-system-aarch64`` (software emulation), and a way in.

The guest has no network device. The host shares one folder over virtio 9p (tag ``host``):
the storage root both sides use, and the probe folder through which the test runs shell scripts
in the guest as root (see tests/support/boot_base.py). Every wait here is on an explicit event
(a file appearing, qemu exiting), bounded by a deadline.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.boot_base import SHARED_TAG

QEMU = "qemu-system-aarch64"


@dataclass
class Guest:
    image: Path
    kernel: Path
    initrd: Path
    cmdline: str
    shared: Path  # the host side of the 9p folder
    console: Path  # the serial console, as a log file
    memory_mib: int = 2048
    proc: subprocess.Popen[bytes] | None = None
    _jobs: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def probe(self) -> Path:
        return self.shared / "probe"

    def start(self) -> None:
        qemu = shutil.which(QEMU)
        if qemu is None:
            raise RuntimeError(f"{QEMU} not found: apt-get install qemu-system-arm")
        self.probe.mkdir(parents=True, exist_ok=True)
        args = [
            qemu,
            "-M", "virt",
            "-cpu", "cortex-a72",
            "-smp", "2",
            "-m", str(self.memory_mib),
            "-nic", "none",  # no network: the shared folder is the only way out
            "-display", "none",
            "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-kernel", str(self.kernel),
            "-initrd", str(self.initrd),
            "-append", self.cmdline,
            "-drive", f"file={self.image},if=virtio,format=raw",
            "-virtfs",
            f"local,path={self.shared},mount_tag={SHARED_TAG},security_model=mapped-xattr,id=host",
            "-no-reboot",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)  # fmt: skip

    def console_tail(self, chars: int = 4000) -> str:
        try:
            return self.console.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _alive_or_fail(self, what: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise AssertionError(
                f"qemu exited ({self.proc.returncode}) while {what}: {err}\n{self.console_tail()}"
            )

    def wait_for_file(self, path: Path, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not path.exists():
            self._alive_or_fail(what)
            if time.monotonic() > deadline:
                tail = self.console_tail()
                raise AssertionError(f"{what}: not done after {seconds:.0f} s\n{tail}")
            time.sleep(0.5)

    def wait_ready(self, seconds: float) -> float:
        """Until the probe service runs (multi-user reached, shared folder mounted)."""
        started = time.monotonic()
        self.wait_for_file(self.probe / "ready", seconds, "booting to multi-user")
        return time.monotonic() - started

    def run(self, script: str, seconds: float = 300) -> tuple[int, str]:
        """``script`` run by sh as root in the guest; its exit status and output."""
        name = f"job{next(self._jobs):03d}"
        staged = self.probe / f".{name}.sh"
        staged.write_text(script)
        staged.rename(self.probe / f"{name}.sh")  # the probe sees complete scripts only
        self.wait_for_file(self.probe / f"{name}.rc", seconds, f"running {script!r}")
        status = int((self.probe / f"{name}.rc").read_text())
        return status, (self.probe / f"{name}.out").read_text()

    def poweroff(self, seconds: float = 300) -> int:
        """A clean shutdown from inside; returns qemu's exit status."""
        assert self.proc is not None
        name = f"job{next(self._jobs):03d}"
        (self.probe / f"{name}.sh").write_text("systemctl poweroff\n")
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no poweroff after {seconds} s\n{self.console_tail()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def guest_cmdline(cmdline_txt: str) -> str:
    """The image's cmdline.txt for qemu's virt board: its serial port instead of the Pi's."""
    args = [a for a in cmdline_txt.split() if not a.startswith("console=")]
    return " ".join(["console=ttyAMA0", *args])


def free_disk(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize
