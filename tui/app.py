"""The Textual app: lays out the panels, refreshes them in background workers, runs SQL.

The app only routes: panels draw what :mod:`tui.data` gathered, and every call that touches
storage or DataFusion runs in a thread worker, so typing never waits on a bucket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, TabbedContent, TabPane

from apiary.errors import QueryCancelledError
from tui.components.bees import BeesPanel
from tui.components.colony import ColonyPanel
from tui.components.editor import SqlEditor
from tui.components.frame_details import FrameDetails
from tui.components.help import HelpScreen
from tui.components.namespace import NamespaceTree
from tui.components.results import ResultsView
from tui.components.swarm import SwarmPanel
from tui.components.unreachable import Unreachable
from tui.data import QueryResult, Snapshot, Source, reason

STYLES = Path(__file__).with_name("styles")


class ApiaryApp(App[None]):
    TITLE = "Apiary"
    CSS_PATH = [STYLES / "app.tcss"]
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("f2", "tab('monitor')", "Monitor", priority=True),
        Binding("f3", "tab('sql')", "SQL", priority=True),
        Binding("f5,ctrl+j", "run_query", "Run", priority=True),
        Binding("escape", "cancel_query", "Cancel query", priority=True),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    def __init__(
        self,
        source: Source,
        *,
        refresh: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.refresh_every = refresh
        self._clock = clock
        self.snapshot: Snapshot | None = None
        self.refreshes = 0  # snapshots applied: tests wait on this instead of sleeping
        self.selected: str | None = None
        self.result: QueryResult | None = None
        self.error: str | None = None
        self._cancel: threading.Event | None = None  # set while a query runs
        self._gathering = False

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="monitor"):
            with TabPane("Monitor", id="monitor"):
                yield Unreachable(id="unreachable")
                with Vertical(id="monitor-panels"):
                    yield SwarmPanel(id="swarm", classes="panel")
                    with Horizontal(id="lower"):
                        yield BeesPanel(id="bees", classes="panel")
                        yield ColonyPanel(id="colony", classes="panel")
            with TabPane("SQL", id="sql"), Horizontal():
                with Vertical(id="sidebar"):
                    yield NamespaceTree(id="tree", classes="panel")
                    yield FrameDetails(id="frame-details", classes="panel")
                with Vertical(id="editor-results"):
                    yield SqlEditor(id="editor", classes="panel")
                    yield ResultsView(id="results", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.source.mode} · {self.source.label}"
        self.action_refresh()
        self.set_interval(self.refresh_every, self.action_refresh)

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self.source.close()

    # -- live refresh --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if not self._gathering:  # a slow root must not pile up refreshes behind each other
            self._gathering = True
            self._gather(self.selected)

    @work(thread=True, group="refresh", exit_on_error=False)
    def _gather(self, selected: str | None) -> None:
        try:
            snapshot = self.source.snapshot(selected)
        finally:
            self._gathering = False
        self.call_from_thread(self._apply, snapshot)

    def _apply(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.query_one("#monitor", TabPane).set_class(not snapshot.reachable, "-unreachable")
        stamp = (self._clock() if self._clock else snapshot.taken_at).strftime("%H:%M:%S")
        if snapshot.error is not None:
            self.query_one(Unreachable).show(snapshot.storage, snapshot.error, self.refresh_every)
            self.sub_title = f"{snapshot.mode} · {snapshot.storage} · UNREACHABLE {stamp}"
        else:
            self.sub_title = f"{snapshot.mode} · {snapshot.storage} · {stamp}"
            self.query_one(SwarmPanel).show(snapshot.nodes, snapshot.selected)
            self.query_one(BeesPanel).show(snapshot.bees, snapshot.selected)
            self.query_one(ColonyPanel).show(snapshot.colony)
            self.query_one(NamespaceTree).show(snapshot.namespace)
        self.refreshes += 1

    @on(SwarmPanel.NodeSelected)
    def _node_selected(self, event: SwarmPanel.NodeSelected) -> None:
        self.selected = event.node_id
        if self.source.observe:  # the bees and colony shown follow the selection
            self.action_refresh()

    # -- namespace ---------------------------------------------------------------------------

    @on(NamespaceTree.FrameSelected)
    def _frame_selected(self, event: NamespaceTree.FrameSelected) -> None:
        self._describe(event.hive, event.box, event.frame)

    @work(thread=True, group="describe", exclusive=True, exit_on_error=False)
    def _describe(self, hive: str, box: str, frame: str) -> None:
        details = self.query_one(FrameDetails)
        try:
            rows = self.source.describe(hive, box, frame)
        except Exception as exc:
            self.call_from_thread(details.show_error, reason(exc))
        else:
            self.call_from_thread(details.show, rows)

    @on(NamespaceTree.InsertName)
    def _insert_name(self, event: NamespaceTree.InsertName) -> None:
        self.query_one(SqlEditor).insert_name(event.name)

    # -- SQL -----------------------------------------------------------------------------------

    def action_run_query(self) -> None:
        editor = self.query_one(SqlEditor)
        query = editor.selected_text or editor.text
        if not query.strip() or self._cancel is not None:
            return
        self.query_one(TabbedContent).active = "sql"
        editor.remember(query)
        self._cancel = threading.Event()
        self.query_one(ResultsView).show_running(query)
        self._run(query, self._cancel)

    @work(thread=True, group="sql", exit_on_error=False)
    def _run(self, query: str, cancel: threading.Event) -> None:
        try:
            result = self.source.run_sql(query, cancel)
        except QueryCancelledError:
            self.call_from_thread(self._failed, "query cancelled (esc); the bee is free again")
        except Exception as exc:  # every error stays inside the app, readable
            self.call_from_thread(self._failed, reason(exc))
        else:
            self.call_from_thread(self._succeeded, result)

    def _succeeded(self, result: QueryResult) -> None:
        self._cancel = None
        self.result, self.error = result, None
        self.query_one(ResultsView).show_result(result)

    def _failed(self, message: str) -> None:
        self._cancel = None
        self.error = message
        self.query_one(ResultsView).show_error(message)

    def action_cancel_query(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_query":
            return self._cancel is not None  # the footer shows esc only while a query runs
        return True

    # -- navigation ----------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = SqlEditor if tab == "sql" else SwarmPanel
        self.query_one(target).focus() if tab == "sql" else self.query_one(
            "#swarm DataTable"
        ).focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
