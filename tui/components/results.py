"""Query results: a status line (rows, time, pruning) over a table shown one page at a time.

Only the rows of the current page become table rows, so a 1,000,000-row result costs the same
to show as a 500-row one; ``[`` and ``]`` page, and the Arrow table itself stays as it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.data import QueryResult, cell_text, duration, page_count

if TYPE_CHECKING:
    import pyarrow as pa

PAGE = 500


class ResultsView(Vertical):
    DEFAULT_CSS = """
    ResultsView > #results-status { height: auto; max-height: 4; padding: 0 1; }
    ResultsView > DataTable { height: 1fr; }
    ResultsView.-error > #results-status { color: $error; }
    """
    BINDINGS = [
        Binding("]", "page(1)", "Next page"),
        Binding("[", "page(-1)", "Prev page"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.result: QueryResult | None = None
        self.page = 0

    def compose(self) -> ComposeResult:
        yield Static(Text("F5 runs the statement in the editor", style="dim"), id="results-status")
        yield DataTable(cursor_type="cell", zebra_stripes=True)

    def on_mount(self) -> None:
        self.border_title = "Results"

    @property
    def table(self) -> DataTable[str]:
        return self.query_one(DataTable)

    @property
    def status(self) -> Static:
        return self.query_one("#results-status", Static)

    def show_running(self, query: str) -> None:
        self.remove_class("-error")
        one_line = " ".join(query.split())
        self.status.update(Text(f"running… (esc cancels)  {one_line[:200]}", style="italic"))

    def show_error(self, message: str) -> None:
        # Only the error: rows left from the previous query would read as this one's result.
        self.result = None
        self.page = 0
        self.table.clear(columns=True)
        self.add_class("-error")
        self.status.update(Text(message))
        self.border_subtitle = "error"

    def show_result(self, result: QueryResult) -> None:
        self.remove_class("-error")
        self.result = result
        self.page = 0
        table = self.table
        table.clear(columns=True)
        for name in result.table.column_names:
            table.add_column(name, key=name)
        self._fill()

    def action_page(self, step: int) -> None:
        if self.result is None:
            return
        pages = page_count(self.result.table.num_rows, PAGE)
        page = min(max(self.page + step, 0), pages - 1)
        if page != self.page:
            self.page = page
            self._fill()

    def _fill(self) -> None:
        assert self.result is not None
        arrow: pa.Table = self.result.table
        table = self.table
        table.clear()
        start = self.page * PAGE
        rows = arrow.slice(start, PAGE).to_pylist()
        table.add_rows([tuple(cell_text(v) for v in row.values()) for row in rows])
        table.move_cursor(row=0, column=0)
        self.status.update(status_text(self.result, self.page))
        pages = page_count(arrow.num_rows, PAGE)
        self.border_subtitle = f"page {self.page + 1}/{pages}" + (" ([ ])" if pages > 1 else "")


def status_text(result: QueryResult, page: int = 0) -> Text:
    rows = result.table.num_rows
    text = Text(f"{rows:,} row{'s' if rows != 1 else ''}", style="bold")
    seconds = result.seconds
    text.append(f" in {duration(seconds) if seconds >= 1 else f'{seconds * 1000:.0f} ms'}")
    if rows > PAGE:
        first = page * PAGE + 1
        text.append(f" · showing {first:,} to {min(rows, first + PAGE - 1):,}", style="dim")
    for line in result.pruning:
        text.append(f"\n{line}", style="dim")
    if result.distribution:
        text.append(f"\n{result.distribution}", style="dim")
    return text
