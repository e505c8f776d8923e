"""Which machine an ELF executable is built for, read from its 64-byte header."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from image.errors import ImageError

ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183

# e_machine values of the architectures a binary is likely to be built on by mistake.
MACHINE_NAMES = {
    3: "x86 (32-bit)",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC 64",
    22: "s390",
    40: "ARM (32-bit)",
    62: "x86-64",
    EM_AARCH64: "AArch64 (arm64)",
    243: "RISC-V",
}


@dataclass(frozen=True)
class ElfInfo:
    machine: int  # e_machine
    bits: int  # 32 or 64 (EI_CLASS)
    little_endian: bool  # EI_DATA

    @property
    def name(self) -> str:
        base = MACHINE_NAMES.get(self.machine, f"unknown machine {self.machine}")
        if self.machine == EM_AARCH64 and (self.bits != 64 or not self.little_endian):
            return f"{base}, {self.bits}-bit {'little' if self.little_endian else 'big'}-endian"
        return base

    @property
    def is_arm64(self) -> bool:
        return self.machine == EM_AARCH64 and self.bits == 64 and self.little_endian


def parse_header(header: bytes) -> ElfInfo | None:
    """The ELF identification of ``header`` (the file's first bytes), or None if not ELF."""
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return None
    ei_class, ei_data = header[4], header[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        return None
    (machine,) = struct.unpack_from("<H" if ei_data == 1 else ">H", header, 18)
    return ElfInfo(machine=machine, bits=32 if ei_class == 1 else 64, little_endian=ei_data == 1)


def require_arm64(header: bytes, where: str) -> ElfInfo:
    """Raise ``ImageError`` unless ``header`` starts a 64-bit little-endian AArch64 ELF file."""
    info = parse_header(header)
    if info is None:
        raise ImageError(
            f"{where} is not an ELF executable; pass the folder, tarball or program that "
            "`just binary` builds on a Raspberry Pi or another arm64 Linux machine"
        )
    if not info.is_arm64:
        raise ImageError(
            f"{where} is built for {info.name}, but Raspberry Pi OS arm64 needs an AArch64 "
            "(arm64) program: build it on a Pi or another arm64 Linux machine with `just binary`"
        )
    return info


def read_header(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64)
