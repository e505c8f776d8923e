"""Running the real playbooks against hosts that are folders on this machine.

Every inventory host uses ``ansible_connection=local`` and its own ``apiary_prefix`` under a
temporary folder, so three hosts stand in for three Pis. The apiary release is the frozen
PyInstaller build, served over real HTTP so the role's download and checksum path runs.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import grp
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VAULT_PASSWORD = ANSIBLE_DIR / "example-vault-password"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def require_tool(name: str) -> str:
    """The tool's path; fail under CI=true, skip with a reason elsewhere."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def ansible_env() -> dict[str, str]:
    """The test's environment without any S3 or Apiary settings: nodes get theirs from the role."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "APIARY_", "ANSIBLE_"))}
    env.update(
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP per host: {"node1": {"ok": 12, "changed": 0, ...}}."""
        found = {}
        after = self.stdout.split("PLAY RECAP", 1)[-1]
        for line in after.splitlines():
            m = RECAP.match(line.strip())
            if m:
                host, *counts = m.groups()
                found[host] = dict(
                    zip(("ok", "changed", "unreachable", "failed"), map(int, counts), strict=True)
                )
        return found

    def recap_text(self) -> str:
        return "PLAY RECAP" + self.stdout.split("PLAY RECAP", 1)[-1].rstrip()


def run_playbook(playbook: str, inventory: Path, *extra: str, timeout: float = 240) -> Run:
    args = [
        require_tool("ansible-playbook"),
        str(ANSIBLE_DIR / playbook),
        "-i",
        str(inventory),
        "--vault-password-file",
        str(VAULT_PASSWORD),
        *extra,
    ]
    start = time.monotonic()
    done = subprocess.run(
        args, cwd=ANSIBLE_DIR, env=ansible_env(), capture_output=True, text=True, timeout=timeout
    )
    return Run(args, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


@dataclass
class Host:
    """One inventory host: a prefix folder standing in for a machine's root."""

    name: str
    prefix: Path

    @property
    def config(self) -> Path:
        return self.prefix / "etc/apiary/apiary.toml"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "var/lib/apiary/apiary.pid"

    def pid(self) -> int | None:
        try:
            return int(json.loads(self.pid_file.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def inventory_vars(self) -> dict[str, str]:
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "apiary_prefix": str(self.prefix),
            # Download over HTTP unless a test says otherwise: group_vars/all points the
            # example fleet at the repository's dist/ folder.
            "apiary_release_dir": "",
        }


@dataclass
class Fleet:
    root: Path
    nodes: list[Host]
    storage_url: str
    secret: str
    extra_vars: Path
    inventory: Path
    runs: list[Run] = field(default_factory=list)
    # HTTP paths the release server was asked for during each run of `runs`.
    requests: list[list[str]] = field(default_factory=list)

    def swarm(self) -> dict:
        """`apiary swarm --json` of the development install, with node1's apiary.toml."""
        env = {**ansible_env(), "APIARY_CONFIG": str(self.nodes[0].config)}
        env["APIARY_HOME"] = str(self.root / "observer-home")
        out = subprocess.run(
            [sys.executable, "-m", "apiary", "swarm", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(out.stdout)

    def alive(self) -> set[str]:
        return {n["node_id"] for n in self.swarm()["nodes"] if n["state"] == "alive"}


def write_inventory(
    path: Path, nodes: list[Host], bucket: Host | None = None, node_vars: dict | None = None
) -> Path:
    """An inventory of local-connection hosts (YAML is JSON, so json.dumps writes it)."""
    children: dict = {
        "nodes": {
            "hosts": {
                h.name: {**h.inventory_vars(), **(node_vars or {}).get(h.name, {})} for h in nodes
            }
        }
    }
    if bucket is not None:
        children["bucket"] = {"hosts": {bucket.name: bucket.inventory_vars()}}
    path.write_text(json.dumps({"all": {"children": children}}, indent=2))
    return path


def common_vars(version: str, base_url: str) -> dict:
    """Variables that make the roles run unprivileged on this machine."""
    group = grp.getgrgid(os.getgid()).gr_name
    return {
        "apiary_become": False,
        "apiary_create_user": False,
        "apiary_user": getpass.getuser(),
        "apiary_group": group,
        "apiary_owner": getpass.getuser(),
        "apiary_version": version,
        "apiary_download_base_url": base_url,
        "apiary_swarm_wait_retries": 20,
        "apiary_swarm_wait_delay": 1,
        "apiary_stop_timeout": 20,
        # moto has no MinIO admin API: no nodes' user here (tests/ansible/test_credentials.py
        # checks its policy against moto's IAM instead); the minio SDK is this Python's.
        "minio_node_access_key": "",
        "minio_install_sdk": False,
        "minio_sdk_python": "{{ ansible_playbook_python }}",
    }


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 for the release files; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []  # every path asked for, across the session

    def log_message(self, format: str, *args: object) -> None:
        QuietHandler.requests.append(self.path)


def stop_leftovers(hosts: list[Host]) -> None:
    """Kill any node a failed test left running (the playbooks normally stop them)."""
    for host in hosts:
        pid = host.pid()
        if pid is None:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# Tests that install and run the frozen release on a fleet: CI's second step runs them
# (marker binary), within 15 minutes each.
FLEET_MARKS = [
    pytest.mark.ansible,
    pytest.mark.binary,
    pytest.mark.s3,
    pytest.mark.slow,
    pytest.mark.timeout(900),
]
