"""Arrow tables from CSV, Parquet and JSON-lines files, read in bounded chunks.

``apiary load`` feeds files of any size to writes without holding a whole file in memory: each
chunk becomes one commit. Progress is reported in bytes of the file on disk, so a compressed
CSV shows how far through the file the reader really is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from apiary.errors import SchemaError, SerializationError

FORMATS = ("csv", "tsv", "parquet", "json")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
_BLOCK_BYTES = 4 << 20  # CSV/JSON parse blocks; also the granularity of type inference
# pyarrow's default null spellings minus NaN's: a float "NaN" is a value, not a missing one.
_CSV_NULLS = [v for v in pa_csv.ConvertOptions().null_values if v.lstrip("-").lower() != "nan"]


def detect_format(path: Path) -> str:
    """The format a file's name announces (``.csv``, ``.csv.gz``, ``.parquet``, ``.jsonl``…)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise SchemaError(
            f"{path}: cannot tell the format from the file name; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return fmt


@dataclass(frozen=True)
class Chunk:
    table: pa.Table
    bytes_done: int  # how far through the file on disk the reader is after this chunk


class FileSource:
    """One input file; ``chunks()`` yields tables of ``chunk_rows`` rows (the last may be fewer)."""

    def __init__(self, path: Path, fmt: str | None = None) -> None:
        if not path.is_file():
            raise SchemaError(f"{path}: no such file")
        self.path = path
        self.format = fmt or detect_format(path)
        if self.format not in FORMATS:
            raise SchemaError(f"unknown format {self.format!r}; use one of {', '.join(FORMATS)}")
        self.size = path.stat().st_size
        if self.size == 0:
            raise SchemaError(f"{path}: the file is empty (not even a header); nothing to load")

    def chunks(self, chunk_rows: int, schema: pa.Schema | None = None) -> Iterator[Chunk]:
        """Chunks of the file; text formats parse columns as ``schema``'s types when given.

        A file with columns but no rows (a CSV header, an empty Parquet file) yields one empty
        chunk, so a load can still create the frame from it.
        """
        try:
            yield from self._chunks(chunk_rows, schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            hint = (
                "the frame's column types"
                if schema is not None
                else "the types guessed from the file's first block; create the frame with an "
                "explicit schema first (Apiary.create_frame) and load again"
            )
            raise SchemaError(
                f"{self.path}: cannot read as {self.format} with {hint}: {exc}"
            ) from exc
        except OSError as exc:  # a cut-short gzip stream or Parquet file, a bad disk
            raise SerializationError(
                f"{self.path}: the file is truncated or corrupt ({exc}). Rows after the last "
                "commit were not loaded: fetch the file again and load the rows still missing"
            ) from exc

    def _chunks(self, chunk_rows: int, schema: pa.Schema | None) -> Iterator[Chunk]:
        # A native file, not a Python one: pyarrow's read-ahead threads then never need the GIL,
        # which aborted the process at exit when a read failed part-way (a truncated .gz).
        with pa.OSFile(str(self.path)) as raw:
            columns, batches = self._batches(raw, schema)
            pending: list[pa.RecordBatch] = []
            rows = 0
            empty = True
            for batch in batches:
                while rows + batch.num_rows >= chunk_rows:  # cut exactly at chunk_rows
                    take = chunk_rows - rows
                    pending.append(batch.slice(0, take))
                    batch = batch.slice(take)
                    yield Chunk(pa.Table.from_batches(pending), raw.tell())
                    pending, rows, empty = [], 0, False
                if batch.num_rows:
                    pending.append(batch)
                    rows += batch.num_rows
            if pending:
                yield Chunk(pa.Table.from_batches(pending), self.size)
            elif empty:
                yield Chunk(_without_nulls(columns).empty_table(), self.size)

    def _batches(
        self, raw: pa.NativeFile, schema: pa.Schema | None
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The file's columns and its batches."""
        if self.format == "parquet":
            parquet = pq.ParquetFile(raw)
            return parquet.schema_arrow, parquet.iter_batches(batch_size=64 * 1024)
        stream: object = raw
        if self.path.suffix.lower() == ".gz":
            stream = pa.CompressedInputStream(raw, "gzip")
        if self.format == "json":
            explicit = pa_json.ParseOptions(explicit_schema=schema) if schema else None
            reader = pa_json.open_json(
                stream,
                read_options=pa_json.ReadOptions(block_size=_BLOCK_BYTES),
                parse_options=explicit,
            )
        else:
            delimiter = "\t" if self.format == "tsv" else ","
            types = {f.name: f.type for f in schema} if schema is not None else None
            reader = pa_csv.open_csv(
                stream,
                read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(delimiter=delimiter),
                convert_options=pa_csv.ConvertOptions(column_types=types, null_values=_CSV_NULLS),
            )
        return reader.schema, iter(reader)


def _without_nulls(schema: pa.Schema) -> pa.Schema:
    """Columns of a file with no rows: a type that could not be guessed (null) becomes string."""
    return pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])
