"""DESCRIBE of the frame selected in the namespace tree, scrollable: a frame may have more
columns than the sidebar has lines."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

FIGURES = ("frame", "version", "cells", "rows", "bytes", "partition_by")  # describe_rows' head


class FrameDetails(VerticalScroll):
    DEFAULT_CSS = """
    FrameDetails { height: auto; max-height: 50%; scrollbar-size-vertical: 1; }
    FrameDetails > Static { width: 1fr; }
    """

    rows: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("select a frame (enter); i inserts its name", style="dim"))

    @property
    def body(self) -> Static:
        return self.query_one(Static)

    def on_mount(self) -> None:
        self.border_title = "Frame"

    def show(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows
        self.body.update(details(rows))
        self.scroll_home(animate=False)

    def show_error(self, message: str) -> None:
        self.body.update(Text(message, style="red"))


def details(rows: list[tuple[str, str]]) -> Group:
    """The frame's name on a line of its own, its figures, then one line per column.

    The name breaks only after a dot when the panel is narrower than it, never mid-word; a
    column's type goes on the next line when name and type do not fit side by side.
    """
    # By position, not by key: a column may well be called "rows" or "version".
    head, columns = rows[: len(FIGURES)], rows[len(FIGURES) :]
    name = next((value for key, value in head if key == "frame"), "")
    table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), show_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in head:
        if key != "frame":
            table.add_row(key, Text(value))
    lines = [DottedName(name), table, Text(f"{len(columns)} columns", style="dim")]
    for column, notes in columns:
        line = Text(column, style="bold")
        line.append(f" {notes}", style="dim")
        lines.append(line)
    return Group(*lines)


class DottedName:
    """``demo.sensors.readings`` in bold, broken after a dot when it does not fit the width."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        pieces = [part + "." for part in self.name.split(".")]
        pieces[-1] = pieces[-1][:-1]
        lines = [""]
        for piece in pieces:
            if lines[-1] and len(lines[-1]) + len(piece) > options.max_width:
                lines.append("")
            lines[-1] += piece
        yield Text("\n".join(lines), style="bold", overflow="fold")
