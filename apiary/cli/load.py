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

from apiary.attach import DeltaTableSource
from apiary.cells.files import FORMATS, FileSource
from apiary.cli.common import (
    console,
    err_console,
    frame_argument,
    open_apiary,
    split_frame,
    storage_options,
)
from apiary.errors import ApiaryError, EntityNotFoundError
from apiary.sdk import Apiary
from apiary.units import count


@click.command()
@frame_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
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
    """Load FILES (CSV, TSV, Parquet, JSON lines, or Delta table folders) into FRAME.

    A missing hive, box or frame is created, the frame's schema taken from the
    first file (column types as Arrow infers them). Into an existing frame, text
    files are parsed with the frame's own column types. Each chunk of
    --chunk-rows rows is one commit, so a file larger than memory loads in
    pieces; if a load stops part-way, the chunks already committed stay and the
    output says which were written.
    """
    hive, box, frame_name = split_frame(frame)
    # Every input is checked before any write; a folder holding _delta_log/ is a Delta table.
    sources: list[FileSource | DeltaTableSource] = [
        DeltaTableSource(path) if (path / "_delta_log").is_dir() else FileSource(path, fmt)
        for path in files
    ]
    total_bytes = sum(s.size for s in sources)
    rows = commits = 0
    first_version = last_version = None
    columns_only: tuple[pa.Table, FileSource] | None = None  # a file with columns and no rows
    with open_apiary(name, storage, create=True) as ap, _progress() as progress:
        schema = _existing_schema(ap, hive, box, frame_name, partition_by)
        bar = progress.add_task("loading", total=total_bytes)
        done_before = 0
        try:
            for source in sources:
                progress.update(bar, description=source.path.name)
                for chunk in source.chunks(chunk_rows, schema):
                    if schema is None and chunk.table.num_rows == 0:
                        # Columns but no rows: create from them only if no later file has rows.
                        columns_only = columns_only or (chunk.table, source)
                        continue
                    if schema is None:
                        _create(ap, hive, box, frame_name, chunk.table, source, partition_by)
                        schema = ap.frame(hive, box, frame_name).schema
                    if chunk.table.num_rows == 0 and not (replace and commits == 0):
                        continue  # a header without rows: nothing to commit
                    write = ap.overwrite_frame if replace and commits == 0 else ap.write_to_frame
                    result = write(hive, box, frame_name, chunk.table)
                    first_version = (
                        first_version if first_version is not None else result["version"]
                    )
                    last_version = result["version"]
                    rows += result["rows_written"]
                    commits += 1
                    progress.update(bar, completed=done_before + chunk.bytes_done)
                done_before += source.size
                progress.update(bar, completed=done_before)
            if schema is None and columns_only is not None:
                _create(ap, hive, box, frame_name, *columns_only, partition_by)
        except ApiaryError:
            if commits:  # the load docs promise: committed chunks stay, and we say which
                err_console.print(
                    f"{frame}: {count(rows, 'row')} in {count(commits, 'commit')} were loaded "
                    "before the error "
                    f"(versions {first_version} to {last_version}); they stay",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            raise
        info = ap.get_frame(hive, box, frame_name)
    versions = (
        "no commits" if first_version is None else f"versions {first_version} to {info['version']}"
    )
    console.print(
        f"{frame}: loaded {count(rows, 'row')} from {count(len(sources), 'file')} in "
        f"{count(commits, 'commit')} ({versions}); the frame now holds "
        f"{count(info['rows'], 'row')} in {count(info['cells'], 'cell')}."
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
    ap: Apiary,
    hive: str,
    box: str,
    frame: str,
    first: pa.Table,
    source: FileSource | DeltaTableSource,
    partition_by: tuple[str, ...],
) -> None:
    ap.create_hive(hive)
    ap.create_box(hive, box)
    ap.create_frame(hive, box, frame, first.schema, partition_by=list(partition_by))
    if first.num_rows or source.format in ("parquet", "delta"):
        console.print(f"created {hive}.{box}.{frame} from the first file's columns")
        return
    console.print(
        f"created {hive}.{box}.{frame} from the header of {source.path.name}, which has no rows "
        "to guess types from: every column without a known type is a string. To load typed "
        "data later, drop it and create it with a schema (Apiary.create_frame).",
        highlight=False,
    )
