"""Fixtures: synthetic Raspberry Pi OS bases (.img, .img.xz, broken ones) and Apiary binaries."""

from __future__ import annotations

import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_images import (
    BaseSpec,
    Built,
    make_base,
    make_binary_tree,
    make_tarball,
    need_tools,
)


@pytest.fixture(scope="session")
def image_tools() -> None:
    need_tools()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory, image_tools: None) -> Path:
    return tmp_path_factory.mktemp("bases")


@pytest.fixture(scope="session")
def base_img(images: Path) -> Path:
    return make_base(images / "raspios-lite-arm64.img")


@pytest.fixture(scope="session")
def base_xz(base_img: Path) -> Path:
    out = base_img.with_name(base_img.name + ".xz")
    out.write_bytes(lzma.compress(base_img.read_bytes(), preset=0))
    return out


@pytest.fixture(scope="session")
def make_bad_base(images: Path) -> Callable[..., Path]:
    def make(name: str, **spec: object) -> Path:
        path = images / f"{name}.img"
        return path if path.exists() else make_base(path, BaseSpec(**spec))  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def binary_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_binary_tree(tmp_path_factory.mktemp("bin") / "apiary")


@pytest.fixture(scope="session")
def binary_tarball(binary_tree: Path) -> Path:
    return make_tarball(binary_tree, binary_tree.parent / "apiary-0.1.0-linux-aarch64.tar.gz")


@pytest.fixture(scope="session")
def inspect() -> Callable[[Path], Built]:
    return Built
