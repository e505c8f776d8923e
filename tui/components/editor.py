"""The SQL editor: a multi-line TextArea with SQL highlighting and history recall.

History is the file ``apiary shell`` uses too (``~/.apiary/sql_history``): ctrl+up walks back,
ctrl+down forward; walking past the newest entry brings back what was being typed.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import TextArea

from apiary.sql import history


class SqlEditor(TextArea):
    BINDINGS = [
        Binding("ctrl+up", "history(-1)", "Older", show=True),
        Binding("ctrl+down", "history(1)", "Newer", show=True),
        Binding("ctrl+l", "clear", "Clear", show=True),
    ]

    def __init__(self, text: str = "", **kwargs: object) -> None:
        super().__init__(
            text,
            language="sql",
            soft_wrap=True,
            tab_behavior="indent",
            show_line_numbers=False,
            **kwargs,  # type: ignore[arg-type]
        )
        self.statements: list[str] = history.load()
        self._position = len(self.statements)  # len(history) = the draft being typed
        self._draft = text

    def on_mount(self) -> None:
        self.border_title = "SQL"

    def remember(self, statement: str) -> None:
        line = history.remember(statement)
        if line is not None and (not self.statements or self.statements[-1] != line):
            self.statements.append(line)
        self._position = len(self.statements)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if self._position == len(self.statements):
            self._draft = self.text
        position = min(max(self._position + step, 0), len(self.statements))
        if position == self._position:
            return
        self._position = position
        self.text = self.statements[position] if position < len(self.statements) else self._draft
        self.move_cursor(self.document.end)

    def action_clear(self) -> None:
        """Empty the editor; statements already run stay in the history (ctrl+up)."""
        self.text = ""
        self._position = len(self.statements)
        self._draft = ""

    def insert_name(self, name: str) -> None:
        """Insert ``name`` at the cursor, apart from the word before it ("FROM" + name)."""
        row, column = self.cursor_location
        before = self.document.get_line(row)[:column]
        gap = " " if before and not before[-1].isspace() and before[-1] not in "(,." else ""
        self.insert(gap + name)
        self.focus()
