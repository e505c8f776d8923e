"""The ``apiary`` command line.

Subcommands are imported only when they run: ``apiary --version`` or ``apiary node`` on a Pi
should not pay for loading DataFusion's SQL shell, the benchmarks or the terminal UI.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from apiary.version import __version__

# name -> "module:attribute" of the click command
COMMANDS: dict[str, str] = {
    "demo": "apiary.cli.demo:demo",
    "sql": "apiary.cli.sql:sql",
    "shell": "apiary.cli.sql:shell",
    "node": "apiary.cli.node:node",
    "status": "apiary.cli.node:status",
    "swarm": "apiary.cli.node:swarm",
    "doctor": "apiary.cli.doctor:doctor",
    "hardware": "hardware.cli:hardware",
    "vacuum": "apiary.cli.frames:vacuum_cmd",
    "compact": "apiary.cli.frames:compact_cmd",
    "history": "apiary.cli.frames:history_cmd",
    "upgrade": "apiary.cli.frames:upgrade_cmd",
    "load": "apiary.cli.load:load",
    "bench": "apiary.cli.bench:bench",
    "tui": "apiary.cli.tui:tui",
    "_sealed": "apiary.cli.sealed:sealed",  # hidden: a bee's killable query process
}


class LazyGroup(click.Group):
    """A group whose commands are named up front and imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module_name, attr = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="apiary")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Apiary: a lakehouse for small computers.

    Data, catalog and coordination live in one storage root: a local directory
    (default ~/.apiary/data/<name>) or an S3 / MinIO bucket.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main() -> None:
    import multiprocessing

    from apiary.cli.common import fail_cleanly

    multiprocessing.freeze_support()  # the frozen binary's spawned children (bench write)
    with fail_cleanly():
        cli(standalone_mode=True)
