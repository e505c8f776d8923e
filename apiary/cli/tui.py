"""``apiary tui``: the terminal UI. Textual is imported only when this command runs."""

from __future__ import annotations

import sys

import click

from apiary.cli.common import storage_options


@click.command()
@storage_options
@click.option("--node-id", envvar="APIARY_NODE_ID", help="This node's name when attached.")
@click.option(
    "--observe",
    is_flag=True,
    help="Watch without joining the swarm: no heartbeat of its own; shows the selected "
    "node's bees and colony.",
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes of the panels.",
)
def tui(storage: str | None, name: str, node_id: str | None, observe: bool, refresh: float) -> None:
    """Terminal UI: bees, swarm and colony temperature, namespace tree and SQL editor.

    Attached (the default) it joins the swarm as a node and runs SQL in its own bees;
    with --observe it only reads the heartbeats of the nodes on the storage root.
    F1 lists the keys.
    """
    from tui.app import ApiaryApp
    from tui.data import Source

    source = Source(name, storage, observe=observe, node_id=node_id)
    app = ApiaryApp(source, refresh=refresh)
    app.run()
    # Textual catches an exception inside the app, prints it and returns: its return code is
    # the only sign of a crash, and a service manager or script must see it.
    if app.return_code:
        sys.exit(app.return_code)
