"""``apiary hardware`` and ``apiary doctor`` apply the settings the SDK applies (issue item 9):
``APIARY_MEMORY_MB`` / ``APIARY_CORES`` / ``APIARY_RESERVE_MB`` / ``APIARY_MODEL`` and the same
keys in the config file, so all three show the node's real budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from apiary import Apiary
from apiary.cli import cli

MiB = 1024 * 1024


def apiary(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def hardware_json(*args: str) -> dict:
    code, output = apiary("hardware", "--json", *args)
    assert code == 0, output
    return json.loads(output)


def roots(captured, name: str = "container_cgroupv2") -> list[str]:
    proc, sys = captured(name)
    return ["--proc", str(proc), "--sys", str(sys)]


def test_hardware_applies_apiary_variables(captured, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIARY_MEMORY_MB", "1024")
    monkeypatch.setenv("APIARY_CORES", "3")
    monkeypatch.setenv("APIARY_RESERVE_MB", "100")
    monkeypatch.setenv("APIARY_MODEL", "cm4")
    data = hardware_json(*roots(captured))
    plan = data["budgets"]
    assert plan["memory_budget_bytes"] == 1024 * MiB
    assert plan["bees"] == 3 and plan["reserve_bytes"] == 100 * MiB
    assert plan["memory_per_bee_bytes"] == (1024 - 100) * MiB // 3
    assert data["profile"]["model"] == "CM4"
    assert data["profile"]["overridden"] == ["cores", "memory_mb", "model"]


def test_hardware_applies_the_config_file(
    captured, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text("memory_mb = 2048\ncores = 2\nreserve_mb = 256\n")
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    plan = hardware_json(*roots(captured))["budgets"]
    assert plan["memory_budget_bytes"] == 2048 * MiB and plan["bees"] == 2
    assert plan["memory_per_bee_bytes"] == (2048 - 256) * MiB // 2


def test_flags_beat_variables(captured, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIARY_MEMORY_MB", "1024")
    monkeypatch.setenv("APIARY_CORES", "3")
    plan = hardware_json("--memory-mb", "512", *roots(captured))["budgets"]
    assert plan["memory_budget_bytes"] == 512 * MiB and plan["bees"] == 3


def test_a_bad_setting_is_a_usage_error_naming_the_key(
    captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIARY_MEMORY_MB", "lots")
    code, output = apiary("hardware", *roots(captured))
    assert code == 2 and "memory_mb" in output


def test_hardware_shows_the_budget_the_sdk_uses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("APIARY_MEMORY_MB", "768")
    monkeypatch.setenv("APIARY_CORES", "1")
    shown = hardware_json()["budgets"]  # this machine's own /proc and /sys
    with Apiary("t", str(tmp_path / "root")) as ap:
        used = ap.budgets.to_dict()
    assert shown == used
    assert used["memory_budget_bytes"] == 768 * MiB and used["bees"] == 1


def test_doctor_checks_the_configured_memory_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text("memory_mb = 200\ncores = 1\n")
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    (tmp_path / "root").mkdir()  # doctor checks a root; it never creates one
    code, output = apiary("doctor", "--storage", str(tmp_path / "root"))
    assert code == 0, output
    assert "200 MiB budget over 1 core" in output
    assert "under 256 MiB" in output  # the warning judges the configured budget
    monkeypatch.setenv("APIARY_MEMORY_MB", "4096")  # a variable beats the file
    code, output = apiary("doctor", "--storage", str(tmp_path / "root"))
    assert "4 GiB budget over 1 core" in output and "under 256 MiB" not in output


def test_doctor_fails_the_memory_check_on_a_bad_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("APIARY_MODEL", "pi9")
    code, output = apiary("doctor", "--storage", str(tmp_path / "root"))
    assert code == 1
    assert "unknown model 'pi9'" in output
