"""An Arrow Flight SQL server in the node (``apiary node --serve``): SQL from any Flight SQL
client (ADBC, JDBC/DBeaver, Grafana), run in this node's bees like ``Apiary.sql()``.

A statement's GetFlightInfo starts the query: it waits for a bee like any query (the pool's
queue; a critical node refuses it), and answers with the result's schema and a ticket as soon
as DataFusion has planned it. DoGet with the ticket streams the batches straight from the bee
through a small :class:`~apiary.serve.channel.BatchChannel`, so the server never holds a whole
result, a slow client slows its own query only, and a client that goes away frees its bee.
A ticket nobody collects ends at the bee's task timeout like any overdue query.

``USE`` applies to later statements on the same connection (one gRPC connection = one client).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from apiary.errors import ApiaryError, NodeBusyError, QueryCancelledError, TaskTimeoutError
from apiary.sdk import Apiary
from apiary.serve import metadata, protocol
from apiary.serve.auth import AcceptHandshake, Authenticator, AuthMiddlewareFactory, Secrets
from apiary.serve.channel import BatchChannel

log = logging.getLogger("apiary.serve")

SESSIONS_KEPT = 1024  # connections whose USE is remembered
TICKETS_KEPT = 1024  # started queries waiting for their DoGet
CLOSE_WAIT = 5.0  # seconds a stopping node waits for its Flight SQL calls to end


@dataclass(eq=False)
class _Started:
    """A query started by GetFlightInfo, waiting for (or streaming to) its DoGet."""

    channel: BatchChannel
    cancel: threading.Event
    started: float = field(default_factory=time.monotonic)


class QueryObserver:
    """What the server tells about each query (the Prometheus metrics listen here)."""

    def finished(
        self,
        seconds: float,
        error: BaseException | None,
        distribution: dict[str, Any] | None = None,
    ) -> None:
        pass


class ApiaryFlightServer(flight.FlightServerBase):
    def __init__(
        self,
        ap: Apiary,
        location: str,
        *,
        secrets: Secrets = Secrets(),  # noqa: B008 - frozen, immutable
        tls: tuple[bytes, bytes] | None = None,
        observer: QueryObserver | None = None,
    ) -> None:
        authenticator = Authenticator(secrets)
        super().__init__(
            location,
            auth_handler=AcceptHandshake() if secrets.required else None,
            tls_certificates=[tls] if tls else None,
            middleware={"auth": AuthMiddlewareFactory(authenticator)},
        )
        self.ap = ap
        self.observer = observer or QueryObserver()
        self._lock = threading.Lock()
        self._started: OrderedDict[bytes, _Started] = OrderedDict()
        self._uses: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._running: set[_Started] = set()  # every started query until its end

    def close(self, wait: float = CLOSE_WAIT) -> bool:
        """Stop every running query, then the server, waiting at most ``wait`` seconds.

        gRPC's shutdown waits for every call, and a client that stopped reading keeps its
        DoGet blocked in a write: give up on it after ``wait``. False then: gRPC still holds
        that call, and only the process's end frees it.
        """
        with self._lock:
            running = list(self._running)
        for started in running:
            started.channel.gone.set()
            started.cancel.set()
        stopping = threading.Thread(target=self.shutdown, name="flight-sql-stop", daemon=True)
        stopping.start()
        stopping.join(wait)
        if stopping.is_alive():
            log.warning(
                "Flight SQL: a client still holds a stream after %g s; stopping anyway", wait
            )
            return False
        return True

    # -- GetFlightInfo: start a query, or describe a catalog command --------------------------

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        command = _unpack(descriptor.command)
        kind = type(command).__name__
        if kind == "CommandStatementQuery":
            return self._start(context, descriptor, command.query)
        if kind == "CommandPreparedStatementQuery":
            sql = _prepared_sql(command.prepared_statement_handle)
            return self._start(context, descriptor, sql)
        table = self._metadata(command)
        endpoint = flight.FlightEndpoint(descriptor.command, [])
        return flight.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, -1)

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        command = _unpack(descriptor.command)
        if type(command).__name__ in ("CommandStatementQuery", "CommandPreparedStatementQuery"):
            info = self.get_flight_info(context, descriptor)  # runs until the schema is known
            self._forget(info.endpoints[0].ticket.ticket)
            return flight.SchemaResult(info.schema)
        return flight.SchemaResult(self._metadata(command).schema)

    def _start(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor, sql: str
    ) -> flight.FlightInfo:
        handle = uuid.uuid4().bytes
        started = _Started(BatchChannel(), threading.Event())
        peer = context.peer()
        with self._lock:
            hive, box = self._uses.get(peer, (None, None))
            self._running.add(started)
        session = self.ap.sql_session(hive, box)
        began = time.monotonic()

        def run() -> None:
            error: BaseException | None = None
            try:
                session.stream(sql, started.channel, started.cancel)
            except BaseException as exc:  # handed to the client's stream
                error = exc
            finally:
                if (session.hive, session.box) != (hive, box):  # a USE
                    self._remember(peer, session.hive, session.box)
                self.observer.finished(time.monotonic() - began, error, session.last.distribution)
                started.channel.finish(error)
                with self._lock:
                    self._running.discard(started)

        threading.Thread(target=run, name="flight-sql-query", daemon=True).start()
        while not started.channel.started.wait(0.05):
            if context.is_cancelled():
                started.cancel.set()
                raise flight.FlightCancelledError("the client cancelled the query")
        if started.channel.schema is None:  # failed before it had a schema
            raise _flight_error(started.channel.error or ApiaryError("the query failed"))
        with self._lock:
            self._started[handle] = started
            while len(self._started) > TICKETS_KEPT:
                _, dropped = self._started.popitem(last=False)
                dropped.channel.gone.set()
                dropped.cancel.set()
        ticket = protocol.pack(protocol.new("TicketStatementQuery", statement_handle=handle))
        endpoint = flight.FlightEndpoint(ticket, [])
        return flight.FlightInfo(started.channel.schema, descriptor, [endpoint], -1, -1)

    def _remember(self, peer: str, hive: str | None, box: str | None) -> None:
        with self._lock:
            self._uses[peer] = (hive, box)
            self._uses.move_to_end(peer)
            while len(self._uses) > SESSIONS_KEPT:
                self._uses.popitem(last=False)

    def _forget(self, ticket: bytes) -> None:
        message = _unpack(ticket)
        with self._lock:
            started = self._started.pop(message.statement_handle, None)
        if started is not None:
            started.channel.gone.set()
            started.cancel.set()

    # -- DoGet: stream a started query, or answer a catalog command ---------------------------

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        command = _unpack(ticket.ticket)
        if type(command).__name__ != "TicketStatementQuery":
            return flight.RecordBatchStream(self._metadata(command))
        with self._lock:
            started = self._started.pop(command.statement_handle, None)
        if started is None:
            raise flight.FlightServerError(
                "unknown or expired ticket: each query's result can be read once, within the "
                "task timeout; run the query again"
            )
        assert started.channel.schema is not None
        return flight.GeneratorStream(
            started.channel.schema, _stream(started, lambda: not context.is_cancelled())
        )

    def _metadata(self, command: Any) -> pa.Table:
        kind = type(command).__name__
        if kind == "CommandGetSqlInfo":
            return metadata.sql_info(command.info)
        if kind == "CommandGetTableTypes":
            return metadata.table_types()
        state = self.ap.registry.state()
        if kind == "CommandGetCatalogs":
            return metadata.catalogs(state)
        if kind == "CommandGetDbSchemas":
            return metadata.db_schemas(
                state, _optional(command, "catalog"), _optional(command, "db_schema_filter_pattern")
            )
        if kind == "CommandGetTables":
            return metadata.tables(
                state,
                _optional(command, "catalog"),
                _optional(command, "db_schema_filter_pattern"),
                _optional(command, "table_name_filter_pattern"),
                command.table_types,
                command.include_schema,
            )
        raise flight.FlightServerError(f"{kind} is not a query or catalog command")

    # -- actions: prepared statements ---------------------------------------------------------

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        return [
            ("CreatePreparedStatement", "prepare a query (Flight SQL)"),
            ("ClosePreparedStatement", "close a prepared query (Flight SQL)"),
        ]

    def do_action(
        self, context: flight.ServerCallContext, action: flight.Action
    ) -> Iterator[flight.Result]:
        body = action.body.to_pybytes() if action.body is not None else b""
        if action.type == "CreatePreparedStatement":
            request = _unpack(body)
            if type(request).__name__ != "ActionCreatePreparedStatementRequest":
                raise flight.FlightServerError("CreatePreparedStatement needs its request")
            # Stateless: the handle is the statement itself, so nothing is held per client.
            # The result schema is left out (allowed): clients take it from GetFlightInfo.
            result = protocol.new(
                "ActionCreatePreparedStatementResult",
                prepared_statement_handle=request.query.encode(),
            )
            return iter([flight.Result(protocol.pack(result))])
        if action.type == "ClosePreparedStatement":
            return iter([])
        raise flight.FlightServerError(
            f"unsupported action {action.type[:80]!r}; this server has CreatePreparedStatement "
            "and ClosePreparedStatement"
        )


def _stream(started: _Started, alive: Callable[[], bool]) -> Iterator[pa.RecordBatch]:
    try:
        yield from started.channel.batches(alive)
    except BaseException as exc:
        started.cancel.set()  # stops the bee if it is still running
        if isinstance(exc, GeneratorExit | QueryCancelledError):
            raise
        raise _flight_error(exc) from None
    finally:
        started.cancel.set()


def _unpack(data: bytes) -> Any:
    try:
        return protocol.unpack(data)
    except protocol.ProtocolError as exc:
        raise flight.FlightServerError(str(exc)) from None


def _optional(message: Any, name: str) -> str | None:
    return getattr(message, name) if message.HasField(name) else None


def _prepared_sql(handle: bytes) -> str:
    try:
        return handle.decode()
    except UnicodeDecodeError:
        raise flight.FlightServerError("not a prepared statement handle of this server") from None


def _flight_error(error: BaseException) -> flight.FlightError:
    """The Flight status for ``error``, its message kept (Apiary's say what to do)."""
    message = str(error) or type(error).__name__
    if isinstance(error, NodeBusyError):
        return flight.FlightUnavailableError(f"busy: {message}")
    if isinstance(error, TaskTimeoutError):
        return flight.FlightTimedOutError(message)
    if isinstance(error, QueryCancelledError):
        return flight.FlightCancelledError(message)
    if isinstance(error, ApiaryError):  # says what to do; pyarrow has no "bad request"
        return flight.FlightServerError(message)
    log.exception("Flight SQL query failed unexpectedly", exc_info=error)
    return flight.FlightInternalError(f"internal error: {type(error).__name__}: {message}")
