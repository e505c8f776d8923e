"""A fault-injecting HTTP/1.1 reverse proxy for S3 traffic (put it in front of moto).

Faults are rules matched on method and a regex searched in the request path (not the query);
each affects `times` matching requests, then it is spent. Actions:

- "status":             reply with an S3 XML error at that status; NOT forwarded (not applied).
- "lose_reply":         forward (applied upstream), then reset the client connection (no reply).
- "hold":               not forwarded; block until release_held()/stop(), then reset.
- "hold_after_forward": forward (applied), block until release_held()/stop(), then reset.

Headers go upstream unchanged, Host included (so a SigV4 signature stays valid), except
hop-by-hop ones; a chunked request body is de-chunked and sent with Content-Length.

What obstore 0.12.1 raises (S3Store, retry_config max_retries=0, `put(..., mode="create")`),
observed through this proxy and pinned by test_harness.py::test_obstore_error_mapping:
- 412 Precondition Failed (real If-None-Match conflict): obstore.exceptions.AlreadyExistsError,
  "Object at location <path> already exists: Request precondition failure for path <path>:
  Error performing PUT <url> in <t> - Server returned non-2xx status code: 412 Precondition
  Failed: <xml>..."
- 409 ConditionalRequestConflict: ALSO obstore.exceptions.AlreadyExistsError (!),
  "Object at location <path> already exists: Error performing PUT <url> in <t> - Server returned
  non-2xx status code: 409 Conflict: <xml ...<Code>ConditionalRequestConflict</Code>...>".
  The class cannot tell "someone else won" from "retry"; only the text ("409 Conflict") can, and
  the object may not exist at all.
- 503 SlowDown: obstore.exceptions.GenericError, "Generic S3 error: Error performing PUT <url>
  in <t> - Server returned non-2xx status code: 503 Service Unavailable: <xml>...".
- lost reply (connection reset after upstream applied the put) and a held-then-dropped request:
  obstore.exceptions.GenericError, "Generic S3 error: Error performing PUT <url> in <t> - HTTP
  error: error sending request" (debug part: "Connection reset by peer"); no status at all.
All messages also carry a multi-line "Debug source:" dump. No exception has a status attribute.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

from apiary.testing.moto_server import S3Target

Action = Literal["status", "lose_reply", "hold", "hold_after_forward"]
ACTIONS: tuple[str, ...] = ("status", "lose_reply", "hold", "hold_after_forward")

# S3 error codes used when a "status" rule gives no code of its own.
DEFAULT_CODES: dict[int, str] = {
    400: "BadRequest",
    403: "AccessDenied",
    404: "NoSuchKey",
    409: "ConditionalRequestConflict",
    412: "PreconditionFailed",
    429: "SlowDown",
    500: "InternalError",
    503: "SlowDown",
}

# Connection-level headers; they describe one hop and must not be relayed.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Expect",  # the proxy already answered 100-continue and holds the whole body
    )
)


@dataclass
class FaultRule:
    method: str  # "*" matches any method
    path_regex: re.Pattern[str]
    action: Action
    times: int
    status: int = 503
    code: str | None = None
    message: str = "Injected by FaultProxy"

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method == "*" or self.method == method)
            and self.path_regex.search(path) is not None
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int | None  # what the client got; None when the connection was dropped
    upstream_status: int | None  # what the upstream answered; None if never forwarded
    fault: str | None  # the action applied, if any
    response_bytes: int = 0  # body bytes sent back to the client


def s3_error_body(code: str, message: str, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>fault-proxy</RequestId></Error>"
    ).encode()


@dataclass(frozen=True)
class ProxiedS3:
    """What the `fault_proxy` fixture gives: the proxy, and a target whose endpoint is it."""

    proxy: FaultProxy
    target: S3Target


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so the client's pooled keep-alive connections are served in one handler loop.
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end eventually even if stop() is never called
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; FaultProxy.requests is the log

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        proxy = self.server.proxy
        split = urlsplit(self.path)
        path, query = split.path, split.query
        body = self._read_body()  # read first: a held request has been fully sent
        rule = proxy._take_rule(self.command, path)
        action = rule.action if rule else None

        # Each branch records BEFORE answering: a client that has its answer must find its
        # request in `.requests` already.
        def record(status: int | None, upstream_status: int | None, sent: int = 0) -> None:
            proxy._record(
                RecordedRequest(self.command, path, query, status, upstream_status, action, sent)
            )

        if rule is not None and rule.action == "status":
            code = rule.code or DEFAULT_CODES.get(rule.status, "InjectedFault")
            record(rule.status, None)
            payload = s3_error_body(code, rule.message, path)
            self._reply(rule.status, [("Content-Type", "application/xml")], payload)
            return
        if rule is not None and rule.action == "hold":
            proxy._hold()
            record(None, None)
            self._drop()
            return

        try:
            status, reason, headers, payload = self._forward(body)
        except OSError as exc:
            record(502, None)
            self._reply(502, [("Content-Type", "text/plain")], f"upstream: {exc}".encode())
            return

        if rule is not None and rule.action in ("lose_reply", "hold_after_forward"):
            if rule.action == "hold_after_forward":
                proxy._hold()
            record(None, status)
            self._drop()
            return
        record(status, status, len(payload))
        self._reply(status, headers, payload, reason)

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            # skip_host: relay the client's own Host header, which SigV4 signed.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                lower = name.lower()
                if lower in HOP_BY_HOP or lower == "content-length":
                    continue
                if lower in proxy.drop_request_headers:
                    continue
                conn.putheader(name, value)
            if body or self.command in ("PUT", "POST") or "Content-Length" in self.headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            payload = resp.read()  # http.client knows HEAD/204/304 carry no body
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command != "HEAD":
                # Re-frame with our own Content-Length (upstream may have used chunked).
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                if resp.status not in (204, 304) and not 100 <= resp.status < 200:
                    headers.append(("Content-Length", str(len(payload))))
            return resp.status, resp.reason, headers, payload
        finally:
            conn.close()

    def _reply(
        self, status: int, headers: list[tuple[str, str]], payload: bytes, reason: str = ""
    ) -> None:
        self.send_response_only(status, reason or None)
        names = {k.lower() for k, _ in headers}
        for k, v in headers:
            self.send_header(k, v)
        if "content-length" not in names and self.command != "HEAD" and status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def _drop(self) -> None:
        """Close with RST (SO_LINGER 0) so the client sees a reset, never a partial reply."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The fd only really closes (sending the RST) once the makefile() reader is closed too;
        # wfile is a plain socket writer, and the handler loop still flushes it afterwards.
        with contextlib.suppress(OSError):
            self.rfile.close()
        self.connection.close()


