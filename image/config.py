"""The build's inputs, typed and checked before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from image.errors import ImageError

# 2024-01-01T00:00:00Z: every timestamp the builder writes, unless SOURCE_DATE_EPOCH says
# otherwise. Fixed rather than "now", so two builds of the same inputs are the same bytes.
DEFAULT_SOURCE_DATE_EPOCH = 1704067200


def epoch_from_env() -> int:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_SOURCE_DATE_EPOCH
    if not raw.isdigit():
        raise ImageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {raw!r}")
    return int(raw)


class BuildConfig(BaseModel):
    """``base`` Raspberry Pi OS image → ``out`` image with the ``binary`` installed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Path = Field(description="Raspberry Pi OS Lite arm64 image, .img or .img.xz")
    binary: Path = Field(description="onedir folder, release tarball or single program")
    out: Path = Field(description="the image to write (.img); a .sha256 file goes next to it")
    source_date_epoch: int = Field(
        default_factory=epoch_from_env,
        ge=315532800,  # 1980-01-01: FAT cannot store anything earlier
        le=4102444800,  # 2100-01-01: beyond FAT's and ext4's comfortable range
        description="the time written on every file (SOURCE_DATE_EPOCH)",
    )
    memory_cgroup: bool = Field(
        default=True,
        description="add cgroup_enable=memory to cmdline.txt so MemoryMax is enforced",
    )

    @field_validator("base")
    @classmethod
    def _base_is_a_file(cls, base: Path) -> Path:
        if not base.is_file():
            raise ValueError(f"{base} does not exist or is not a file")
        return base

    @field_validator("out")
    @classmethod
    def _out_is_an_img(cls, out: Path) -> Path:
        if out.suffix != ".img":
            raise ValueError(f"{out}: name the output image *.img (it is written uncompressed)")
        if out.exists() and not out.is_file():
            raise ValueError(f"{out} exists and is not a file")
        if not out.parent.is_dir():
            raise ValueError(f"the output folder {out.parent} does not exist; create it first")
        return out

    @model_validator(mode="after")
    def _out_is_not_an_input(self) -> BuildConfig:
        out = self.out.resolve()
        if self.base.exists() and out == self.base.resolve():
            raise ValueError("out is the base image: write the new image to another file")
        if self.binary.exists() and (
            out == self.binary.resolve() or self.binary.resolve() in out.parents
        ):
            raise ValueError("out is inside the binary: write the image somewhere else")
        return self


def load(**values: object) -> BuildConfig:
    """A ``BuildConfig``, or an ``ImageError`` naming each bad field (as its CLI option)."""
    try:
        return BuildConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"--{field.replace('_', '-')}: {message}" if field else message)
        raise ImageError("; ".join(problems)) from None
