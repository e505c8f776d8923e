"""The bees panel: each bee's state, memory against its budget, current task and its age."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tui.data import BEE_STYLE, BeeRow, bar, duration, human_bytes, share

BAR = 8


class BeesPanel(Static):
    """A table redrawn on every refresh; bees are few (one per core) so it is cheap."""

    DEFAULT_CSS = "BeesPanel { height: auto; }"

    def on_mount(self) -> None:
        self.border_title = "Bees"

    def show(self, bees: tuple[BeeRow, ...], whose: str | None) -> None:
        self.border_title = f"Bees · {whose}" if whose else "Bees"
        self.update(bees_table(bees) if bees else Text("no bees reported", style="dim"))


def bees_table(bees: tuple[BeeRow, ...]) -> Table:
    table = Table(box=None, padding=(0, 1), expand=True, show_edge=False)
    table.add_column("#", justify="right", width=2)
    table.add_column("state", width=8)
    table.add_column("memory", no_wrap=True, width=BAR + 9)
    table.add_column("time", justify="right", width=5)
    table.add_column("task", no_wrap=True, overflow="ellipsis", ratio=1)
    for bee in bees:
        used = share(bee.memory_used, bee.memory_budget)
        memory = Text(bar(used, BAR), style="yellow" if used > 0.8 else "green")
        memory.append(f" {human_bytes(bee.memory_used):>8}" if bee.task else "", style="dim")
        table.add_row(
            str(bee.id),
            Text(bee.state, style=BEE_STYLE.get(bee.state, "")),
            memory,
            duration(bee.elapsed_s) if bee.task else "",
            Text(bee.task or "", style="italic"),
        )
    return table
