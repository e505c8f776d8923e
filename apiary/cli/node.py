"""``apiary node`` (the daemon systemd starts), ``apiary status`` and ``apiary swarm``."""

from __future__ import annotations

import faulthandler
import logging
import shlex
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from apiary.cli.common import console, open_apiary, storage_options
from apiary.config import Settings
from apiary.errors import ApiaryError, ConfigError
from apiary.sdk import Apiary
from apiary.units import human_bytes

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
@click.option(
    "--serve/--no-serve",
    default=None,
    help="Run the Arrow Flight SQL server (setting serve; default off).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where Flight SQL listens (setting serve_listen; default 127.0.0.1:50051).",
)
@click.option(
    "--metrics-listen",
    metavar="HOST:PORT",
    help="Serve Prometheus /metrics here (setting metrics_listen; default off).",
)
def node(
    storage: str | None,
    name: str,
    node_id: str | None,
    config_file: Path | None,
    serve: bool | None,
    listen: str | None,
    metrics_listen: str | None,
) -> None:
    """Run a node in the foreground until SIGTERM or Ctrl-C (what systemd starts).

    The node joins the swarm on the storage root: it writes a heartbeat every few
    seconds, keeps a world view of the other nodes, runs the tasks of distributed
    queries assigned to it, and on a clean stop removes its heartbeat so the
    others see it leave rather than die.

    With --serve it also answers SQL from Flight SQL clients (ADBC, JDBC, DBeaver,
    Grafana) in its bees, and with --metrics-listen it serves Prometheus /metrics.
    """
    import os

    if config_file is not None:
        os.environ["APIARY_CONFIG"] = str(config_file)
    if not logging.getLogger().handlers or logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # `kill -USR1 <pid>` writes every thread's stack to stderr (the journal): what a node that
    # seems stuck is waiting on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    ap = Apiary(name, storage, node_id=node_id).start()  # heartbeat and worker loop running
    worker = ap.worker
    assert worker is not None
    flags = {"serve": serve, "serve_listen": listen, "metrics_listen": metrics_listen}
    settings = ap.settings.model_copy(update={k: v for k, v in flags.items() if v is not None})
    try:
        endpoints = _start_endpoints(ap, settings)
    except ApiaryError:
        ap.shutdown()
        raise
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
        stuck = [close() is False for close in endpoints]
        ap.shutdown()
    log.info("node %s stopped cleanly after %d task(s)", ap.node_id, worker.tasks_run)
    if any(stuck):
        # gRPC would hold the interpreter's exit for a client that stopped reading: the node
        # has left the swarm and released its bees, so end the process here.
        logging.shutdown()
        os._exit(0)


def _start_endpoints(ap: Apiary, settings: Settings) -> list[Callable[[], object]]:
    """Start /metrics and Flight SQL as the settings ask; what stops each (False: stuck)."""
    from apiary.serve.node import split_listen, start_flight

    closers: list[Callable[[], object]] = []
    observer = None
    try:
        if settings.metrics_listen:
            from apiary.serve.metrics import MetricsEndpoint

            host, port = split_listen(settings.metrics_listen, "metrics_listen")
            try:
                metrics = MetricsEndpoint(ap, host, port)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve metrics on {settings.metrics_listen}: {exc}"
                ) from None
            closers.append(metrics.close)
            observer = metrics.queries
            log.info("Prometheus metrics on http://%s:%d/metrics", host, metrics.port)
        if settings.serve:
            server = start_flight(ap, settings, observer)
            closers.insert(0, server.close)
    except BaseException:
        for close in closers:
            close()
        raise
    return closers


@click.command()
@storage_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def swarm(storage: str | None, name: str, as_json: bool) -> None:
    """List every node on the storage root: alive, suspect or dead, with its load."""
    with open_apiary(name, storage, create=False) as ap:
        status = ap.swarm_status()
        where = ap.storage.location
    if as_json:
        import json

        click.echo(json.dumps(status, indent=2))
        return
    if not status["nodes"]:
        again = shlex.quote(where.uri)
        # Text, not markup: a path or URI is printed as it is.
        console.print(
            Text(f"no nodes on {where}; start one with `apiary node --storage {again}`"),
            soft_wrap=True,  # one line whatever the width: the command can be copied whole
        )
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
            human_bytes(n["memory_budget"]),
            f"{n['temperature']:.2f} {n['band']}",
            str(len(n["cached_cells"])),
            Text(n["version"]),
        )
    return table


@click.command()
@storage_options
def status(storage: str | None, name: str) -> None:
    """This machine's view: storage, resources, temperature, and the swarm in short."""
    with open_apiary(name, storage, create=False) as ap:
        mine = ap.status()
        swarm_status = ap.swarm_status()
        where = ap.storage.location  # the root itself, whatever status() names its kind
    console.print(f"{'node_id':>14}: {mine['node_id']}", highlight=False)
    console.print(f"{'storage':>14}: {where}", highlight=False, markup=False)
    for key in ("version", "cores"):
        console.print(f"{key:>14}: {mine[key]}", highlight=False)
    console.print(f"{'memory budget':>14}: {human_bytes(mine['memory_budget'])}")
    console.print(f"{'temperature':>14}: {mine['temperature']:.2f} ({mine['band']})")
    console.print(
        f"{'swarm':>14}: {swarm_status['alive']} alive, {swarm_status['suspect']} suspect, "
        f"{swarm_status['dead']} dead"
    )
