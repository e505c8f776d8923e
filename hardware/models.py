"""The Raspberry Pi models Apiary knows, as plain data (gpiozero keeps its board data the same way).

Type codes and the memory-size field come from Raspberry Pi's documented new-style revision codes
(``NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR``; see ``hardware.revision``). ``ram_mb`` lists the RAM
variants each model shipped with; ``max_clock_mhz`` is the stock maximum ARM clock (a 4B runs at
1800 MHz from board revision 1.4 on with current firmware; older boards at 1500 MHz).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PiModel:
    key: str  # short name used in config and output: "4B", "Zero 2 W", "CM5"
    board: str  # the device tree's model string after "Raspberry Pi " and before " Rev x.y"
    soc: str
    cores: int
    max_clock_mhz: int
    ram_mb: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"Raspberry Pi {self.board}"

    @property
    def type_codes(self) -> tuple[int, ...]:
        return tuple(code for code, key in TYPE_CODES.items() if key == self.key)


# fmt: off
MODELS: tuple[PiModel, ...] = (
    #       key         board               SoC          cores MHz   RAM variants (MB)
    PiModel("3B",       "3 Model B",        "BCM2837",   4, 1200, (1024,)),
    PiModel("3B+",      "3 Model B Plus",   "BCM2837B0", 4, 1400, (1024,)),
    PiModel("4B",       "4 Model B",        "BCM2711",   4, 1800, (1024, 2048, 4096, 8192)),
    PiModel("400",      "400",              "BCM2711",   4, 1800, (4096,)),
    PiModel("5",        "5 Model B",        "BCM2712",   4, 2400, (1024, 2048, 4096, 8192, 16384)),
    PiModel("500",      "500",              "BCM2712",   4, 2400, (8192,)),
    PiModel("Zero 2 W", "Zero 2 W",         "BCM2710A1", 4, 1000, (512,)),
    PiModel("CM4",      "Compute Module 4", "BCM2711",   4, 1500, (1024, 2048, 4096, 8192)),
    PiModel("CM5",      "Compute Module 5", "BCM2712",   4, 2400, (2048, 4096, 8192, 16384)),
)
# fmt: on

# TTTTTTTT field (bits 4-11) of a new-style revision code → model key.
TYPE_CODES: dict[int, str] = {
    0x08: "3B",
    0x0D: "3B+",
    0x11: "4B",
    0x12: "Zero 2 W",
    0x13: "400",
    0x14: "CM4",
    0x17: "5",
    0x18: "CM5",
    0x19: "500",
    0x1A: "CM5",  # CM5 Lite (no eMMC): the same board as far as budgets are concerned
}

# MMM field (bits 20-22) of a new-style revision code → RAM in MB.
MEMORY_SIZES_MB: dict[int, int] = {0: 256, 1: 512, 2: 1024, 3: 2048, 4: 4096, 5: 8192, 6: 16384}

# PPPP field (bits 12-15). The Zero 2 W's BCM2710A1 and the 3B+'s BCM2837B0 both report 2.
PROCESSORS: dict[int, str] = {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}

# CCCC field (bits 16-19).
MANUFACTURERS: dict[int, str] = {
    0: "Sony UK",
    1: "Egoman",
    2: "Embest",
    3: "Sony Japan",
    4: "Embest",
    5: "Stadium",
}


def _squash(text: str) -> str:
    text = text.lower().replace(" ", "").replace("_", "").replace("-", "")
    for prefix in ("raspberrypi", "rpi", "pi"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def by_type_code(type_code: int) -> PiModel | None:
    key = TYPE_CODES.get(type_code)
    return next((m for m in MODELS if m.key == key), None)


def by_key(key: str) -> PiModel | None:
    """A model from a config value: "4B", "pi4b", "Zero 2 W", "zero2w", "cm5" all work."""
    wanted = _squash(key)
    return next((m for m in MODELS if wanted in (_squash(m.key), _squash(m.name))), None)


def by_name(name: str) -> PiModel | None:
    """A model from the device tree's string ("Raspberry Pi 4 Model B Rev 1.4").

    The longest matching name wins and must end at a word boundary, so "3 Model B Plus" is not
    read as "3 Model B" and "Compute Module 4S" is not read as "Compute Module 4".
    """
    for model in sorted(MODELS, key=lambda m: len(m.name), reverse=True):
        if name == model.name or name.startswith(model.name + " "):
            return model
    return None
