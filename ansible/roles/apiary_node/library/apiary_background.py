#!/usr/bin/python
# Ansible modules keep DOCUMENTATION/EXAMPLES/RETURN above the imports (ansible-doc reads them).
# ruff: noqa: E402
"""Run ``apiary node`` as a background process where there is no systemd (containers, CI)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apiary_background
short_description: Keep one background process running from a pid file, idempotently
description:
  - Starts a command detached from Ansible (new session, output to a log file) and records
    its pid and a fingerprint of what it runs in a pid file.
  - C(state=started) leaves a running process alone when its fingerprint (command, environment
    and the caller's I(fingerprint), e.g. the config checksum and binary version) is unchanged,
    and restarts it when anything differs.
  - C(state=stopped) sends SIGTERM and waits for the process to exit, so a node can remove its
    own heartbeat on the way out.
  - Used by the apiary_node role when the host has no systemd.
options:
  state:
    description: Whether the process should run, be restarted, or be stopped.
    type: str
    choices: [started, restarted, stopped]
    default: started
  command:
    description: Program and arguments (argv list). Required unless I(state=stopped).
    type: list
    elements: str
  environment:
    description: The whole environment of the process (nothing is inherited but C(PATH)).
    type: dict
    default: {}
  pid_file:
    description: Where the pid and fingerprint are kept.
    type: path
    required: true
  log_file:
    description: File the process's stdout and stderr are appended to.
    type: path
  chdir:
    description: Working directory of the process.
    type: path
    default: /
  fingerprint:
    description: Anything that should restart the process when it changes.
    type: str
    default: ""
  stop_timeout:
    description: Seconds to wait for exit after SIGTERM before SIGKILL.
    type: float
    default: 30
  start_grace:
    description: Seconds the process must stay up after starting to count as started.
    type: float
    default: 1
author: Apiary
"""

EXAMPLES = r"""
- name: Run the node in the background
  apiary_background:
    command: [/opt/apiary/apiary, node, --config, /etc/apiary/apiary.toml]
    environment: {APIARY_HOME: /var/lib/apiary}
    pid_file: /var/lib/apiary/apiary.pid
    log_file: /var/log/apiary.log
    fingerprint: "0.1.0 {{ config_checksum }}"
"""

RETURN = r"""
pid:
  description: Pid of the running process (absent when stopped).
  type: int
  returned: when running
action:
  description: What was done: none, started, restarted or stopped.
  type: str
  returned: always
"""

import hashlib
import json
import os
import signal
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def _alive(pid):
    """True when ``pid`` is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _read(pid_file):
    try:
        with open(pid_file) as fh:
            record = json.load(fh)
        return record if _alive(int(record["pid"])) and _same_program(record) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _same_program(record):
    """Guard against a recycled pid: the process must still run the recorded executable."""
    try:
        with open(f"/proc/{record['pid']}/cmdline", "rb") as fh:
            argv0 = fh.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    return argv0 == record.get("argv0")


def _stop(record, timeout):
    pid = int(record["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.1)


def _start(module, digest):
    p = module.params
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    env.update({str(k): str(v) for k, v in p["environment"].items()})
    log_path = p["log_file"] or os.devnull
    if p["log_file"]:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            p["command"],
            env=env,
            cwd=p["chdir"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + p["start_grace"]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            module.fail_json(
                msg=f"{p['command'][0]} exited with status {proc.returncode} right after "
                f"starting; see {log_path}"
            )
        time.sleep(0.1)
    record = {"pid": proc.pid, "argv0": p["command"][0], "fingerprint": digest}
    os.makedirs(os.path.dirname(p["pid_file"]) or ".", exist_ok=True)
    tmp = p["pid_file"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(record, fh)
    os.replace(tmp, p["pid_file"])
    return proc.pid


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "default": "started",
                "choices": ["started", "restarted", "stopped"],
            },
            "command": {"type": "list", "elements": "str"},
            "environment": {"type": "dict", "default": {}, "no_log": False},
            "pid_file": {"type": "path", "required": True},
            "log_file": {"type": "path"},
            "chdir": {"type": "path", "default": "/"},
            "fingerprint": {"type": "str", "default": ""},
            "stop_timeout": {"type": "float", "default": 30.0},
            "start_grace": {"type": "float", "default": 1.0},
        },
        required_if=[("state", "started", ["command"]), ("state", "restarted", ["command"])],
        supports_check_mode=True,
    )
    p = module.params
    running = _read(p["pid_file"])
    if p["state"] == "stopped":
        if running is None:
            module.exit_json(changed=False, action="none")
        if not module.check_mode:
            _stop(running, p["stop_timeout"])
            os.unlink(p["pid_file"])
        module.exit_json(changed=True, action="stopped")

    blob = json.dumps([p["command"], p["environment"], p["fingerprint"]], sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()
    if running is not None and running.get("fingerprint") == digest and p["state"] == "started":
        module.exit_json(changed=False, action="none", pid=int(running["pid"]))
    action = "started" if running is None else "restarted"
    if module.check_mode:
        module.exit_json(changed=True, action=action)
    if running is not None:
        _stop(running, p["stop_timeout"])
    pid = _start(module, digest)
    module.exit_json(changed=True, action=action, pid=pid)


if __name__ == "__main__":
    main()
