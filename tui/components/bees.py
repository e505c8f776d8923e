"""The bees panel: each bee's state, memory against its budget, current task and its age.

One line per bee, and under a busy bee the task it runs: the panel is half of an 80-column
screen, too narrow for a task column.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.data import BEE_STYLE, BeeRow, bar, duration, human_bytes, share

BAR = 8


class BeesPanel(Static):
    """Redrawn on every refresh; bees are few (one per core), so this is cheap."""

    def on_mount(self) -> None:
        self.border_title = "Bees"

    def show(self, bees: tuple[BeeRow, ...], whose: str | None) -> None:
        self.border_title = f"Bees · {whose}" if whose else "Bees"
        width = self.content_region.width or 36
        self.update(bees_text(bees, width) if bees else Text("no bees reported", style="dim"))


def bees_text(bees: tuple[BeeRow, ...], width: int = 36) -> Text:
    text = Text()
    for bee in bees:
        used = share(bee.memory_used, bee.memory_budget)
        if text:
            text.append("\n")
        text.append(f"{bee.id:>2} ")
        text.append(f"{bee.state:<8}", style=BEE_STYLE.get(bee.state, ""))
        text.append(bar(used, BAR), style="yellow" if used > 0.8 else "green")
        text.append(f" {human_bytes(bee.memory_used) if bee.task else '':>9}", style="dim")
        text.append(f" {duration(bee.elapsed_s) if bee.task else '':>5}")
        if bee.task:
            task = " ".join(bee.task.split())
            room = max(width - 5, 8)
            text.append(f"\n   └ {task if len(task) <= room else task[: room - 1] + '…'}")
    return text
