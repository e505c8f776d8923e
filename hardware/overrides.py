"""Config values that replace detected ones: ``cores``, ``memory_mb`` and ``model``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiary.errors import ConfigError
from hardware.models import MODELS, PiModel, by_key

KEYS = ("cores", "memory_mb", "model")
MIN_MEMORY_MB = 64  # below this an interpreter plus one bee cannot run


@dataclass(frozen=True)
class Overrides:
    cores: int | None = None
    memory_mb: int | None = None
    model: PiModel | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key for key in KEYS if getattr(self, key) is not None)


def _positive_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"hardware override {key!r} must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"hardware override {key!r} must be at least {minimum}, got {value}")
    return value


def parse_overrides(overrides: Mapping[str, Any] | None) -> Overrides:
    """Validate ``overrides``; keys set to None are ignored (an unset config value)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"unknown hardware override(s) {', '.join(map(repr, unknown))}; use {', '.join(KEYS)}"
        )
    model = None
    if "model" in given:
        value = given["model"]
        model = by_key(value) if isinstance(value, str) else None
        if model is None:
            choices = ", ".join(m.key for m in MODELS)
            raise ConfigError(f"hardware override 'model': unknown model {value!r}; use {choices}")
    return Overrides(
        cores=_positive_int("cores", given["cores"], 1) if "cores" in given else None,
        memory_mb=(
            _positive_int("memory_mb", given["memory_mb"], MIN_MEMORY_MB)
            if "memory_mb" in given
            else None
        ),
        model=model,
    )
