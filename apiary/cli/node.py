"""``apiary node`` (the daemon systemd starts), ``apiary status`` and ``apiary swarm``."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from apiary.cli.common import console, storage_options
from apiary.sdk import Apiary
from apiary.swarm.worker import Worker

log = logging.getLogger("apiary.node")

_STATE_STYLE = {"alive": "green", "suspect": "yellow", "dead": "red"}


@click.command()
@storage_options
@click.option("--node-id", envvar="APIARY_NODE_ID", help="This node's name (default: host name).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default $APIARY_CONFIG, /etc/apiary/apiary.toml).",
)
def node(storage: str | None, name: str, node_id: str | None, config_file: Path | None) -> None:
    """Run a node in the foreground until SIGTERM or Ctrl-C (what systemd starts).

    The node joins the swarm on the storage root: it writes a heartbeat every few
    seconds, keeps a world view of the other nodes, runs the tasks of distributed
    queries assigned to it, and on a clean stop removes its heartbeat so the
    others see it leave rather than die.
    """
    import os

    if config_file is not None:
        os.environ["APIARY_CONFIG"] = str(config_file)
    if not logging.getLogger().handlers or logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ap = Apiary(name, storage, node_id=node_id, join_swarm=True).start()
    worker = Worker(
        ap.storage,
        ap.node_id,
        credentials=ap.credentials,
        poll_interval=ap.settings.worker_poll_interval,
        cache=ap.cache,
        pool=ap.pool,
    )
    worker.start()
    try:
        swarm = ap.swarm_status()
        log.info(
            "node %s joined the swarm on %s: %d node(s) alive",
            ap.node_id,
            ap.storage.location,
            swarm["alive"],
        )
        stop.wait()
        log.info("node %s stopping", ap.node_id)
    finally:
        worker.stop()
        ap.shutdown()
    log.info("node %s stopped cleanly after %d task(s)", ap.node_id, worker.tasks_run)


@click.command()
@storage_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def swarm(storage: str | None, name: str, as_json: bool) -> None:
    """List every node on the storage root: alive, suspect or dead, with its load."""
    with Apiary(name, storage) as ap:
        status = ap.swarm_status()
    if as_json:
        import json

        click.echo(json.dumps(status, indent=2))
        return
    console.print(_swarm_table(status))


def _swarm_table(status: dict[str, Any]) -> Table:
    table = Table(
        "node",
        "state",
        "heartbeat age",
        "bees busy/idle",
        "cores",
        "memory",
        "temperature",
        "cached cells",
        "version",
        title=f"{status['alive']} alive, {status['suspect']} suspect, {status['dead']} dead",
    )
    for n in status["nodes"]:
        table.add_row(
            Text(n["node_id"]),
            Text(n["state"], style=_STATE_STYLE[n["state"]]),
            f"{n['age_s']:.1f} s",
            f"{n['bees_busy']}/{n['bees_idle']}",
            str(n["cores"]),
            f"{n['memory_budget'] / 2**30:.1f} GiB",
            f"{n['temperature']:.2f} {n['band']}",
            str(len(n["cached_cells"])),
            Text(n["version"]),
        )
    return table


@click.command()
@storage_options
def status(storage: str | None, name: str) -> None:
    """This machine's view: storage, resources, temperature, and the swarm in short."""
    with Apiary(name, storage) as ap:
        mine = ap.status()
        swarm_status = ap.swarm_status()
    for key in ("node_id", "storage", "version", "cores"):
        console.print(f"{key:>14}: {mine[key]}", highlight=False)
    console.print(f"{'memory budget':>14}: {mine['memory_budget'] / 2**30:.1f} GiB")
    console.print(f"{'temperature':>14}: {mine['temperature']:.2f} ({mine['band']})")
    console.print(
        f"{'swarm':>14}: {swarm_status['alive']} alive, {swarm_status['suspect']} suspect, "
        f"{swarm_status['dead']} dead"
    )
