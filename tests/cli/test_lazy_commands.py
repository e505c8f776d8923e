"""Subcommands load on demand, so ``apiary --version`` and ``apiary node`` start fast."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from apiary.cli import COMMANDS, cli
from apiary.version import __version__


def loaded_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_version_loads_no_engine() -> None:
    modules = loaded_after(
        "from click.testing import CliRunner\n"
        "from apiary.cli import cli\n"
        "CliRunner().invoke(cli, ['--version'])"
    )
    heavy = {"datafusion", "pyarrow", "obstore", "rich", "apiary.sdk"} & modules
    assert not heavy, f"apiary --version imported {sorted(heavy)}"


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"apiary, version {__version__}"


def test_every_lazy_command_resolves_to_its_name() -> None:
    for name in COMMANDS:
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name, name


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        if name.startswith("_"):  # internal (a bee's sealed child): hidden from help
            assert name not in result.output
            continue
        assert f"  {name} " in result.output, name
