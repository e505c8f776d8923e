"""``apiary doctor``: is this machine ready to be a node on that storage root?"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import click
from rich.table import Table
from rich.text import Text

from apiary.catalog import Registry
from apiary.cli.common import console, storage_options
from apiary.config import Settings, config_file, load_settings
from apiary.errors import ApiaryError, ConfigError, SerializationError
from apiary.frame import Frame
from apiary.storage import Storage, open_storage
from apiary.units import count, human_bytes
from hardware.budgets import budgets
from hardware.detect import detect

CLOCK_WARN_S = 120
Check = tuple[str, str, str]  # (name, "ok" | "warn" | "fail", detail)


@click.command()
@storage_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object: {"ok": bool, "checks": [{"check", "result", "detail"}]}.',
)
def doctor(storage: str | None, name: str, as_json: bool) -> None:
    """Check storage reachability, conditional writes, clock and memory limits.

    Exits 1 when a check fails, so scripts and Ansible can stop on it.
    """
    settings = load_settings(storage=storage)
    checks: list[Check] = [("config file", "ok", str(config_file() or "none (defaults)"))]
    try:
        creds = settings.credentials.as_dict() if settings.credentials else None
        # create=False: a checkup reports a mistyped path rather than making an empty root there
        root = open_storage(storage or settings.storage, name=name, credentials=creds, create=False)
    except ApiaryError as exc:
        checks.append(("storage", "fail", str(exc)))
        checks.append(_memory(settings))  # this machine's own checks hold without a root
        _report(checks, as_json)
        return
    checks.append(_check("storage reachable", lambda: _reachable(root)))
    checks.append(_check("conditional writes", lambda: _conditional(root)))
    checks.append(_check("clock", lambda: _clock(root)))
    checks.append(_check("catalog and ledgers", lambda: _damage(root)))
    checks.append(_memory(settings))
    _report(checks, as_json)


def _check(label: str, probe: Callable[[], tuple[str, str]]) -> Check:
    try:
        state, detail = probe()
    except ApiaryError as exc:
        return (label, "fail", str(exc))
    return (label, state, detail)


def _reachable(root: Storage) -> tuple[str, str]:
    root.list("_registry")
    return "ok", str(root.location)


def _conditional(root: Storage) -> tuple[str, str]:
    root.check_conditional_writes()
    return "ok", "create-if-absent is atomic"


def _clock(root: Storage) -> tuple[str, str]:
    skew = (datetime.now(UTC) - root.now()).total_seconds()
    detail = f"this machine's clock is {skew:+.1f} s from the storage's"
    if abs(skew) > CLOCK_WARN_S:
        return "warn", detail + " (Apiary judges ages on the storage clock; check NTP)"
    return "ok", detail


def _damage(root: Storage) -> tuple[str, str]:
    """Read the newest catalog state and each frame's checkpoint and newest ledger entry.

    A few requests per frame, whatever the length of its history: damage in the newest objects
    is what blocks reads and writes; older entries are read by time travel only.
    """
    registry = Registry(root, writer="doctor")
    damaged: list[str] = []
    try:
        registry.check_newest()
    except SerializationError as exc:
        damaged.append(str(exc))
    state = registry.state()  # falls back past a damaged newest version, to check the frames
    frames = 0
    for hive_name, hive in state.hives.items():
        for box_name, box in hive.boxes.items():
            for frame_name, definition in box.frames.items():
                frames += 1
                frame = Frame.open(
                    root, hive_name, box_name, frame_name, definition, writer="doctor"
                )
                try:
                    frame.ledger.check_newest()
                except SerializationError as exc:
                    damaged.append(str(exc))
    if damaged:
        return "fail", " | ".join(damaged)
    return "ok", f"catalog version {state.version} and {count(frames, 'frame')} read back intact"


def _memory(settings: Settings) -> Check:
    """The budget a node started here would use: detection plus the configured overrides."""
    try:
        profile = detect(overrides=settings.hardware_overrides())
        plan = budgets(profile, reserve_mb=settings.reserve_mb)
    except ConfigError as exc:
        return ("memory", "fail", str(exc))
    budget, limit = plan.memory_budget_bytes, profile.memory_limit_bytes
    detail = f"{human_bytes(budget)} budget over {count(profile.cores, 'core')}"
    if limit is not None and "memory_mb" not in profile.overridden:
        detail += f", capped by a cgroup limit of {human_bytes(limit)}"
    detail += f"; {human_bytes(plan.memory_per_bee_bytes)} per bee"
    if profile.overridden:
        detail += f" (settings: {', '.join(profile.overridden)})"
    if budget < 256 * 2**20:
        return ("memory", "warn", detail + ": under 256 MiB, expect small cells and spills")
    return ("memory", "ok", detail)


def _report(checks: list[Check], as_json: bool = False) -> None:
    failed = any(state == "fail" for _, state, _ in checks)
    if as_json:  # for scripts and Ansible: no table to parse
        rows = [{"check": c, "result": r, "detail": d} for c, r, d in checks]
        click.echo(json.dumps({"ok": not failed, "checks": rows}))
    else:
        styles = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        table = Table("check", "result", "detail", title="apiary doctor")
        for label, state, detail in checks:
            table.add_row(label, Text(state, style=styles[state]), Text(detail))
        console.print(table)
    if failed:
        sys.exit(1)
