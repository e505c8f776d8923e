"""SoC temperature, thermal headroom and the firmware's throttling flags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hardware.files import read_int, read_text

# The Pi firmware throttles hard at 85 °C; below 40 °C there is nothing to worry about.
THROTTLE_C = 85.0
COOL_C = 40.0

TEMPERATURE_FILE = "class/thermal/thermal_zone0/temp"  # millidegrees Celsius
THROTTLED_FILE = "devices/platform/soc/soc:firmware/get_throttled"
# Where other device trees put the firmware node (e.g. "soc@107c000000" on BCM2712 boards).
THROTTLED_GLOB = "devices/platform/soc*/soc*:firmware/get_throttled"

# Bits of the firmware's get_throttled word (as ``vcgencmd get_throttled`` prints it).
THROTTLE_BITS: dict[str, int] = {
    "under_voltage": 0,
    "freq_capped": 1,
    "throttled": 2,
    "soft_temp_limit": 3,
    "under_voltage_occurred": 16,
    "freq_capped_occurred": 17,
    "throttled_occurred": 18,
    "soft_temp_limit_occurred": 19,
}


@dataclass(frozen=True)
class Throttling:
    """The decoded get_throttled word: what is happening now, and what has happened since boot."""

    raw: int

    def flag(self, name: str) -> bool:
        return bool(self.raw >> THROTTLE_BITS[name] & 1)

    @property
    def under_voltage(self) -> bool:
        return self.flag("under_voltage")

    @property
    def freq_capped(self) -> bool:
        return self.flag("freq_capped")

    @property
    def throttled(self) -> bool:
        return self.flag("throttled")

    @property
    def soft_temp_limit(self) -> bool:
        return self.flag("soft_temp_limit")

    @property
    def under_voltage_occurred(self) -> bool:
        return self.flag("under_voltage_occurred")

    @property
    def freq_capped_occurred(self) -> bool:
        return self.flag("freq_capped_occurred")

    @property
    def throttled_occurred(self) -> bool:
        return self.flag("throttled_occurred")

    @property
    def soft_temp_limit_occurred(self) -> bool:
        return self.flag("soft_temp_limit_occurred")

    @property
    def active(self) -> bool:
        """Something is limiting the board right now (bits 0-3)."""
        return bool(self.raw & 0xF)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(name for name in THROTTLE_BITS if self.flag(name))

    def to_dict(self) -> dict[str, object]:
        return {"raw": f"0x{self.raw:x}", **{name: self.flag(name) for name in THROTTLE_BITS}}


def decode_throttled(raw: int) -> Throttling:
    return Throttling(raw=raw)


def _throttled_files(sys_root: Path) -> Iterator[Path]:
    yield sys_root / THROTTLED_FILE
    yield from sorted(sys_root.glob(THROTTLED_GLOB))  # only searched when the usual path is absent


def read_throttled(sys_root: Path) -> Throttling | None:
    """The firmware's throttling word, or None where the firmware does not expose it."""
    for path in _throttled_files(sys_root):
        text = read_text(path)
        if text is None:
            continue
        try:
            return Throttling(raw=int(text.strip(), 16))  # the kernel prints it as hex
        except ValueError:
            return None
    return None


def read_temperature(sys_root: Path) -> float | None:
    """The SoC temperature in °C, or None if there is no thermal zone."""
    millidegrees = read_int(sys_root / TEMPERATURE_FILE)
    return None if millidegrees is None else millidegrees / 1000


def thermal_headroom(temperature_c: float) -> float:
    """1.0 when cool (≤ 40 °C), 0.0 at the firmware's 85 °C throttling point, linear between."""
    return min(max((THROTTLE_C - temperature_c) / (THROTTLE_C - COOL_C), 0.0), 1.0)


def thermal_pressure(sys_root: Path = Path("/sys")) -> float | None:
    """A live reading for colony temperature: 0 when cool, 1 at the throttling point.

    It is ``1 - thermal_headroom`` of the temperature now; None without a thermal zone. Call it
    only on a Pi (``HardwareProfile.is_pi``): other machines' zones mean other things.
    """
    celsius = read_temperature(sys_root)
    return None if celsius is None else 1.0 - thermal_headroom(celsius)
