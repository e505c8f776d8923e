"""Temperature, thermal headroom and the firmware's get_throttled bit field."""

from __future__ import annotations

import pytest

from hardware import (
    decode_throttled,
    read_temperature,
    read_throttled,
    thermal_headroom,
    thermal_pressure,
)


def test_decode_everything_now_and_since_boot() -> None:
    state = decode_throttled(0x70007)
    assert state.under_voltage and state.freq_capped and state.throttled
    assert not state.soft_temp_limit
    assert state.under_voltage_occurred and state.freq_capped_occurred and state.throttled_occurred
    assert not state.soft_temp_limit_occurred
    assert state.active


def test_decode_only_history() -> None:
    state = decode_throttled(0x50000)  # a weak supply earlier, fine now
    assert state.flags == ("under_voltage_occurred", "throttled_occurred")
    assert not state.active


def test_decode_soft_temperature_limit() -> None:
    state = decode_throttled(0x80008)
    assert state.soft_temp_limit and state.soft_temp_limit_occurred
    assert state.flags == ("soft_temp_limit", "soft_temp_limit_occurred")


def test_decode_nothing() -> None:
    state = decode_throttled(0)
    assert state.flags == () and not state.active
    assert state.to_dict()["raw"] == "0x0"


def test_throttled_fixture(captured) -> None:
    _, sys = captured("pi4b_throttled")
    state = read_throttled(sys)
    assert state is not None and state.raw == 0x70007 and state.under_voltage
    assert read_temperature(sys) == pytest.approx(82.797)


def test_zero2w_had_a_weak_supply(captured) -> None:
    _, sys = captured("zero2w")
    state = read_throttled(sys)
    assert state is not None and state.under_voltage_occurred and not state.under_voltage


def test_pi5_does_not_expose_it(captured) -> None:
    _, sys = captured("pi5_8gb")
    assert read_throttled(sys) is None


def test_prefixed_hex_and_other_firmware_node_names(tree) -> None:
    _, sys = tree(
        {"sys/devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled": "0x50005\n"}
    )
    state = read_throttled(sys)
    assert state is not None and state.raw == 0x50005


@pytest.mark.parametrize(
    ("celsius", "headroom"),
    [(20.0, 1.0), (40.0, 1.0), (62.5, 0.5), (80.5, 0.1), (85.0, 0.0), (95.0, 0.0)],
)
def test_headroom(celsius: float, headroom: float) -> None:
    assert thermal_headroom(celsius) == pytest.approx(headroom)


def test_hot_pi_has_little_headroom(captured) -> None:
    from hardware import detect

    profile = detect(*captured("pi4b_throttled"))
    assert profile.thermal_headroom == pytest.approx((85 - 82.797) / 45)


def test_live_pressure_for_colony_temperature(captured, tree) -> None:
    _, sys = captured("pi4b_throttled")
    assert thermal_pressure(sys) == pytest.approx(1 - (85 - 82.797) / 45)
    _, cool = captured("pi400")
    assert thermal_pressure(cool) == 0.0  # below 40 °C
    assert thermal_pressure(tree({})[1]) is None
