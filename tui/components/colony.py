"""The colony panel: temperature as a gauge with its band, recent history, regulation and the
tasks the colony abandoned with each attempt's error."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.data import BAND_STYLE, ColonyView, bar, spark

GAUGE = 20
HISTORY_WIDTH = 26


class ColonyPanel(Vertical):
    DEFAULT_CSS = """
    ColonyPanel { height: 1fr; }
    ColonyPanel > Static { padding: 0 1; }
    ColonyPanel > #colony-notes { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="colony-gauge")
        yield Static(id="colony-history")
        yield Static(id="colony-notes")

    def on_mount(self) -> None:
        self.border_title = "Colony"

    def show(self, colony: ColonyView | None) -> None:
        gauge = self.query_one("#colony-gauge", Static)
        notes = self.query_one("#colony-notes", Static)
        if colony is None:
            gauge.update(Text("no colony reported", style="dim"))
            notes.update("")
            self.query_one("#colony-history", Static).update("")
            return
        self.border_title = f"Colony · {colony.source}" if colony.source else "Colony"
        gauge.update(gauge_text(colony.temperature, colony.band))
        history = colony.history or (colony.temperature,)
        line = Text(spark(history, HISTORY_WIDTH), style=BAND_STYLE.get(colony.band, ""))
        line.append(f" last {len(history)}", style="dim")
        self.query_one("#colony-history", Static).update(line)
        notes.update(notes_text(colony))


def gauge_text(temperature: float, band: str) -> Text:
    style = BAND_STYLE.get(band, "")
    text = Text(bar(temperature, GAUGE), style=style)
    text.append(f" {temperature:.2f} ", style="bold")
    text.append(band.upper(), style=f"reverse {style}")
    return text


def notes_text(colony: ColonyView) -> Text:
    text = Text("regulation: ", style="dim")
    text.append(colony.regulation, style="bold" if colony.regulation != "normal" else "")
    if not colony.abandoned:
        text.append("\nno abandoned tasks", style="dim")
        return text
    text.append(f"\nabandoned tasks ({len(colony.abandoned)}):", style="bold red")
    for task in reversed(colony.abandoned):  # newest first
        text.append(f"\n• {task['task']}", style="red")
        for attempt in task.get("attempts", []):
            text.append(
                f"\n  #{attempt.get('attempt')} bee {attempt.get('bee')}: {attempt.get('error')}",
                style="dim",
            )
    return text
