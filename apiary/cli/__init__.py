"""The ``apiary`` command line."""

from __future__ import annotations

import logging
import sys

import click

from apiary import __version__
from apiary.cli.bench import bench
from apiary.cli.common import fail_cleanly
from apiary.cli.demo import demo
from apiary.cli.doctor import doctor
from apiary.cli.frames import compact_cmd, history_cmd, vacuum_cmd
from apiary.cli.node import node, status, swarm
from apiary.cli.sql import shell, sql
from hardware.cli import hardware


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(demo)
cli.add_command(sql)
cli.add_command(shell)
cli.add_command(node)
cli.add_command(status)
cli.add_command(swarm)
cli.add_command(doctor)
cli.add_command(hardware)
cli.add_command(vacuum_cmd)
cli.add_command(compact_cmd)
cli.add_command(history_cmd)
cli.add_command(bench)


def main() -> None:
    with fail_cleanly():
        cli(standalone_mode=True)
