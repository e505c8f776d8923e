"""Upgrades: versioned release folders behind a symlink, keyed by the release checksum.

One node is installed from release A, then from B: the same version rebuilt (one more file), so
only the checksum tells them apart. The install step alone switches the link while the running
node keeps its program; the next full run restarts it onto B; a broken tarball changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ansible_fleet import (
    FLEET_MARKS,
    Host,
    Run,
    common_vars,
    run_playbook,
    serve_folder,
    stop_leftovers,
    write_inventory,
)
from support.frozen import FrozenRelease

from apiary.testing.moto_server import DUMMY_KEY, MotoServer, unique_bucket_name
from image.binary import write_tarball

# Four playbook runs on one host (~20-30 s each), plus the frozen release when no other test
# has built it.
pytestmark = FLEET_MARKS

REPO = Path(__file__).resolve().parents[2]
CMDLINE = "console=serial0,115200 root=PARTUUID=0ee3-02 rootwait cgroup_disable=memory\n"


@dataclass
class Upgrade:
    host: Host
    inventory: Path
    extra: Path
    rebuilt: FrozenRelease  # B: same version, one more file, another checksum
    urls: dict[str, str]  # "a", "b", "broken" -> base URL of that release folder
    runs: dict[str, Run]
    pids: dict[str, int | None]
    exes: dict[str, str]

    def release_dir(self, release: FrozenRelease) -> Path:
        return self.host.prefix / "opt/apiary-releases" / f"{release.version}-{release.sha256[:16]}"

    def current(self) -> Path:
        return (self.host.prefix / "opt/apiary").resolve()


def _rebuilt(release: FrozenRelease, folder: Path) -> FrozenRelease:
    """Release B: A's tree (hard links) plus one file, packed the same reproducible way."""
    tree = folder / "apiary"
    shutil.copytree(release.tree, tree, symlinks=True, copy_function=os.link)
    (tree / "_internal" / "REBUILT").write_text("same version, new build\n")
    tarball = folder / release.tarball.name
    digest = write_tarball(tree, tarball, mtime=1_700_000_000)
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")
    shutil.rmtree(tree)
    return FrozenRelease(
        tree=tree,
        executable=tree / "apiary",
        tarball=tarball,
        sha256=digest,
        version=release.version,
        arch=release.arch,
    )


def _broken(release: FrozenRelease, folder: Path) -> None:
    """A tarball that matches its published checksum but is not a release (cut short)."""
    tarball = folder / release.tarball.name
    tarball.write_bytes(release.tarball.read_bytes()[: 1 << 20])
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    Path(f"{tarball}.sha256").write_text(f"{digest}  {tarball.name}\n")


def _exe(pid: int | None) -> str:
    return os.readlink(f"/proc/{pid}/exe") if pid else ""


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture(scope="module")
def upgrade(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, release: FrozenRelease
) -> Iterator[Upgrade]:
    root = tmp_path_factory.mktemp("upgrade")
    bucket = unique_bucket_name("apiary-upgrade")
    moto_server.create_bucket(bucket)
    folders = {name: root / name for name in ("b", "broken")}
    for folder in folders.values():
        folder.mkdir()
    rebuilt = _rebuilt(release, folders["b"])
    _broken(release, folders["broken"])
    host = Host("upgraded", root / "upgraded")
    cmdline = host.prefix / "boot/firmware/cmdline.txt"
    cmdline.parent.mkdir(parents=True)
    cmdline.write_text(CMDLINE)
    inventory = write_inventory(root / "inventory.yml", [host])
    extra = root / "vars.json"
    install_only = root / "install.yml"
    install_only.write_text(
        "- hosts: nodes\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: apiary_node\n"
        "        tasks_from: install\n"
    )
    runs: dict[str, Run] = {}
    pids: dict[str, int | None] = {}
    exes: dict[str, str] = {}
    with (
        serve_folder(release.tarball.parent) as url_a,
        serve_folder(folders["b"]) as url_b,
        serve_folder(folders["broken"]) as url_broken,
    ):
        urls = {"a": url_a, "b": url_b, "broken": url_broken}

        def play(step: str, url: str, playbook: str = "site.yml") -> None:
            variables = {
                **common_vars(release.version, url),
                "apiary_storage_url": f"s3://{bucket}/fleet?endpoint={moto_server.endpoint}",
                "apiary_s3_access_key_id": DUMMY_KEY,
                "apiary_s3_secret_access_key": "upgrade-secret-0000",
                "minio_enabled": False,
            }
            extra.write_text(json.dumps(variables))
            runs[step] = run_playbook(playbook, inventory, "-e", f"@{extra}")
            pids[step] = host.pid()
            exes[step] = _exe(pids[step])

        try:
            play("a", url_a)  # first install: release A, node started
            play("b-install", url_b, str(install_only))  # B unpacked, link switched, no restart
            play("b", url_b)  # the full run restarts the node onto B
            play("b-again", url_b)  # nothing to do
            play("broken", url_broken, str(install_only))  # a bad release changes nothing
            yield Upgrade(host, inventory, extra, rebuilt, urls, runs, pids, exes)
        finally:
            stop_leftovers([host])


