"""``apiary-image build``: a flashable Raspberry Pi OS image with Apiary preinstalled."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

from image.errors import ImageError

console = Console(stderr=True, highlight=False)


class Steps:
    """Prints each step as it starts and how long the previous one took."""

    def __init__(self) -> None:
        self._started: float | None = None

    def __call__(self, step: str) -> None:
        self.done()
        console.print(f"[bold]•[/] {step} …")
        self._started = time.monotonic()

    def done(self) -> None:
        if self._started is not None:
            console.print(f"  [dim]{time.monotonic() - self._started:.1f} s[/]")
        self._started = None


@click.group()
def main() -> None:
    """Build Raspberry Pi OS images with Apiary preinstalled (see image/README.md)."""


@main.command()
@click.option(
    "--base",
    required=True,
    type=click.Path(path_type=Path),
    help="Raspberry Pi OS Lite arm64 image (.img or .img.xz).",
)
@click.option(
    "--binary",
    required=True,
    type=click.Path(path_type=Path),
    help="The apiary program: dist/apiary/ folder, release .tar.gz, or one executable.",
)
@click.option(
    "--out",
    default="apiary.img",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Image to write; <out>.sha256 goes next to it.",
)
@click.option(
    "--source-date-epoch",
    type=int,
    default=None,
    help="Time on every file written (default $SOURCE_DATE_EPOCH, else 2024-01-01).",
)
@click.option(
    "--memory-cgroup/--no-memory-cgroup",
    default=True,
    show_default=True,
    help="Enable the memory cgroup in cmdline.txt, so the unit's MemoryMax is enforced.",
)
def build(
    base: Path, binary: Path, out: Path, source_date_epoch: int | None, memory_cgroup: bool
) -> None:
    """Write OUT: BASE with Apiary installed, its service enabled, apiary.toml on the boot
    partition. No root, mounts or loop devices; the same inputs give the same bytes."""
    from image import config
    from image.build import build as run_build

    steps = Steps()
    try:
        settings = config.load(
            base=base,
            binary=binary,
            out=out,
            source_date_epoch=source_date_epoch,
            memory_cgroup=memory_cgroup,
        )
        result = run_build(settings, steps)
    except ImageError as exc:
        steps.done()
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    steps.done()
    grown = f", root partition grown by {result.grown_bytes / 2**20:,.0f} MiB" * bool(
        result.grown_bytes
    )
    console.print(
        f"[green]✓[/] {result.out} ({result.size / 2**30:.2f} GiB{grown}) built in "
        f"{result.seconds:.1f} s; user apiary uid {result.uid}"
    )
    click.echo(f"{result.sha256}  {result.out.name}")


if __name__ == "__main__":
    main()
