"""The swarm panel: every node with a heartbeat on the root, sortable, with the selected node's
details underneath."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from tui.data import (
    BAND_STYLE,
    SORT_KEYS,
    STATE_STYLE,
    NodeRow,
    bar,
    duration,
    human_bytes,
    share,
    sort_nodes,
)

COLUMNS = (  # (sort key, header)
    ("node", "node"),
    ("state", "state"),
    ("busy", "bees b/i"),
    ("memory", "memory"),
    ("temp", "temp"),
    ("cells", "cells"),
    ("age", "beat"),
)


class SwarmPanel(Vertical):
    DEFAULT_CSS = """
    SwarmPanel > DataTable { height: 1fr; }
    SwarmPanel > #swarm-detail { height: 2; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [Binding("s", "cycle_sort", "Sort")]

    class NodeSelected(Message):
        """The cursor moved to a node: the app shows its bees and colony when observing."""

        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sort_key = "state"  # alive first, like htop's busiest-first
        self.nodes: tuple[NodeRow, ...] = ()
        self.selected: str | None = None
        self._filling = False

    def compose(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(cursor_type="row", zebra_stripes=False)
        for key, header in COLUMNS:
            table.add_column(header, key=key)
        yield table
        yield Static(id="swarm-detail")

    def on_mount(self) -> None:
        self.border_title = "Swarm"

    def show(self, nodes: tuple[NodeRow, ...], selected: str | None) -> None:
        self.nodes = nodes
        if selected is not None:
            self.selected = selected
        counts = {s: sum(n.state == s for n in nodes) for s in STATE_STYLE}
        self.border_title = "Swarm · " + " ".join(f"{v} {k}" for k, v in counts.items())
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        ordered = sort_nodes(self.nodes, self.sort_key)
        self._filling = True  # cursor moves while refilling are not the user's choice
        try:
            table.clear()
            for node in ordered:
                table.add_row(*node_cells(node), key=node.node_id)
            ids = [n.node_id for n in ordered]
            if self.selected in ids:
                table.move_cursor(row=ids.index(self.selected), animate=False)
        finally:
            self._filling = False
        self.border_subtitle = f"sorted by {self.sort_key} (s)"
        self._detail()

    def _detail(self) -> None:
        node = next((n for n in self.nodes if n.node_id == self.selected), None)
        self.query_one("#swarm-detail", Static).update(
            detail_text(node) if node else Text("no nodes have a heartbeat on this root yet")
        )

    def action_cycle_sort(self) -> None:
        keys = list(SORT_KEYS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self._fill()

    @on(DataTable.HeaderSelected)
    def _sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_key = str(event.column_key.value)
        self._fill()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        table = self.query_one(DataTable)
        if self._filling or not table.row_count:
            return
        # The cursor's row now, not the event's: a refill queues stale highlights of row 0.
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None and key != self.selected:
            self.selected = key
            self._detail()
            self.post_message(self.NodeSelected(self.selected))


def node_cells(node: NodeRow) -> tuple[Text | str, ...]:
    used = share(node.memory_used, node.memory_budget)
    state = Text(node.state, style=STATE_STYLE.get(node.state, ""))
    if node.node_state != "running":
        state.append(f" {node.node_state}", style="magenta")
    return (
        Text(node.node_id, style="bold"),
        state,
        f"{node.bees_busy}/{node.bees_idle}",
        Text(bar(used, 6), style="yellow" if used > 0.8 else "green"),
        Text(f"{node.temperature:.2f} {node.band}", style=BAND_STYLE.get(node.band, "")),
        str(node.cached_cells),
        duration(node.age_s),
    )


def detail_text(node: NodeRow) -> Text:
    text = Text(f"{node.node_id}", style="bold")
    text.append(
        f"  v{node.version or '?'}  {node.cores} cores  {human_bytes(node.memory_budget)}  "
        f"cache {node.cached_cells} cells / {human_bytes(node.cache_bytes)}  "
        f"beats {node.beats}"
    )
    sees = ", ".join(f"{k} {v}" for k, v in sorted(node.sees.items())) or "nobody yet"
    text.append(f"\nstarted {node.started_at[:19] or '?'}  sees: {sees}", style="dim")
    return text
