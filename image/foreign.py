"""Arm64 Debian roots built on this x86-64 machine, run under qemu-user.

PyInstaller does not cross-compile, so the aarch64 release is frozen inside an arm64 Debian root
whose programs the kernel hands to ``qemu-aarch64-static`` (binfmt_misc). The same kind of root,
with systemd and a kernel instead of Python, is the base the boot test turns into an image.

Roots are made with ``mmdebstrap`` and cached under :func:`cache_root` keyed by their suite,
architecture and package list, so a second build reuses them; a marker written last says a root
is complete. Everything here needs root (``mmdebstrap --mode=root``, ``chroot``) and a registered
``qemu-aarch64`` binfmt handler with the F flag; :func:`require_binfmt` says how to get one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"  # Raspberry Pi OS 12 is built on it: the same glibc (2.36) and Python 3.11
MIRROR = "http://deb.debian.org/debian"
DEBIAN_ARCH = {"aarch64": "arm64", "x86_64": "amd64"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")
COMPLETE = ".apiary-root-complete"
# What freezing needs inside the root: Python 3.11 and its venv module, and binutils (PyInstaller
# reads shared-library headers with objdump; ldd is in libc-bin) and libpython3.11 (the bundled
# interpreter).
BUILDER_PACKAGES = ("python3", "python3-venv", "libpython3.11", "binutils")


class ForeignError(RuntimeError):
    """An arm64 root cannot be made or used; the message says what to install or run."""


@dataclass(frozen=True)
class RootSpec:
    """What an arm64 root holds; its :meth:`key` names its cache folder."""

    name: str  # "builder" or "boot"
    packages: tuple[str, ...]
    variant: str = "essential"
    # mmdebstrap hooks as (option, shell command), e.g. ("--setup-hook", "..."): "$1" is the root
    hooks: tuple[tuple[str, str], ...] = ()
    arch: str = "aarch64"
    suite: str = SUITE
    mirror: str = MIRROR

    def key(self) -> str:
        fields = [self.variant, self.arch, self.suite, self.mirror]
        fields += [f"{option}={command}" for option, command in self.hooks]
        text = "\n".join([*fields, *sorted(self.packages)])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


BUILDER = RootSpec("builder", BUILDER_PACKAGES)


def cache_root() -> Path:
    """Where heavy build products live between runs: ``$APIARY_BUILD_CACHE`` or
    ``~/.cache/apiary-build`` (outside the clone, so a fresh clone on the same machine reuses
    them)."""
    configured = os.environ.get("APIARY_BUILD_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "apiary-build"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process at a time builds a given cache entry; others wait, then reuse it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, even on a crash
        yield


def require_binfmt(arch: str = "aarch64") -> None:
    """The kernel must run arm64 programs through qemu, or nothing inside the root starts."""
    handler = BINFMT / f"qemu-{arch}"
    if handler.is_file() and "enabled" in handler.read_text():
        return
    raise ForeignError(
        f"no binfmt handler for {arch} ({handler} missing or disabled). As root: "
        "`apt-get install qemu-user-static binfmt-support`, then "
        "`mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc` if it is not mounted, "
        f"and `update-binfmts --enable qemu-{arch}` (`.ci/run` does all of this)"
    )


def require_root_user(what: str) -> None:
    if os.geteuid() != 0:
        raise ForeignError(f"{what} needs root (mmdebstrap --mode=root and chroot); run as root")


def run(cmd: Sequence[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise ForeignError(f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{tail}")
    return result


def ensure_root(spec: RootSpec, cache: Path | None = None) -> Path:
    """The root directory for ``spec``: reused when complete, else made with mmdebstrap.
    Roots of an older package list are deleted (~0.3-0.6 GB each)."""
    cache = cache or cache_root()
    target = cache / f"{spec.name}-{DEBIAN_ARCH[spec.arch]}-{spec.key()}"
    with locked(cache / f"{target.name}.lock"):
        if not (target / COMPLETE).is_file():
            _mmdebstrap(spec, target)
    for stale in cache.glob(f"{spec.name}-{DEBIAN_ARCH[spec.arch]}-*"):
        if stale.is_dir() and stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    return target


def _mmdebstrap(spec: RootSpec, target: Path) -> None:
    require_root_user(f"building the {spec.name} root")
    require_binfmt(spec.arch)
    if shutil.which("mmdebstrap") is None:
        raise ForeignError("mmdebstrap is not installed: `apt-get install mmdebstrap`")
    if shutil.which("arch-test") is None:  # only recommended, but a foreign root needs it
        raise ForeignError("arch-test is not installed (mmdebstrap needs it for a foreign "
                           "architecture): `apt-get install arch-test`")  # fmt: skip
    if target.exists():
        shutil.rmtree(target)  # a build that died half-way
    hooks = [f"{option}={command}" for option, command in spec.hooks]
    run(
        [
            "mmdebstrap",
            "--mode=root",
            f"--arch={DEBIAN_ARCH[spec.arch]}",
            f"--variant={spec.variant}",
            f"--include={','.join(spec.packages)}",
            *hooks,
            spec.suite,
            str(target),
            spec.mirror,
        ],
        f"mmdebstrap of the {spec.name} root",
    )
    (target / COMPLETE).write_text(" ".join(spec.packages) + "\n")  # last: complete


def chroot_command(root: Path, script: str) -> list[str]:
    """``script`` run by ``/bin/sh`` inside ``root`` with its own /proc, in private mount and
    pid namespaces: the mounts vanish with the process, nothing to clean up."""
    return [
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        f"--mount-proc={root / 'proc'}",
        "chroot",
        str(root),
        "/bin/sh",
        "-c",
        script,
    ]


def chroot_env(**extra: str) -> dict[str, str]:
    """A clean environment for programs inside a root: none of the host's Python settings."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **extra,
    }
