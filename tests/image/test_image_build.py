"""Real builds of synthetic Raspberry Pi OS images, inspected with sfdisk, debugfs and mtools."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_images import CMDLINE_TXT, CONFIG_TXT, DISK_ID, Built, make_binary_tree

from image import config
from image.build import BuildResult, build
from image.config import DEFAULT_SOURCE_DATE_EPOCH
from image.rootfs import template

pytestmark = pytest.mark.image

EPOCH = DEFAULT_SOURCE_DATE_EPOCH


def run_build(base: Path, binary: Path, out: Path, **extra: object) -> BuildResult:
    out.parent.mkdir(parents=True, exist_ok=True)
    return build(config.load(base=base, binary=binary, out=out, **extra))


@pytest.fixture(scope="module")
def built(
    base_img: Path, binary_tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> BuildResult:
    return run_build(base_img, binary_tree, tmp_path_factory.mktemp("out") / "apiary.img")


@pytest.fixture(scope="module")
def image(built: BuildResult, inspect: Callable[[Path], Built]) -> Built:
    return inspect(built.out)


def test_program_tree_is_installed_root_owned(image: Built, binary_tree: Path) -> None:
    program = image.stat("/opt/apiary/apiary")
    assert program == {
        "type": "regular", "mode": 0o755, "uid": 0, "gid": 0, "link": None, "mtime": EPOCH,
    }  # fmt: skip
    assert image.cat("/opt/apiary/apiary") == (binary_tree / "apiary").read_bytes()
    internal = "/opt/apiary/_internal"
    assert image.stat(internal)["type"] == "directory"  # type: ignore[index]
    assert image.stat(f"{internal}/base_library.zip")["mode"] == 0o644  # type: ignore[index]
    assert image.stat(f"{internal}/libpython3.11.so.1.0")["mode"] == 0o755  # type: ignore[index]
    assert image.stat(f"{internal}/libpython3.11.so")["link"] == "libpython3.11.so.1.0"  # type: ignore[index]
    assert image.cat(f"{internal}/with space.txt") == b"names with spaces survive\n"
    link = image.stat("/usr/local/bin/apiary")
    assert link is not None and link["type"] == "symlink" and link["link"] == "/opt/apiary/apiary"


def test_user_exists_with_a_fixed_system_id(image: Built, built: BuildResult) -> None:
    # 999..997 are taken in the synthetic base (systemd-journal group, systemd users).
    assert built.uid == 996
    passwd = image.cat("/etc/passwd").decode()
    assert "apiary:x:996:996:Apiary node:/var/lib/apiary:/usr/sbin/nologin\n" in passwd
    assert passwd.startswith("root:x:0:0:root:/root:/bin/bash\n")
    assert "apiary:x:996:\n" in image.cat("/etc/group").decode()
    assert "apiary:!*:" in image.cat("/etc/shadow").decode()
    assert "apiary:!::" in image.cat("/etc/gshadow").decode()
    for name in ("shadow", "gshadow"):  # the base's owner and mode survive the rewrite
        shadow = image.stat(f"/etc/{name}")
        assert shadow is not None and (shadow["mode"], shadow["uid"], shadow["gid"]) == (
            0o640,
            0,
            42,
        )
    assert image.stat("/etc/passwd")["mode"] == 0o644  # type: ignore[index]
    sysusers = image.cat("/usr/lib/sysusers.d/apiary.conf").decode()
    assert 'u apiary 996 "Apiary node"' in sysusers
    config_dir = image.stat("/etc/apiary")
    assert config_dir is not None
    assert (config_dir["type"], config_dir["mode"], config_dir["uid"], config_dir["gid"]) == (
        "directory", 0o750, 0, 996,
    )  # fmt: skip


def test_units_are_installed_and_enabled(image: Built) -> None:
    wants = "/etc/systemd/system/multi-user.target.wants"
    for unit in ("apiary.service", "apiary-firstboot.service"):
        path = f"/etc/systemd/system/{unit}"
        stat = image.stat(path)
        assert stat is not None and (stat["mode"], stat["uid"], stat["gid"]) == (0o644, 0, 0)
        assert image.cat(path) == template(unit)
        enabled = image.stat(f"{wants}/{unit}")
        assert enabled is not None and enabled["link"] == path
    # What was enabled in the base still is.
    assert image.stat(f"{wants}/ssh.service")["link"] == "/usr/lib/systemd/system/ssh.service"  # type: ignore[index]
    script = image.stat("/usr/lib/apiary/apiary-firstboot")
    assert script is not None and (script["mode"], script["uid"]) == (0o755, 0)
    assert image.cat("/usr/lib/apiary/apiary-firstboot") == template("apiary-firstboot")


def test_settings_template_is_on_the_boot_partition(image: Built) -> None:
    assert image.boot_names() == ["apiary.toml", "cmdline.txt", "config.txt"]
    assert image.boot_cat("apiary.toml") == template("apiary.toml")
    assert image.boot_cat("config.txt") == CONFIG_TXT
    # The kernel line keeps every argument and gains the memory cgroup MemoryMax needs.
    cmdline = image.boot_cat("cmdline.txt")
    assert cmdline == CMDLINE_TXT.rstrip(b"\n") + b" cgroup_enable=memory cgroup_memory=1\n"


def test_image_is_consistent_and_checksummed(
    image: Built, built: BuildResult, base_img: Path
) -> None:
    assert "rootfs:" in image.fsck()  # e2fsck -fn exits 0: clean
    assert image.table["id"] == DISK_ID  # PARTUUIDs in cmdline.txt still match
    assert built.grown_bytes == 0 and built.out.stat().st_size == base_img.stat().st_size
    digest = hashlib.sha256(built.out.read_bytes()).hexdigest()
    assert built.sha256 == digest
    assert built.checksum_file.read_text() == f"{digest}  apiary.img\n"
    leftovers = sorted(p.name for p in built.out.parent.iterdir())
    assert leftovers == ["apiary.img", "apiary.img.sha256"]


def test_xz_base_and_tarball_give_the_same_bytes(
    built: BuildResult, base_xz: Path, binary_tarball: Path, tmp_path: Path
) -> None:
    again = run_build(base_xz, binary_tarball, tmp_path / "from-xz.img")
    assert again.sha256 == built.sha256


def test_reproducible_and_no_secret_in_the_image(
    built: BuildResult,
    base_img: Path,
    binary_tree: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("APIARY_CREDENTIALS__SECRET_ACCESS_KEY", secret)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    again = run_build(base_img, binary_tree, tmp_path / "again.img")
    assert again.sha256 == built.sha256
    assert again.out.read_bytes() == built.out.read_bytes()
    data = again.out.read_bytes()
    assert secret.encode() not in data and b"SECRETKEY" not in data

    later = run_build(
        base_img, binary_tree, tmp_path / "later.img", source_date_epoch=EPOCH + 86400
    )
    assert later.sha256 != built.sha256
    assert Built(later.out).stat("/opt/apiary/apiary")["mtime"] == EPOCH + 86400  # type: ignore[index]


def test_root_partition_grows_when_the_program_does_not_fit(
    base_img: Path, tmp_path: Path, inspect: Callable[[Path], Built]
) -> None:
    tree = make_binary_tree(tmp_path / "apiary", big_bytes=30 * 2**20)  # rootfs has ~20 MiB free
    result = run_build(base_img, tree, tmp_path / "out" / "grown.img")
    assert result.grown_bytes > 0
    image = inspect(result.out)
    assert image.root_size == 24 * 2**20 + result.grown_bytes
    assert (image.root_offset + image.root_size) % (4 * 2**20) == 0
    assert result.out.stat().st_size == image.root_offset + image.root_size
    assert "rootfs:" in image.fsck()
    big = image.cat("/opt/apiary/_internal/big.bin")
    assert (
        hashlib.sha256(big).digest()
        == hashlib.sha256((tree / "_internal/big.bin").read_bytes()).digest()
    )
    assert image.table["id"] == DISK_ID
    # e2fsck -p and resize2fs ran: every time they stamp on the superblock is the build's.
    superblock = subprocess.run(
        ["dumpe2fs", "-h", image.rootfs],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(EPOCH))
    for field in ("Last write time", "Last checked"):
        assert re.search(rf"^{field}:\s+{stamp}$", superblock, re.M), (field, superblock)


def test_single_program_file_is_installed_as_opt_apiary_apiary(
    base_img: Path, binary_tree: Path, tmp_path: Path, inspect: Callable[[Path], Built]
) -> None:
    program = tmp_path / "apiary-onefile"
    shutil.copyfile(binary_tree / "apiary", program)
    os.chmod(program, 0o644)  # the image makes it executable anyway
    image = inspect(run_build(base_img, program, tmp_path / "out" / "one.img").out)
    assert image.stat("/opt/apiary/apiary")["mode"] == 0o755  # type: ignore[index]
    assert image.stat("/opt/apiary/_internal") is None


def test_no_memory_cgroup_leaves_cmdline_untouched(
    base_img: Path, binary_tree: Path, tmp_path: Path, inspect: Callable[[Path], Built]
) -> None:
    out = run_build(base_img, binary_tree, tmp_path / "plain.img", memory_cgroup=False).out
    assert inspect(out).boot_cat("cmdline.txt") == CMDLINE_TXT