class FaultProxy:
    """Reverse proxy in front of `upstream` (e.g. MotoServer.endpoint) that injects faults."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = upstream
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port or 80
        self.endpoint = ""
        self.faults_fired: list[tuple[str, str, str]] = []  # (action, method, path)
        self._requests: list[RecordedRequest] = []
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._held_cond = threading.Condition(self._lock)
        self._held_total = 0  # held requests ever; wait_held compares against this
        self._release_events: list[threading.Event] = []
        self._stopping = False
        self._connections: set[socket.socket] = set()
        self.connections_accepted = 0  # fewer than requests proves keep-alive reuse
        # Lower-case header names never forwarded: {"if-none-match"} turns the upstream into a
        # store without conditional writes (an old MinIO, a naive S3 clone).
        self.drop_request_headers: set[str] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._server is not None:
            raise RuntimeError("FaultProxy already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        self._stopping = False
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            self._stopping = True
            events, self._release_events = self._release_events, []
            conns = list(self._connections)
        for ev in events:
            ev.set()  # held handlers drop their connection and exit
        server.shutdown()
        server.server_close()
        for conn in conns:  # wake handlers idling in a keep-alive read
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------
    def add_fault(
        self,
        method: str,
        path_regex: str,
        action: Action,
        *,
        times: int = 1,
        status: int = 503,
        code: str | None = None,
        message: str = "Injected by FaultProxy",
    ) -> FaultRule:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")
        if times < 1:
            raise ValueError("times must be >= 1")
        rule = FaultRule(
            method.upper(), re.compile(path_regex), action, times, status, code, message
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending_faults(self) -> int:
        """How many more requests the current rules will affect."""
        with self._lock:
            return sum(r.times for r in self._rules)

    def _take_rule(self, method: str, path: str) -> FaultRule | None:
        # First matching live rule wins; spending it under the lock keeps `times` exact.
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    self.faults_fired.append((rule.action, method, path))
                    return rule
        return None

    # -- held requests -----------------------------------------------------------------------
    def _hold(self) -> None:
        ev = threading.Event()
        with self._lock:
            if self._stopping:
                return
            self._release_events.append(ev)
            self._held_total += 1
            self._held_cond.notify_all()
        ev.wait()

    def wait_held(self, timeout: float, count: int = 1) -> bool:
        """True once at least `count` requests in total have been held (within `timeout` s)."""
        with self._held_cond:
            return self._held_cond.wait_for(lambda: self._held_total >= count, timeout=timeout)

    @property
    def held_now(self) -> int:
        with self._lock:
            return len(self._release_events)

    def release_held(self) -> int:
        """Let every currently held request end (with a dropped connection); returns how many."""
        with self._lock:
            events, self._release_events = self._release_events, []
        for ev in events:
            ev.set()
        return len(events)

    # -- recording ---------------------------------------------------------------------------
    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
                self.connections_accepted += 1
            else:
                self._connections.discard(conn)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every completed request, in completion order."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        return len(self.matching(method, path_contains))

    def matching(
        self, method: str | None = None, path_contains: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.faults_fired.clear()
