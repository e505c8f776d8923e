"""Config overrides replace detected values; invalid ones raise ConfigError."""

from __future__ import annotations

from typing import Any

import pytest

from apiary.errors import ConfigError
from hardware import budgets, detect, parse_overrides

MiB = 1024 * 1024


def test_overrides_replace_detected_values(captured) -> None:
    profile = detect(*captured("pi4b_4gb"), overrides={"cores": 2, "memory_mb": 1024})
    assert profile.cores == 2
    assert profile.memory_budget_bytes == 1024 * MiB
    assert profile.memory_total_bytes == 3_884_360 * 1024  # what was measured stays visible
    assert profile.overridden == ("cores", "memory_mb")
    plan = budgets(profile)
    assert plan.bees == 2 and plan.memory_per_bee_bytes == (1024 - 256) * MiB // 2


def test_model_override_on_an_unrecognised_board(captured) -> None:
    profile = detect(*captured("container_cgroupv2"), overrides={"model": "cm5"})
    assert profile.model is not None and profile.model.key == "CM5"
    assert profile.soc == "BCM2712"
    assert profile.thermal_headroom is not None  # now treated as a Pi
    assert profile.overridden == ("model",)


def test_unset_values_are_ignored(captured) -> None:
    roots = captured("pi400")
    plain = detect(*roots)
    assert detect(*roots, overrides={"cores": None, "memory_mb": None, "model": None}) == plain
    assert detect(*roots, overrides={}) == plain


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cpus": 4}, "unknown hardware override.*'cpus'"),
        ({"cores": 0}, "'cores' must be at least 1"),
        ({"cores": -2}, "'cores' must be at least 1"),
        ({"cores": "4"}, "'cores' must be a whole number"),
        ({"cores": 2.5}, "'cores' must be a whole number"),
        ({"cores": True}, "'cores' must be a whole number"),
        ({"memory_mb": 8}, "'memory_mb' must be at least 64"),
        ({"memory_mb": "1G"}, "'memory_mb' must be a whole number"),
        ({"model": "Pi 6"}, "unknown model 'Pi 6'.*4B"),
        ({"model": 4}, "unknown model 4"),
    ],
)
def test_invalid_overrides(overrides: dict[str, Any], message: str, captured) -> None:
    with pytest.raises(ConfigError, match=message):
        detect(*captured("pi4b_4gb"), overrides=overrides)
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        parse_overrides(overrides)
