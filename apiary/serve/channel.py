"""A bounded hand-off of one query's batches from the bee that runs it to the client's stream.

The bee puts, the server's stream for the client takes. At most ``depth`` batches wait in
between, so a slow or stalled client holds the query back instead of filling memory, and a
client that goes away makes the bee's next put fail, which ends the query and frees the bee.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

from apiary.errors import QueryCancelledError

POLL = 0.05  # seconds between looks at the client and the bee's deadline while waiting
_END = object()


class BatchChannel:
    def __init__(self, depth: int = 2) -> None:
        self._items: queue.Queue[object] = queue.Queue(depth)
        self.schema: pa.Schema | None = None
        self.error: BaseException | None = None
        self.started = threading.Event()  # the schema is known, or the query failed first
        self.gone = threading.Event()  # the reader stopped reading

    # -- the bee's side ----------------------------------------------------------------------

    def start(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.started.set()

    def put(self, batch: pa.RecordBatch, check: Callable[[], None]) -> None:
        while True:
            if self.gone.is_set():
                raise QueryCancelledError("the client stopped reading the result")
            check()  # the bee's deadline and cancel
            try:
                self._items.put(batch, timeout=POLL)
                return
            except queue.Full:
                continue

    def finish(self, error: BaseException | None = None) -> None:
        """The query ended (with ``error`` if it failed); the reader sees the end next."""
        self.error = error
        self.started.set()
        while not self.gone.is_set():
            try:
                self._items.put(_END, timeout=POLL)
                return
            except queue.Full:
                continue

    # -- the reader's side -------------------------------------------------------------------

    def batches(self, alive: Callable[[], bool]) -> Iterator[pa.RecordBatch]:
        """The batches as they come; stops with QueryCancelledError once ``alive()`` is False."""
        try:
            while True:
                try:
                    item = self._items.get(timeout=POLL)
                except queue.Empty:
                    if not alive():
                        raise QueryCancelledError("the client went away") from None
                    if self.gone.is_set():  # the server stops the query (it is shutting down)
                        raise QueryCancelledError("the query was stopped") from None
                    continue
                if item is _END:
                    if self.error is not None:
                        raise self.error
                    return
                assert isinstance(item, pa.RecordBatch)
                yield item
        finally:
            self.gone.set()
