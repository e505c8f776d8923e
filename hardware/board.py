"""Which board this is: the device tree first, then ``/proc/cpuinfo`` (as gpiozero does).

``/proc/device-tree`` is a link to ``/sys/firmware/devicetree/base``; either may be all that a
container or a captured tree has. Some kernels (Ubuntu's, for one) print no Revision or Model
line in cpuinfo, and non-Raspberry Pi OS images may lack ``system/linux,revision``, so each
source only fills what the ones before it left empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardware import models, revision
from hardware.files import read_bytes, read_text
from hardware.models import PiModel


@dataclass(frozen=True)
class Board:
    name: str | None  # "Raspberry Pi 4 Model B Rev 1.4"
    revision: int | None
    model: PiModel | None
    ram_mb: int | None  # RAM variant from the revision code; None unless a known model
    processors: int  # "processor" entries in cpuinfo (0 if none)


def _device_tree(proc: Path, sys_root: Path, name: str) -> bytes | None:
    for base in (proc / "device-tree", sys_root / "firmware/devicetree/base"):
        data = read_bytes(base / name)
        if data is not None:
            return data
    return None


def _cpuinfo(proc: Path) -> tuple[dict[str, str], int]:
    """The last value of each "key : value" line, and the number of "processor" entries."""
    fields: dict[str, str] = {}
    processors = 0
    for line in (read_text(proc / "cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        fields[key] = value.strip()
        processors += key == "processor"
    return fields, processors


def _hex(text: str | None) -> int | None:
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def read_board(proc: Path, sys_root: Path) -> Board:
    cpuinfo, processors = _cpuinfo(proc)
    raw_name = _device_tree(proc, sys_root, "model")  # NUL-terminated
    name = raw_name.rstrip(b"\0").decode("utf-8", "replace").strip() if raw_name else None
    name = name or cpuinfo.get("Model") or None
    raw_code = _device_tree(proc, sys_root, "system/linux,revision")  # 4 bytes, big-endian
    code = int.from_bytes(raw_code[:4], "big") if raw_code and len(raw_code) >= 4 else None
    if code is None:
        code = _hex(cpuinfo.get("Revision"))

    decoded = revision.decode_revision(code) if code is not None else None
    model = None
    if decoded is not None and decoded.type_code is not None:
        model = models.by_type_code(decoded.type_code)
    if model is None and name:
        model = models.by_name(name)
    ram_mb = decoded.memory_mb if decoded is not None and model is not None else None
    return Board(name=name, revision=code, model=model, ram_mb=ram_mb, processors=processors)
