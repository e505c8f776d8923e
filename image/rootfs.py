"""What the image gets in its root file system, and the checks that the base can take it.

Installed (all owned by root unless said otherwise, times = ``SOURCE_DATE_EPOCH``):

- ``/opt/apiary/`` the program tree; ``/usr/local/bin/apiary -> /opt/apiary/apiary``
- user and group ``apiary`` in ``/etc/passwd``, ``group``, ``shadow``, ``gshadow`` and
  ``/usr/lib/sysusers.d/apiary.conf``
- ``/etc/systemd/system/apiary.service`` and ``apiary-firstboot.service``, both enabled
  (``multi-user.target.wants`` symlinks, as ``systemctl enable`` makes them)
- ``/usr/lib/apiary/apiary-firstboot``, the script that moves ``apiary.toml`` off the boot
  partition; ``/etc/apiary/`` (root:apiary 0750) where it goes
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from image import accounts, ext4
from image.errors import ImageError
from image.payload import Payload

OPT = "/opt/apiary"
LINK = "/usr/local/bin/apiary"
UNIT_DIR = "/etc/systemd/system"
WANTS = f"{UNIT_DIR}/multi-user.target.wants"
UNITS = ("apiary.service", "apiary-firstboot.service")
FIRSTBOOT = "/usr/lib/apiary/apiary-firstboot"
SYSUSERS = "/usr/lib/sysusers.d/apiary.conf"
CONFIG_DIR = "/etc/apiary"
FILES = Path(__file__).parent / "files"  # package data (pyproject: tool.setuptools.package-data)
ACCOUNT_FILES = ("passwd", "group", "shadow", "gshadow")
# Folders the base must have: Raspberry Pi OS always does; anything else is the wrong image.
REQUIRED_DIRS = ("/etc", UNIT_DIR, "/usr/lib", "/usr/local/bin", "/opt")
ARM64_LIBS = "/usr/lib/aarch64-linux-gnu"
ARMHF_LIBS = "/usr/lib/arm-linux-gnueabihf"


# The node's unit is one template shared with the Ansible role (its
# templates/apiary.service.j2 links to files/apiary.service.j2); these are the image's values.
UNIT_VALUES = {
    "apiary_user": "apiary",
    "apiary_group": "apiary",
    "apiary_home_dir": "/var/lib/apiary",
    "apiary_cache_dir": "/var/cache/apiary",
    "apiary_install_dir": OPT,
    "apiary_config_dir": CONFIG_DIR,
    "apiary_stop_timeout": 30,
    "apiary_memory_max": "75%",
}
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def fill_placeholders(text: str, values: dict[str, object]) -> str:
    """Jinja's ``{{ name }}`` without Jinja: the shared unit uses nothing else, so the image
    builder needs no template engine and renders it exactly as Ansible does."""

    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise ImageError(f"the unit template uses {{{{ {match[1]} }}}}, which has no value")
        return str(values[match[1]])

    filled = PLACEHOLDER.sub(value, text)
    if "{{" in filled or "{%" in filled:
        raise ImageError("the unit template holds Jinja beyond {{ name }} placeholders")
    return filled


def template(name: str, **values: object) -> bytes:
    """A file from ``image/files/`` with ``@KEY@`` placeholders filled in; for a shared
    ``<name>.j2`` template, its ``{{ name }}`` placeholders from :data:`UNIT_VALUES`."""
    shared = FILES / f"{name}.j2"
    if shared.is_file():
        return fill_placeholders(shared.read_text(), UNIT_VALUES).encode()
    text = (FILES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", str(value))
    return text.encode()


def check_base(fs: str, *, epoch: int, name: str) -> None:
    """Refuse a root file system that is not Raspberry Pi OS arm64, or already has Apiary."""
    for folder in REQUIRED_DIRS:
        found = ext4.stat(fs, folder, epoch=epoch)
        if found is None or found.kind != "directory":
            raise ImageError(
                f"the root file system of {name} has no {folder} folder, so it is not "
                "Raspberry Pi OS: pass an unmodified Raspberry Pi OS Lite arm64 image"
            )
    if ext4.stat(fs, ARM64_LIBS, epoch=epoch) is None:
        if ext4.stat(fs, ARMHF_LIBS, epoch=epoch) is not None:
            raise ImageError(
                f"{name} is 32-bit Raspberry Pi OS (armhf); Apiary needs the 64-bit one: "
                "download Raspberry Pi OS Lite (64-bit), arm64"
            )
        raise ImageError(
            f"{name} has no {ARM64_LIBS}, so it is not an arm64 system: pass Raspberry Pi OS "
            "Lite (64-bit)"
        )
    for path in ("/etc/passwd", "/etc/group", "/etc/shadow"):
        if ext4.stat(fs, path, epoch=epoch) is None:
            raise ImageError(f"the root file system of {name} has no {path}")
    if ext4.stat(fs, OPT, epoch=epoch) is not None:
        raise ImageError(
            f"{name} already has {OPT}: start from a clean Raspberry Pi OS image, not from one "
            "apiary-image has built"
        )


@dataclass(frozen=True)
class Installed:
    uid: int
    gid: int
    files: int  # entries of the program tree


def _account_files(
    fs: ext4.Device, epoch: int
) -> tuple[accounts.AccountFiles, dict[str, ext4.Inode]]:
    texts: dict[str, str | None] = {}
    inodes: dict[str, ext4.Inode] = {}
    for name in ACCOUNT_FILES:
        path = f"/etc/{name}"
        inode = ext4.stat(fs, path, epoch=epoch)
        raw = ext4.cat(fs, path, epoch=epoch) if inode is not None else None
        texts[name] = None if raw is None else raw.decode()
        if inode is not None:
            inodes[name] = inode
    files = accounts.AccountFiles(
        passwd=texts["passwd"] or "",
        group=texts["group"] or "",
        shadow=texts["shadow"] or "",
        gshadow=texts["gshadow"],
    )
    return files, inodes


def _ensure_dir(fs: ext4.Device, script: ext4.Script, path: str, epoch: int) -> None:
    """Create ``path`` and missing parents (0755 root) — for folders a base might lack."""
    missing = []
    current = path
    while current != "/" and ext4.stat(fs, current, epoch=epoch) is None:
        missing.append(current)
        current = current.rsplit("/", 1)[0] or "/"
    for folder in reversed(missing):
        script.mkdir(folder, mode=0o755)


def install(fs: Path, payload: Payload, *, epoch: int, scratch: Path) -> Installed:
    """Write everything into the root file system in ``fs`` (a file holding the partition)."""
    script = ext4.Script()
    staged = scratch / "staged"
    staged.mkdir()

    def stage(name: str, data: bytes) -> Path:
        local = staged / name
        local.write_bytes(data)
        return local

    # The user first: later files are owned by its group.
    files, inodes = _account_files(fs, epoch)
    try:
        added = accounts.add_system_user(files, epoch=epoch)
    except ValueError as exc:
        raise ImageError(f"cannot add the apiary user: {exc}") from None
    if added.created:
        for name in ACCOUNT_FILES:
            text = getattr(added.files, name)
            if text is None:
                continue
            path = f"/etc/{name}"
            old = inodes[name]  # keep the base's owner and mode (shadow is root:shadow 0640)
            script.remove(path)
            script.write(stage(name, text.encode()), path, mode=old.mode, uid=old.uid, gid=old.gid)

    script.mkdir(OPT, mode=0o755)
    for entry in payload.entries:
        path = f"{OPT}/{entry.relative}"
        if entry.kind == "dir":
            script.mkdir(path, mode=0o755)
        elif entry.kind == "symlink":
            script.symlink(path, entry.target)
        else:
            mode = 0o755 if entry.executable else 0o644
            script.write(payload.local(entry), path, mode=mode)
    script.symlink(LINK, f"{OPT}/apiary")

    _ensure_dir(fs, script, "/usr/lib/apiary", epoch)
    script.write(stage("apiary-firstboot", template("apiary-firstboot")), FIRSTBOOT, mode=0o755)
    _ensure_dir(fs, script, "/usr/lib/sysusers.d", epoch)
    script.write(stage("sysusers", template("apiary.sysusers", id=added.uid)), SYSUSERS, mode=0o644)
    script.mkdir(CONFIG_DIR, mode=0o750, gid=added.gid)

    _ensure_dir(fs, script, WANTS, epoch)
    for unit in UNITS:
        script.write(stage(unit, template(unit)), f"{UNIT_DIR}/{unit}", mode=0o644)
        script.symlink(f"{WANTS}/{unit}", f"{UNIT_DIR}/{unit}")

    ext4.apply(fs, script, epoch=epoch, scratch=scratch)
    return Installed(uid=added.uid, gid=added.gid, files=len(payload.entries))
