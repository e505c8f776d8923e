"""The help screen: every key, in one place."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("F2 / F3", "monitor (bees, swarm, colony) / SQL (tree, editor, results)"),
    ("tab, shift+tab", "next / previous panel (the mouse works too)"),
    ("F5 or ctrl+j", "run the statement in the editor (or the selected text)"),
    ("esc", "cancel the running query"),
    ("ctrl+up / down", "older / newer statement (history shared with apiary shell)"),
    ("ctrl+l", "clear the editor (statements already run stay in the history)"),
    ("[ / ]", "previous / next page of results"),
    ("enter on a frame", "DESCRIBE it: schema, cells, rows, bytes, version"),
    ("i in the tree", "insert the name under the cursor into the editor"),
    ("s in the swarm", "sort by the next column (or click a header)"),
    ("ctrl+r", "refresh now (panels refresh by themselves)"),
    ("F1 or ?", "this help"),
    ("ctrl+q", "quit"),
]
NOTES = (
    "Attached, the bees are this node's and run your SQL; with --observe nothing is written "
    "and the bees and colony are those of the node selected in the swarm. Nodes are alive, "
    "suspect or dead by heartbeat age on the storage's clock. Colony bands: cold < 0.3 ≤ "
    "ideal < 0.7 ≤ warm ≤ 0.85 < hot ≤ 0.95 < critical."
)


def help_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(ratio=1)
    for key, what in KEYS:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,f1,question_mark", "app.pop_screen", "Close", show=True),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
        border-title-color: $accent; border-title-style: bold;
    }
    #help-notes { margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Apiary · keys"
            scroll.border_subtitle = "esc closes"
            yield Static(help_table())
            yield Static(Text(NOTES, style="dim"), id="help-notes")
