"""Decode a Raspberry Pi revision code (``/proc/cpuinfo`` "Revision", or the device tree's
``system/linux,revision``).

New-style codes are the bit field ``NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR``: F (bit 23) marks the new
style, MMM memory size, CCCC manufacturer, PPPP processor, TTTTTTTT board type, RRRR PCB revision.
Old-style codes (0002-0015, first-generation boards) carry none of these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.models import MANUFACTURERS, MEMORY_SIZES_MB, PROCESSORS

NEW_STYLE_FLAG = 1 << 23


@dataclass(frozen=True)
class Revision:
    code: int
    new_style: bool
    type_code: int | None = None
    memory_mb: int | None = None
    processor: str | None = None
    manufacturer: str | None = None
    pcb_revision: str | None = None

    @property
    def hex(self) -> str:
        return f"{self.code:x}"


def decode_revision(code: int) -> Revision:
    if not code & NEW_STYLE_FLAG:
        return Revision(code=code, new_style=False)
    return Revision(
        code=code,
        new_style=True,
        type_code=(code >> 4) & 0xFF,
        memory_mb=MEMORY_SIZES_MB.get((code >> 20) & 0x7),
        processor=PROCESSORS.get((code >> 12) & 0xF),
        manufacturer=MANUFACTURERS.get((code >> 16) & 0xF),
        pcb_revision=f"1.{code & 0xF}",
    )
