"""The reserve rule and the budgets derived from a profile."""

from __future__ import annotations

import dataclasses

import pytest

from apiary.errors import ConfigError
from hardware import budgets, detect, reserve_for

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("budget_mb", "reserve_mb"),
    [
        (150, 75),  # 96 MiB would be more than half: half it is
        (200, 96),  # 25 % is 50 MiB: the floor
        (512, 128),  # 25 %
        (1024, 256),
        (2048, 512),  # 25 % is exactly the cap
        (8192, 512),  # capped
    ],
)
def test_reserve_rule(budget_mb: int, reserve_mb: int) -> None:
    assert reserve_for(budget_mb * MiB) == reserve_mb * MiB


def test_budgets_of_a_pi4(captured) -> None:
    plan = budgets(detect(*captured("pi4b_4gb")))
    assert plan.reserve_bytes == 512 * MiB
    assert plan.node_memory_bytes == plan.memory_budget_bytes - 512 * MiB
    assert plan.memory_per_bee_bytes == plan.node_memory_bytes // 4
    assert plan.cell_target_bytes == plan.memory_per_bee_bytes // 4
    assert plan.cell_max_bytes == 2 * plan.cell_target_bytes
    assert plan.thermal_headroom == pytest.approx((85 - 47.225) / 45)


def test_explicit_reserve(captured) -> None:
    plan = budgets(detect(*captured("container_cgroupv2")), reserve_mb=0)
    assert plan.reserve_bytes == 0 and plan.memory_per_bee_bytes == 256 * MiB


def test_small_bees_get_the_leafcutter_floor(captured) -> None:
    profile = detect(*captured("zero2w"), overrides={"memory_mb": 128})
    plan = budgets(profile)
    assert plan.memory_per_bee_bytes == (128 - 64) * MiB // 4  # 16 MiB each
    assert plan.cell_target_bytes == 16 * MiB


@pytest.mark.parametrize("reserve_mb", [-1, 1.5, True, "64"])
def test_invalid_reserve(reserve_mb: object, captured) -> None:
    with pytest.raises(ConfigError, match="reserve_mb"):
        budgets(detect(*captured("pi400")), reserve_mb=reserve_mb)  # type: ignore[arg-type]


def test_a_reserve_that_leaves_nothing(captured) -> None:
    with pytest.raises(ConfigError, match="leaves no memory"):
        budgets(detect(*captured("container_cgroupv2")), reserve_mb=512)


def test_unknown_memory_asks_for_memory_mb(tree) -> None:
    profile = detect(*tree({}))
    with pytest.raises(ConfigError, match="memory_mb"):
        budgets(profile)
    assert budgets(dataclasses.replace(profile, memory_budget_bytes=256 * MiB)).bees == 1
