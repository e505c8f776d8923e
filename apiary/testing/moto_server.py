"""moto's S3 server as a real, separate process.

A separate process (not moto's in-process mock) because obstore talks to S3 from Rust over real
HTTP, and child processes started by tests (nodes, the CLI) must reach the same endpoint.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DUMMY_KEY = "testing"
REGION = "us-east-1"


def free_port() -> int:
    """A currently free loopback port (the caller retries if it is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moto_missing_reason() -> str | None:
    """Why moto's server cannot run here, or None if it can."""
    for mod in ("moto", "moto.server", "flask", "werkzeug"):
        try:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not importable; install moto[server]"
        except (ImportError, ValueError) as exc:  # parent missing, or blocked in sys.modules
            return f"{mod} is not importable ({exc}); install moto[server]"
    return None


def unique_bucket_name(prefix: str = "apiary-test") -> str:
    # moto's server requires DNS-valid names: lowercase, digits, '-', 3..63 chars.
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class S3Target:
    """Where a test's storage lives, in every form code under test may want it."""

    endpoint: str
    bucket: str
    uri: str
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def make(cls, endpoint: str, bucket: str, prefix: str = "root") -> S3Target:
        env = {
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        return cls(endpoint, bucket, f"s3://{bucket}/{prefix}?endpoint={endpoint}", env)


class MotoServer:
    """`python -m moto.server` on a free loopback port; `start()` returns once it answers HTTP."""

    def __init__(self, start_timeout: float = 30.0, port: int = 0) -> None:
        self._wanted_port = port
        self.start_timeout = start_timeout
        self.port: int = 0
        self.endpoint: str = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("MotoServer already started")
        last_error = ""
        # free_port() can race with another process grabbing the port; a few tries cover that.
        for _ in range(3):
            try:
                self._start_once()
                return
            except RuntimeError as exc:
                last_error = str(exc)
                self.stop()
        raise RuntimeError(f"moto server did not start: {last_error}")

    def _start_once(self) -> None:
        self.port = self._wanted_port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        fd, log = tempfile.mkstemp(prefix="apiary-moto-", suffix=".log")
        self._log_path = Path(log)
        # Log to a file, not a pipe: an unread pipe fills up and blocks the server.
        with os.fdopen(fd, "wb") as log_file:
            self._proc = subprocess.Popen(
                # moto's app with writes serialised, as S3's conditional puts are atomic.
                [sys.executable, "-m", "apiary.testing.moto_serial", "127.0.0.1", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"exited with {self._proc.returncode}: {self.log_tail()}")
            if self._answers():
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        raise RuntimeError(f"no HTTP answer within {self.start_timeout}s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP status means the server is up
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, chars: int = 2000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-chars:]

    def client(self) -> Any:
        """A boto3 S3 client for this server (dummy credentials)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
            region_name=REGION,
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or unique_bucket_name()
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10.0) as resp:
            if resp.status != 200:
                raise RuntimeError(f"moto reset answered {resp.status}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None


def main() -> None:
    """``just s3``: a moto S3 server for manual use, with one bucket, until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--bucket", default="apiary-dev")
    args = parser.parse_args()
    with MotoServer(port=args.port) as server:
        server.create_bucket(args.bucket)
        print(f"S3 endpoint {server.endpoint}, bucket {args.bucket}")
        print(f"  export AWS_ACCESS_KEY_ID={DUMMY_KEY} AWS_SECRET_ACCESS_KEY={DUMMY_KEY}")
        print(f"  apiary demo --storage 's3://{args.bucket}/apiary?endpoint={server.endpoint}'")
        try:
            while server._proc is not None and server._proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
