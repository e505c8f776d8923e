"""Colony temperature bands and blend (pure logic)."""

from __future__ import annotations

import pytest

from apiary.runtime.temperature import band, blend


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (0.0, "cold"),
        (0.29, "cold"),
        (0.3, "ideal"),
        (0.69, "ideal"),
        (0.7, "warm"),
        (0.85, "warm"),
        (0.851, "hot"),
        (0.95, "hot"),
        (0.951, "critical"),
        (1.0, "critical"),
    ],
)
def test_bands_follow_the_spec_boundaries(value: float, name: str) -> None:
    assert band(value) == name


def test_blend_is_bounded_and_a_single_pressure_sets_a_floor() -> None:
    assert blend(0, 0) == 0.0
    assert blend(1, 1, 1) == 1.0
    assert blend(2.0, -1.0) <= 1.0
    assert band(blend(0.05, 1.0)) in ("hot", "critical")  # full memory is never "ideal"
    assert blend(0.5, 0.5, thermal=0.9) > blend(0.5, 0.5)
