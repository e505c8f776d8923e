"""``apiary load``: CSV, Parquet and JSON-lines files into a frame, with progress."""

from __future__ import annotations

from pathlib import Path

import click
import pyarrow as pa
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from apiary.cells.files import FORMATS, FileSource
from apiary.cli.common import console, frame_argument, split_frame, storage_options
from apiary.errors import EntityNotFoundError
from apiary.sdk import Apiary


@click.command()
@frame_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@storage_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Input format (default: from each file's extension; .gz is decompressed).",
)
@click.option(
    "--partition-by",
    multiple=True,
    metavar="COLUMN",
    help="Partition columns when the frame is created by this load (repeatable).",
)
@click.option(
    "--chunk-rows",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per commit: bounds memory on a small machine.",
)
@click.option(
    "--replace", is_flag=True, help="Overwrite the frame's contents with the first chunk."
)
def load(
    frame: str,
    files: tuple[Path, ...],
    storage: str | None,
    name: str,
    fmt: str | None,
    partition_by: tuple[str, ...],
    chunk_rows: int,
    replace: bool,
) -> None:
    """Load FILES (CSV, TSV, Parquet, JSON lines) into FRAME.

    A missing hive, box or frame is created, the frame's schema taken from the
    first file (column types as Arrow infers them). Into an existing frame, text
    files are parsed with the frame's own column types. Each chunk of
    --chunk-rows rows is one commit, so a file larger than memory loads in
    pieces; if a load stops part-way, the chunks already committed stay and the
    output says which were written.
    """
    hive, box, frame_name = split_frame(frame)
    sources = [FileSource(path, fmt) for path in files]  # every file checked before any write
    total_bytes = sum(s.size for s in sources)
    rows = commits = 0
    first_version: int | None = None
    with Apiary(name, storage) as ap, _progress() as progress:
        schema = _existing_schema(ap, hive, box, frame_name, partition_by)
        bar = progress.add_task("loading", total=total_bytes)
        done_before = 0
        for source in sources:
            progress.update(bar, description=source.path.name)
            for chunk in source.chunks(chunk_rows, schema):
                if schema is None:
                    _create(ap, hive, box, frame_name, chunk.table.schema, partition_by)
                    schema = ap.frame(hive, box, frame_name).schema
                write = ap.overwrite_frame if replace and commits == 0 else ap.write_to_frame
                result = write(hive, box, frame_name, chunk.table)
                first_version = first_version if first_version is not None else result["version"]
                rows += result["rows_written"]
                commits += 1
                progress.update(bar, completed=done_before + chunk.bytes_done)
            done_before += source.size
            progress.update(bar, completed=done_before)
        info = ap.get_frame(hive, box, frame_name)
    versions = (
        "no commits" if first_version is None else f"versions {first_version} to {info['version']}"
    )
    console.print(
        f"{frame}: loaded {rows:,} rows from {len(sources)} file(s) in {commits} commit(s) "
        f"({versions}); the frame now holds {info['rows']:,} rows in {info['cells']} cells."
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _existing_schema(
    ap: Apiary, hive: str, box: str, frame: str, partition_by: tuple[str, ...]
) -> pa.Schema | None:
    try:
        handle = ap.frame(hive, box, frame)
    except EntityNotFoundError:
        return None
    if partition_by and list(partition_by) != list(handle.partition_by):
        raise click.UsageError(
            f"{hive}.{box}.{frame} exists, partitioned by {handle.partition_by or 'nothing'}; "
            "--partition-by only applies when the load creates the frame"
        )
    return handle.schema


def _create(
    ap: Apiary, hive: str, box: str, frame: str, schema: pa.Schema, partition_by: tuple[str, ...]
) -> None:
    ap.create_hive(hive)
    ap.create_box(hive, box)
    ap.create_frame(hive, box, frame, schema, partition_by=list(partition_by))
    console.print(f"created {hive}.{box}.{frame} from the first file's columns")
