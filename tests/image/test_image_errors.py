"""Wrong inputs fail before any work, with a message that says what was found and what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_images import make_binary_tree

from image import config, elf
from image.build import build
from image.errors import ImageError

pytestmark = pytest.mark.image


def build_into(out_dir: Path, base: Path, binary: Path) -> None:
    out_dir.mkdir(exist_ok=True)
    build(config.load(base=base, binary=binary, out=out_dir / "apiary.img"))


def assert_fails_cleanly(tmp_path: Path, base: Path, binary: Path, match: str) -> ImageError:
    out_dir = tmp_path / "out"
    with pytest.raises(ImageError, match=match) as err:
        build_into(out_dir, base, binary)
    assert list(out_dir.iterdir()) == []  # no image, no .partial, no work folder left behind
    return err.value


def test_not_a_disk_image(tmp_path: Path, binary_tree: Path, image_tools: None) -> None:
    junk = tmp_path / "photo.img"
    junk.write_bytes(os.urandom(3 * 2**20))
    assert_fails_cleanly(tmp_path, junk, binary_tree, "not a disk image.*Raspberry Pi OS Lite")


def test_xz_that_is_not_an_image(tmp_path: Path, binary_tree: Path, image_tools: None) -> None:
    import lzma

    junk = tmp_path / "notes.img.xz"
    junk.write_bytes(lzma.compress(b"hello" * 1000))
    assert_fails_cleanly(tmp_path, junk, binary_tree, "not a disk image")


def test_wrong_partition_layout(
    tmp_path: Path, binary_tree: Path, make_bad_base: Callable[..., Path]
) -> None:
    base = make_bad_base("three-partitions", partitions=3)
    assert_fails_cleanly(tmp_path, base, binary_tree, r"has 3 partition\(s\).*have two")


def test_missing_config_txt(
    tmp_path: Path, binary_tree: Path, make_bad_base: Callable[..., Path]
) -> None:
    base = make_bad_base("no-config", boot_files=("cmdline.txt",))
    assert_fails_cleanly(tmp_path, base, binary_tree, "boot partition of .* has no config.txt")


def test_32_bit_base(tmp_path: Path, binary_tree: Path, make_bad_base: Callable[..., Path]) -> None:
    base = make_bad_base("armhf", arch_libs="arm-linux-gnueabihf")
    assert_fails_cleanly(tmp_path, base, binary_tree, "32-bit Raspberry Pi OS.*64-bit")


def test_base_already_built(tmp_path: Path, base_img: Path, binary_tree: Path) -> None:
    build_into(tmp_path / "first", base_img, binary_tree)
    again = tmp_path / "first" / "apiary.img"
    assert_fails_cleanly(tmp_path, again, binary_tree, "already has apiary.toml")


@pytest.mark.parametrize(("machine", "found"), [(62, "x86-64"), (40, "ARM")])
def test_binary_of_the_wrong_architecture(
    tmp_path: Path, base_img: Path, machine: int, found: str
) -> None:
    tree = make_binary_tree(tmp_path / "apiary", machine=machine)
    error = assert_fails_cleanly(tmp_path, base_img, tree, f"built for {found}")
    assert "just binary" in str(error) and "arm64" in str(error)


def test_host_program_is_refused_unless_the_host_is_arm64(tmp_path: Path, base_img: Path) -> None:
    host = elf.parse_header(elf.read_header(Path("/bin/true")))
    if host is not None and host.is_arm64:
        pytest.skip("this machine is arm64: /bin/true would be a valid program")
    program = tmp_path / "true"
    shutil.copyfile("/bin/true", program)
    assert_fails_cleanly(tmp_path, base_img, program, "built for")


def test_tarball_with_the_wrong_layout(tmp_path: Path, base_img: Path) -> None:
    import tarfile

    tree = make_binary_tree(tmp_path / "dist")
    tarball = tmp_path / "apiary-0.1.0-linux-aarch64.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname="dist")
    assert_fails_cleanly(tmp_path, base_img, tarball, "outside the top folder apiary/")


def test_missing_binary_and_folder_without_program(tmp_path: Path, base_img: Path) -> None:
    assert_fails_cleanly(tmp_path, base_img, tmp_path / "dist", "does not exist.*just binary")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_fails_cleanly(tmp_path, base_img, empty, "has no `apiary` program")


def test_out_same_as_base(tmp_path: Path, base_img: Path, binary_tree: Path) -> None:
    copy = tmp_path / "base.img"
    shutil.copyfile(base_img, copy)
    with pytest.raises(ImageError, match="out is the base image"):
        config.load(base=copy, binary=binary_tree, out=copy)


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from image.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_cli_reports_errors_in_one_line_with_status_1(tmp_path: Path, base_img: Path) -> None:
    tree = make_binary_tree(tmp_path / "apiary", machine=62)
    done = _cli("build", "--base", base_img, "--binary", tree, "--out", tmp_path / "x.img")
    assert done.returncode == 1
    assert "error:" in done.stderr and "x86-64" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_builds_and_prints_the_checksum(
    tmp_path: Path, base_img: Path, binary_tree: Path
) -> None:
    out = tmp_path / "apiary.img"
    done = _cli("build", "--base", base_img, "--binary", binary_tree, "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tmp_path / "apiary.img.sha256").read_text()
    assert "Checking the inputs" in done.stderr and "built in" in done.stderr