def _ok(run: Run) -> None:
    assert run.returncode == 0, run.output[-6000:]


def test_first_install_runs_from_a_versioned_folder(upgrade: Upgrade, release: FrozenRelease):
    _ok(upgrade.runs["a"])
    assert upgrade.exes["a"] == str(upgrade.release_dir(release) / "apiary")
    assert (upgrade.host.prefix / "opt/apiary").is_symlink()


def test_install_switches_the_link_while_the_old_node_keeps_running(
    upgrade: Upgrade, release: FrozenRelease
) -> None:
    run = upgrade.runs["b-install"]
    _ok(run)
    assert run.recap()["upgraded"]["changed"] > 0, run.recap_text()
    # Same node process, still running the program it started with, from A's folder...
    assert upgrade.pids["b-install"] == upgrade.pids["a"]
    assert upgrade.exes["b-install"] == str(upgrade.release_dir(release) / "apiary")
    # ...while the link already names B, unpacked beside it.
    assert upgrade.release_dir(upgrade.rebuilt) != upgrade.release_dir(release)
    assert (upgrade.release_dir(upgrade.rebuilt) / "_internal" / "REBUILT").is_file()


def test_same_version_new_checksum_is_installed_and_restarted_onto(
    upgrade: Upgrade, release: FrozenRelease
) -> None:
    run = upgrade.runs["b"]
    _ok(run)
    assert upgrade.pids["b"] is not None and upgrade.pids["b"] != upgrade.pids["a"]
    assert not _alive(upgrade.pids["a"])
    assert upgrade.exes["b"] == str(upgrade.release_dir(upgrade.rebuilt) / "apiary")
    # The previous release is kept (apiary_keep_releases: 2): a rollback is a link away.
    assert upgrade.release_dir(release).is_dir()


def test_an_unchanged_release_is_not_reinstalled(upgrade: Upgrade) -> None:
    run = upgrade.runs["b-again"]
    _ok(run)
    assert run.recap()["upgraded"]["changed"] == 0, run.recap_text()
    assert upgrade.pids["b-again"] == upgrade.pids["b"]


def test_a_broken_release_leaves_the_installed_one_running(upgrade: Upgrade) -> None:
    run = upgrade.runs["broken"]
    assert run.returncode != 0
    assert upgrade.current() == upgrade.release_dir(upgrade.rebuilt)
    assert upgrade.pids["broken"] == upgrade.pids["b"] and _alive(upgrade.pids["b"])
    assert upgrade.exes["broken"] == str(upgrade.release_dir(upgrade.rebuilt) / "apiary")
    leftovers = [p.name for p in (upgrade.host.prefix / "opt/apiary-releases").iterdir()]
    assert len([n for n in leftovers if not n.endswith(".partial")]) == 2, leftovers


def test_memory_cgroup_is_enabled_on_the_kernel_line_once(upgrade: Upgrade) -> None:
    line = (upgrade.host.prefix / "boot/firmware/cmdline.txt").read_text()
    args = line.split()
    assert "cgroup_disable=memory" not in args
    assert args.count("cgroup_enable=memory") == 1 and args.count("cgroup_memory=1") == 1
    assert args[:3] == CMDLINE.split()[:3]  # everything else kept, in order
    assert "reboot for apiary.service's MemoryMax" in upgrade.runs["a"].stdout
    assert "reboot for apiary.service" not in upgrade.runs["b-again"].stdout


def test_the_unit_is_the_image_unit(tmp_path: Path) -> None:
    """templates/apiary.service.j2 is image/files/apiary.service.j2; rendered with the image's
    values by Jinja (as Ansible does), it is byte for byte the unit apiary-image installs."""
    import jinja2

    from image import rootfs

    role_template = REPO / "ansible/roles/apiary_node/templates/apiary.service.j2"
    assert role_template.resolve() == (rootfs.FILES / "apiary.service.j2").resolve()
    rendered = jinja2.Template(role_template.read_text(), keep_trailing_newline=True).render(
        rootfs.UNIT_VALUES
    )
    assert rendered.encode() == rootfs.template("apiary.service")
    for line in ("MemoryMax=75%", "ProtectSystem=strict", "SystemCallFilter=@system-service"):
        assert line in rendered.splitlines()


def test_release_tarballs_differ_only_by_checksum(upgrade: Upgrade, release: FrozenRelease):
    assert upgrade.rebuilt.version == release.version
    assert upgrade.rebuilt.sha256 != release.sha256
    with tarfile.open(upgrade.rebuilt.tarball) as tar:
        assert "apiary/_internal/REBUILT" in tar.getnames()
