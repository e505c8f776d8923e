"""moto's S3 server with its writes serialised: ``python -m apiary.testing.moto_serial HOST PORT``.

moto checks ``If-None-Match: *`` and then stores the object without a lock, on a threaded
server, so two racing conditional PUTs can both succeed — which real S3 never allows (seen here:
two writers both acknowledged ledger version 113 out of 200). Tests must exercise S3's
semantics, not that race, so this runs the same application with one lock around every request
that changes state. Reads stay concurrent.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_WRITES = {"PUT", "POST", "DELETE"}


def serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    lock = threading.Lock()

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in _WRITES:
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))  # the whole write happens under the lock

    return handle


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
