"""The README stays true: its quick start matches CI, and every command is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click

from apiary.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert "apiary demo" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci.splitlines()


def top_commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def all_commands() -> list[str]:
    names = []
    for name, command in top_commands().items():
        sub = getattr(command, "commands", None)
        names += [f"{name} {s}" for s in sub] if sub else [name]
    return names


def test_every_command_is_documented_in_the_readme() -> None:
    missing = [name for name in all_commands() if f"apiary {name}" not in README]
    assert not missing, f"document these commands in README.md: {missing}"


def test_every_command_has_help_text() -> None:
    for name, command in top_commands().items():
        assert command.help or command.short_help, f"apiary {name} has no help text"


def test_ci_runs_every_marker_the_default_run_leaves_out() -> None:
    """A marker added to addopts' exclusions without a CI step would silently never run."""
    addopts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "addopts"
    ]
    excluded = set(re.findall(r"not (\w+)", addopts))
    assert excluded, addopts
    ci = (REPO / ".ci" / "run").read_text()
    steps = re.findall(r'^python3 -m pytest -m "([^"]+)"$', ci, flags=re.MULTILINE)
    assert steps, "no second pytest step in .ci/run"
    assert set(re.findall(r"\w+", steps[-1])) - {"or"} == excluded
