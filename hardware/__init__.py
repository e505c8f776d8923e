"""Hardware detection and profiles: which Raspberry Pi (or other machine) a node runs on.

``detect()`` reads ``/proc`` and ``/sys`` (roots are parameters, so tests use captured fixture
trees) and returns a :class:`HardwareProfile`; ``budgets()`` turns it into bees, memory per bee
and leafcutter cell sizes. Only ``apiary.errors`` and ``apiary.cells.sizing`` are imported from
the engine: this package sits below it.
"""

# First, so that the engine's package (whose __init__ imports the SDK, which imports hardware's
# submodules) finishes loading before any module of this package is half-initialised.
import apiary.errors  # noqa: F401  # isort: skip
from hardware.boot import MEDIA
from hardware.budgets import Budgets, budgets, reserve_for
from hardware.detect import HardwareProfile, detect
from hardware.models import MODELS, PiModel, by_key, by_name, by_type_code
from hardware.overrides import Overrides, parse_overrides
from hardware.revision import Revision, decode_revision
from hardware.thermal import (
    Throttling,
    decode_throttled,
    read_temperature,
    read_throttled,
    thermal_headroom,
    thermal_pressure,
)

__all__ = [
    "MEDIA",
    "MODELS",
    "Budgets",
    "HardwareProfile",
    "Overrides",
    "PiModel",
    "Revision",
    "Throttling",
    "budgets",
    "by_key",
    "by_name",
    "by_type_code",
    "decode_revision",
    "decode_throttled",
    "detect",
    "parse_overrides",
    "read_temperature",
    "read_throttled",
    "reserve_for",
    "thermal_headroom",
    "thermal_pressure",
]
