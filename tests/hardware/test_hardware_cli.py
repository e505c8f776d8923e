"""``apiary hardware`` on captured fixture roots."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hardware.cli import hardware

MiB = 1024 * 1024


def run(*args: str):
    return CliRunner().invoke(hardware, list(args), env={"COLUMNS": "120"})


def roots(captured, name: str) -> list[str]:
    proc, sys = captured(name)
    return ["--proc", str(proc), "--sys", str(sys)]


def test_json(captured) -> None:
    result = run("--json", *roots(captured, "pi4b_4gb"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    profile, plan = data["profile"], data["budgets"]
    assert profile["model"] == "4B"
    assert profile["model_name"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert profile["revision"] == "c03114" and profile["ram_mb"] == 4096
    assert profile["soc"] == "BCM2711" and profile["boot_medium"] == "sd"
    assert profile["throttling"]["raw"] == "0x0"
    assert plan["bees"] == 4
    assert plan["memory_per_bee_bytes"] == (3_884_360 * 1024 - 512 * MiB) // 4


def test_json_in_a_container(captured) -> None:
    data = json.loads(run("--json", *roots(captured, "container_cgroupv2")).output)
    assert data["profile"]["model"] is None and data["profile"]["in_container"] is True
    assert data["budgets"]["memory_budget_bytes"] == 512 * MiB
    assert data["budgets"]["thermal_headroom"] is None


def test_table(captured) -> None:
    result = run(*roots(captured, "pi4b_throttled"))
    assert result.exit_code == 0, result.output
    for text in (
        "Raspberry Pi 4 Model B Rev 1.5",
        "BCM2711",
        "82.8 °C",
        "under_voltage",
        "0x70007",
        "sd (/dev/mmcblk0p2)",
        "Memory per bee",
    ):
        assert text in result.output, text


def test_overrides_from_flags(captured) -> None:
    args = ["--json", "--cores", "2", "--memory-mb", "2048", "--model", "cm4"]
    data = json.loads(run(*args, *roots(captured, "container_cgroupv2")).output)
    assert data["profile"]["model"] == "CM4" and data["budgets"]["bees"] == 2
    assert data["budgets"]["memory_budget_bytes"] == 2048 * MiB
    assert data["profile"]["overridden"] == ["cores", "memory_mb", "model"]


def test_invalid_override_is_a_usage_error(captured) -> None:
    result = run("--model", "pi9", *roots(captured, "pi400"))
    assert result.exit_code == 2
    assert "unknown model 'pi9'" in result.output


def test_help_hides_the_debugging_roots() -> None:
    result = run("--help")
    assert result.exit_code == 0 and "--json" in result.output
    assert "--proc" not in result.output and "--sys" not in result.output
