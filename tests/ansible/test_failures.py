"""A wrong key or an unreachable bucket stops the play at the verify step, naming host and cause."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from support.ansible_fleet import (
    FLEET_MARKS,
    Fleet,
    Host,
    common_vars,
    run_playbook,
    stop_leftovers,
    write_inventory,
)
from support.frozen import FrozenRelease

from apiary.testing.moto_server import DUMMY_KEY, MotoServer, free_port

# The first test also pays for the shared setup: building the frozen release when no other test
# has (~2-3 min on 2 cores) and two site.yml runs (~70 s).
pytestmark = FLEET_MARKS


@pytest.fixture(scope="module")
def strict_s3() -> Iterator[MotoServer]:
    """A second moto server that checks keys (IAM auth on from the first request)."""
    with mock.patch.dict(os.environ, {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}), MotoServer() as m:
        yield m


def _preinstalled(fleet: Fleet, prefix: Path) -> Host:
    """A host whose prefix already holds the release (hard links of node1's tree): no download."""
    shutil.copytree(
        fleet.nodes[0].prefix / "opt", prefix / "opt", symlinks=True, copy_function=os.link
    )
    return Host(prefix.name, prefix)


def test_wrong_key_and_unreachable_bucket_fail_at_verify(
    fleet: Fleet, strict_s3: MotoServer, release: FrozenRelease, release_url: str
) -> None:
    root = fleet.root / "failures"
    badkey = _preinstalled(fleet, root / "badkey")
    nobucket = _preinstalled(fleet, root / "nobucket")
    wrong_secret = f"wr0ng-{uuid.uuid4().hex}"
    host_vars = {
        "badkey": {
            "apiary_storage_url": f"s3://apiary-fleet/fleet?endpoint={strict_s3.endpoint}",
            "apiary_s3_access_key_id": "AKIAAPIARYWRONGKEY00",
            "apiary_s3_secret_access_key": wrong_secret,
        },
        "nobucket": {  # nothing listens on this port
            "apiary_storage_url": f"s3://apiary-fleet/fleet?endpoint=http://127.0.0.1:{free_port()}",
            "apiary_s3_access_key_id": DUMMY_KEY,
            "apiary_s3_secret_access_key": wrong_secret,
        },
    }
    inventory = write_inventory(root / "inventory.yml", [badkey, nobucket], node_vars=host_vars)
    extra = root / "vars.json"
    extra.write_text(
        json.dumps({**common_vars(release.version, release_url), "minio_enabled": False})
    )
    try:
        run = run_playbook("site.yml", inventory, "-e", f"@{extra}", "-v")
    finally:
        stop_leftovers([badkey, nobucket])

    assert run.returncode != 0
    recap = run.recap()
    assert recap["badkey"]["failed"] == 1 and recap["nobucket"]["failed"] == 1, run.recap_text()
    fatal = {
        m.group(1): m.group(0) for m in re.finditer(r"fatal: \[(\w+)\]: FAILED! => .*", run.stdout)
    }
    assert set(fatal) == {"badkey", "nobucket"}, run.stdout[-4000:]
    # Failed at the verify step, after the config was written...
    verify_task = run.stdout.split("TASK [apiary_node : Fail when apiary doctor found a problem]")
    assert len(verify_task) == 2, run.stdout[-4000:]
    assert "fatal: [badkey]" in verify_task[1] and "fatal: [nobucket]" in verify_task[1]
    # ...with the host and the reason in the message.
    assert "badkey: apiary doctor failed" in fatal["badkey"]
    assert "storage reachable:" in fatal["badkey"]
    assert "InvalidAccessKeyId" in fatal["badkey"] or "403" in fatal["badkey"], fatal["badkey"]
    assert "nobucket: apiary doctor failed" in fatal["nobucket"]
    assert "storage reachable:" in fatal["nobucket"]
    assert "error sending request" in fatal["nobucket"], fatal["nobucket"]
    # Neither node was started, and the wrong secret never shows.
    assert badkey.pid() is None and nobucket.pid() is None
    assert wrong_secret not in run.output
    assert wrong_secret in badkey.config.read_text()  # it was there to leak


def test_swarm_wait_fails_naming_the_missing_nodes(fleet: Fleet, tmp_path: Path) -> None:
    """The last play of site.yml, when a node of the group never joins."""
    node1 = fleet.nodes[0]
    ghost = Host("ghost", tmp_path / "ghost")
    inventory = write_inventory(tmp_path / "inventory.yml", [node1, ghost])
    playbook = tmp_path / "wait.yml"
    playbook.write_text(
        "- hosts: node1\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: apiary_node\n"
        "        tasks_from: wait_swarm\n"
    )
    run = run_playbook(
        str(playbook),
        inventory,
        "-e",
        f"@{fleet.extra_vars}",
        "-e",
        "apiary_swarm_wait_retries=2",
    )
    assert run.returncode != 0
    assert re.search(r"Not alive in the swarm after 2 tries\s+1 s apart: ghost\b", run.stdout), (
        run.stdout[-3000:]
    )
    assert "node1" not in run.stdout.split("apart:", 1)[1].split("\n", 1)[0]
