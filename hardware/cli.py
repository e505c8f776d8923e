"""``apiary hardware``: the detected profile and the budgets derived from it."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from apiary.config import load_settings
from apiary.errors import ConfigError
from apiary.units import human_bytes
from hardware.budgets import Budgets, budgets
from hardware.detect import HardwareProfile, MiB, detect


def _mb(value: int | None) -> str:
    return human_bytes(value)  # the one unit style of every command and the TUI


def _show(value: object) -> str:
    return "—" if value is None else str(value)


def _rows(profile: HardwareProfile, plan: Budgets) -> list[tuple[str, str]]:
    model = profile.model
    throttling = profile.throttling
    if throttling is None:
        throttled = "unknown"
    else:
        throttled = ", ".join(throttling.flags) or "none"
        throttled = f"{throttled} (0x{throttling.raw:x})"
    quota = None if profile.cpu_quota is None else f"{profile.cpu_quota:g} CPUs"
    temperature = None if profile.temperature_c is None else f"{profile.temperature_c:.1f} °C"
    headroom = None if plan.thermal_headroom is None else f"{plan.thermal_headroom:.2f}"
    return [
        ("Model", model.key if model else "not a Raspberry Pi"),
        ("Device tree model", _show(profile.model_name)),
        ("Revision", _show(profile.revision_code)),
        ("RAM variant", _mb(profile.ram_mb * MiB) if profile.ram_mb else "—"),
        ("SoC", _show(profile.soc)),
        ("Max clock", f"{model.max_clock_mhz} MHz" if model else "—"),
        ("CPUs online", _show(profile.cpus_online)),
        ("CPUs allowed (affinity)", _show(profile.cpus_allowed)),
        ("cgroup CPU quota", _show(quota)),
        ("Cores (bees)", str(plan.bees)),
        ("Physical memory", _mb(profile.memory_total_bytes)),
        ("cgroup memory limit", _mb(profile.memory_limit_bytes)),
        ("Memory budget", _mb(plan.memory_budget_bytes)),
        ("Reserve (interpreter, OS)", _mb(plan.reserve_bytes)),
        ("Node memory for bees", _mb(plan.node_memory_bytes)),
        ("Memory per bee", _mb(plan.memory_per_bee_bytes)),
        ("Leafcutter cell target", _mb(plan.cell_target_bytes)),
        ("SoC temperature", _show(temperature)),
        ("Thermal headroom", _show(headroom)),
        ("Throttling", throttled),
        ("Boot medium", f"{profile.boot_medium} ({profile.root_device or 'root device unknown'})"),
        ("In a container", "yes" if profile.in_container else "no"),
        ("Overridden by config", ", ".join(profile.overridden) or "—"),
    ]


@click.command("hardware")
@click.option("--json", "as_json", is_flag=True, help="Print the profile and budgets as JSON.")
@click.option("--cores", type=int, default=None, help="Use this many cores (beats the config).")
@click.option("--memory-mb", type=int, default=None, help="Use this memory budget (MB).")
@click.option("--model", default=None, help="Treat the board as this Pi model (e.g. 4B, CM5).")
@click.option("--reserve-mb", type=int, default=None, help="Replace the interpreter/OS reserve.")
@click.option(
    "--proc",
    "proc_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/proc"),
    hidden=True,
)
@click.option(
    "--sys",
    "sys_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/sys"),
    hidden=True,
)
def hardware(
    as_json: bool,
    cores: int | None,
    memory_mb: int | None,
    model: str | None,
    reserve_mb: int | None,
    proc_root: Path,
    sys_root: Path,
) -> None:
    """Show this machine's hardware (Pi model, cores, memory, temperature) and its budgets.

    The config file and APIARY_* variables apply as they do for a node; flags override both.
    """
    try:
        settings = load_settings()
        overrides = settings.hardware_overrides()
        for key, flag in (("cores", cores), ("memory_mb", memory_mb), ("model", model)):
            if flag is not None:
                overrides[key] = flag
        profile = detect(proc_root, sys_root, overrides=overrides)
        reserve = settings.reserve_mb if reserve_mb is None else reserve_mb
        plan = budgets(profile, reserve_mb=reserve)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"profile": profile.to_dict(), "budgets": plan.to_dict()}, indent=2))
        return
    table = Table(title="Hardware", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for label, value in _rows(profile, plan):
        table.add_row(label, value)
    Console().print(table)
