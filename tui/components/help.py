"""The help screen: every key, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# Apiary · keys

| key | what it does |
|---|---|
| **F2** / **F3** | monitor (bees, swarm, colony) / SQL (tree, editor, results) |
| **tab** / **shift+tab** | next / previous panel |
| **F5** or **ctrl+j** | run the statement in the editor |
| **esc** | cancel the running query |
| **ctrl+up** / **ctrl+down** | older / newer statement (history shared with `apiary shell`) |
| **[** / **]** | previous / next page of results |
| **enter** on a frame | DESCRIBE it |
| **i** on a tree node | insert its name into the editor |
| **s** in the swarm | sort by the next column (or click a header) |
| **ctrl+r** | refresh now |
| **F1** or **?** | this help |
| **ctrl+q** | quit |

Monitor panels refresh in the background; attached, the bees are this node's and run your
SQL. With `--observe` the TUI writes no heartbeat and shows the bees and colony of the
node selected in the swarm. Node states: alive, suspect, dead, by heartbeat age on the
storage's own clock. Colony bands: cold < 0.3 ≤ ideal < 0.7 ≤ warm ≤ 0.85 < hot ≤ 0.95 <
critical.

*esc, q or F1 closes this screen.*
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,f1,question_mark", "app.pop_screen", "Close", show=True),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
