"""site.yml on three local hosts: installed from the release, alive in the swarm, idempotent."""

from __future__ import annotations

import os
import stat

from support.ansible_fleet import FLEET_MARKS, Fleet, run_playbook
from support.frozen import FrozenRelease

# The first test also pays for the shared setup: building the frozen release when no other test
# has (~2-3 min on 2 cores) and two site.yml runs (~70 s).
pytestmark = FLEET_MARKS


def test_first_run_installs_and_starts_every_node(fleet: Fleet) -> None:
    first = fleet.runs[0]
    assert first.returncode == 0, first.output[-6000:]
    recap = first.recap()
    assert set(recap) == {"bucket", "node1", "node2", "node3"}, first.recap_text()
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in recap.values())
    assert all(recap[h]["changed"] > 0 for h in ("bucket", "node1", "node2", "node3"))
    # node1 and node2 downloaded the tarball and its checksum file over HTTP; node3 copied
    # them from the controller's release folder (apiary_release_dir).
    first_requests = fleet.requests[0]
    tarballs = [p for p in first_requests if p.endswith(".tar.gz")]
    assert len(tarballs) == 2, first_requests
    assert sum(p.endswith(".tar.gz.sha256") for p in first_requests) == 2


def test_every_node_is_alive_in_the_swarm(fleet: Fleet) -> None:
    assert fleet.alive() >= {"node1", "node2", "node3"}
    # ... as reported by the playbook's own last play.
    assert "node(s) alive: node1, node2, node3" in fleet.runs[0].stdout


def test_nodes_run_the_installed_release_as_background_processes(
    fleet: Fleet, release: FrozenRelease
) -> None:
    for host in fleet.nodes:
        pid = host.pid()
        assert pid is not None, f"{host.name} has no pid file"
        # /opt/apiary is a link to the release folder, named by version and checksum.
        folder = (host.prefix / "opt/apiary").resolve()
        assert folder.parent == host.prefix / "opt/apiary-releases"
        assert folder.name == f"{release.version}-{release.sha256[:16]}"
        assert os.readlink(f"/proc/{pid}/exe") == str(folder / "apiary")
        link = host.prefix / "usr/local/bin/apiary"
        assert link.resolve() == folder / "apiary"


def test_config_is_private_and_names_the_node(fleet: Fleet) -> None:
    for host in fleet.nodes:
        text = host.config.read_text()
        assert f'node_id = "{host.name}"' in text
        assert f'storage = "{fleet.storage_url}"' in text
        assert fleet.secret in text  # the node really uses the vault-style key...
        assert stat.S_IMODE(host.config.stat().st_mode) == 0o640
        assert stat.S_IMODE(host.config.parent.stat().st_mode) == 0o750


def test_no_secret_in_ansible_output(fleet: Fleet) -> None:
    for run in fleet.runs:
        assert fleet.secret not in run.output  # ...but never shows it (run with -v)


def test_second_run_changes_nothing(fleet: Fleet) -> None:
    second = fleet.runs[1]
    assert second.returncode == 0, second.output[-6000:]
    recap = second.recap()
    assert set(recap) == {"bucket", "node1", "node2", "node3"}, second.recap_text()
    assert {h: r["changed"] for h, r in recap.items()} == dict.fromkeys(recap, 0), (
        second.recap_text()
    )
    # No download: only the two checksum files, which name the release folders.
    assert [p.endswith(".tar.gz.sha256") for p in fleet.requests[1]] == [True, True]


def test_decommission_stops_one_node_and_it_leaves_the_swarm(fleet: Fleet) -> None:
    node3 = fleet.nodes[2]
    pid = node3.pid()
    assert pid is not None
    run = run_playbook(
        "decommission.yml", fleet.inventory, "-e", f"@{fleet.extra_vars}", "--limit", "node3"
    )
    assert run.returncode == 0, run.output[-6000:]
    assert run.recap()["node3"]["changed"] == 1, run.recap_text()
    assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    assert not node3.pid_file.exists()
    status = fleet.swarm()
    ids = {n["node_id"] for n in status["nodes"]}
    assert "node3" not in ids  # removed its own heartbeat: gone, not dead
    assert {"node1", "node2"} <= {n["node_id"] for n in status["nodes"] if n["state"] == "alive"}


def test_decommission_requires_limit(fleet: Fleet) -> None:
    run = run_playbook("decommission.yml", fleet.inventory, "-e", f"@{fleet.extra_vars}")
    assert run.returncode != 0
    assert "decommission.yml --limit HOST" in run.output
    assert {"node1", "node2"} <= fleet.alive()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
