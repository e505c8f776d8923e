"""A real ``apiary node --serve`` in its own process, and ADBC connections to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.waiting import wait_until

TOKEN = "s3cret-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServedNode:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int
    lines: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one series of the node's /metrics (0 if absent)."""
        for line in self.metrics().splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _drain(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


@pytest.fixture
def serve_node(tmp_path: Path) -> Iterator[Callable[..., ServedNode]]:
    """Start ``apiary node --serve`` on a root (settings as APIARY_* variables) and wait for
    it to listen; stopped with SIGTERM afterwards, and its exit status checked."""
    started: list[ServedNode] = []

    def start(root: str, *args: str, ready: bool = True, **settings: str) -> ServedNode:
        port, metrics_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("APIARY_")}
        env.update(
            APIARY_HOME=str(tmp_path / f"home-{len(started)}"),
            APIARY_CONFIG=str(tmp_path / "absent.toml"),
            PYTHONPATH=os.pathsep.join(sys.path),
        )
        env.update({f"APIARY_{k.upper()}": v for k, v in settings.items()})
        command = [sys.executable, "-m", "apiary", "node", "--storage", root, "--serve"]
        command += ["--listen", f"127.0.0.1:{port}"]
        command += ["--metrics-listen", f"127.0.0.1:{metrics_port}", *args]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        node = ServedNode(process, port, metrics_port)
        threading.Thread(target=_drain, args=(process.stdout, node.lines), daemon=True).start()
        started.append(node)
        if ready:
            wait_until(
                lambda: "joined the swarm" in node.log or process.poll() is not None,
                timeout=60,
                what="the node to start",
            )
            assert process.poll() is None, node.log
        return node

    yield start
    for node in started:
        if node.process.poll() is None:
            assert node.stop() == 0, node.log


def connect(node: ServedNode, token: str | None = TOKEN, **kwargs: str):
    import adbc_driver_flightsql.dbapi as flightsql

    options = dict(kwargs)
    if token is not None:
        options["adbc.flight.sql.authorization_header"] = f"Bearer {token}"
    return flightsql.connect(node.uri, db_kwargs=options, autocommit=True)
