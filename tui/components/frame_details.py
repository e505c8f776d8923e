"""DESCRIBE of the frame selected in the namespace tree."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static


class FrameDetails(Static):
    DEFAULT_CSS = "FrameDetails { height: auto; max-height: 12; }"

    rows: list[tuple[str, str]] = []

    def on_mount(self) -> None:
        self.border_title = "Frame"
        self.update(Text("select a frame (enter); i inserts its name", style="dim"))

    def show(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows
        table = Table(box=None, show_header=False, padding=(0, 1), show_edge=False)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(key, Text(value))
        self.update(table)

    def show_error(self, message: str) -> None:
        self.update(Text(message, style="red"))
