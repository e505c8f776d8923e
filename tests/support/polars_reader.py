"""Polars reading Delta tables in a process of its own.

After one read from S3, Polars keeps two runtime threads ticking (~2 % of a core each) for the
rest of the process's life. Textual's pilot waits until the whole process is idle after each
key press, so every TUI test that ran later in the same pytest process waited up to a second
per key (a 6 s test took 48-80 s). Reads from this process's worker die with it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import pyarrow as pa


def _read(uri: str, version: int | None, options: dict[str, str] | None) -> bytes:
    import polars as pl

    table = pl.read_delta(uri, version=version, storage_options=options).to_arrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class PolarsReader:
    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self._pool = pool

    def read_delta(
        self, uri: str, version: int | None = None, options: dict[str, str] | None = None
    ) -> pa.Table:
        data = self._pool.submit(_read, uri, version, options).result(timeout=120)
        return pa.ipc.open_stream(data).read_all()


@contextmanager
def polars_reader() -> Iterator[PolarsReader]:
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield PolarsReader(pool)
    finally:
        pool.shutdown(cancel_futures=True)
