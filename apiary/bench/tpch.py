"""``apiary bench tpch``: the 22 TPC-H queries on Apiary frames against raw DataFusion and DuckDB.

The data comes from ``tpchgen-cli`` (Parquet) and is loaded into Apiary frames (several cells per
frame). The very cells Apiary wrote are then registered directly in a DataFusion
``SessionContext`` and in DuckDB views, so the Apiary/DataFusion ratio says what Apiary's catalog,
ledger, pruning and name resolution cost on top of the engine it runs on, and the Apiary/DuckDB
ratio compares with another engine reading the same bytes.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.types as pat

from apiary.bench.compare import result_difference
from apiary.bench.tpch_queries import QUERIES, TABLES, has_order_by
from apiary.sdk import Apiary
from apiary.sql.tuning import suited

Progress = Callable[[str, int, int], None]
"""``progress(what, done, total)``: a step is starting; ``done`` of ``total`` steps finished."""

Files = Mapping[str, Sequence[Path]]

INSTALL_HINT = "pip install tpchgen-cli (or pip install 'apiary[bench]')"


class TpchgenMissingError(RuntimeError):
    """``tpchgen-cli`` is not installed."""


def _no_progress(what: str, done: int, total: int) -> None:
    pass


def scale_text(sf: float) -> str:
    """``0.01`` → ``"0.01"``, ``1.0`` → ``"1"``, ``10`` → ``"10"`` (never exponent notation)."""
    if sf <= 0:
        raise ValueError(f"scale factor must be positive, got {sf}")
    return format(Decimal(str(sf)).normalize(), "f")


def box_name(sf: float) -> str:
    """The box a scale factor is loaded into: ``sf0_01``, ``sf1``, ``sf10``."""
    return "sf" + scale_text(sf).replace(".", "_")


def tpchgen_executable() -> str:
    """Path of ``tpchgen-cli``: on PATH, or beside this Python (an unactivated venv)."""
    found = shutil.which("tpchgen-cli")
    if found is None:
        beside = Path(sys.executable).parent / "tpchgen-cli"
        found = str(beside) if beside.exists() else None
    if found is None:
        raise TpchgenMissingError(
            f"tpchgen-cli is not installed; it generates the TPC-H data. Install it: {INSTALL_HINT}"
        )
    return found


def generate(sf: float, out_dir: Path, parts: int = 1) -> dict[str, list[Path]]:
    """TPC-H Parquet files at scale ``sf`` in ``out_dir``: ``{table: [files]}`` for all 8 tables.

    With ``parts > 1`` each table is split into that many files (``<table>/<table>.<n>.parquet``;
    tpchgen writes the tiny ``nation`` and ``region`` tables as one file regardless).
    """
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    exe = tpchgen_executable()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "parquet", "-s", scale_text(sf), f"--output-dir={out_dir}"]
    if parts > 1:
        cmd.append(f"--parts={parts}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed with exit code {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    files = parquet_files(out_dir)
    missing = [t for t in TABLES if not files.get(t)]
    if missing:
        raise RuntimeError(f"tpchgen-cli wrote no Parquet file for {missing} in {out_dir}")
    return files


def parquet_files(data_dir: Path) -> dict[str, list[Path]]:
    """The TPC-H Parquet files in ``data_dir``, in either layout tpchgen-cli writes."""
    data_dir = Path(data_dir)
    files: dict[str, list[Path]] = {}
    for table in TABLES:
        found = sorted((data_dir / table).glob("*.parquet"))
        single = data_dir / f"{table}.parquet"
        if single.is_file():
            found.insert(0, single)
        if found:
            files[table] = found
    return files


# -- loading into Apiary ---------------------------------------------------------------------


def frame_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as a frame can store it: ``string_view`` → ``string``, Parquet field ids gone."""
    fields = []
    for field in schema:
        t = field.type
        if pat.is_string_view(t):
            t = pa.string()
        elif pat.is_binary_view(t):
            t = pa.binary()
        fields.append(pa.field(field.name, t, nullable=field.nullable))
    return pa.schema(fields)


def _batches(paths: Iterable[Path], schema: pa.Schema) -> Iterable[pa.RecordBatch]:
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches():
            yield batch.cast(schema)


def scale_of(files: Files) -> float:
    """The scale factor the files were generated at: ``supplier`` has exactly SF * 10,000 rows."""
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files["supplier"])
    return rows / 10_000


def load(
    ap: Apiary,
    files: Files,
    hive: str = "tpch",
    box: str | None = None,
    cells_per_frame: int = 4,
    *,
    sf: float | None = None,
) -> None:
    """Create one frame per TPC-H table in ``hive.box`` and write it in ``cells_per_frame`` commits.

    ``box`` defaults to ``sf<scale with _>`` (``sf0_01``), the scale being ``sf`` or, when not
    given, read from the data (``scale_of``). Each commit makes at least one cell (Apiary may
    cut a large batch into more), so every frame ends up with several cells unless it has fewer
    rows than ``cells_per_frame``. Memory use stays around one cell: rows stream from the files.
    """
    if cells_per_frame < 1:
        raise ValueError(f"cells_per_frame must be at least 1, got {cells_per_frame}")
    if box is None:
        box = box_name(sf if sf is not None else scale_of(files))
    ap.create_hive(hive)
    ap.create_box(hive, box)
    for table in TABLES:
        paths = [Path(p) for p in files[table]]
        schema = frame_schema(pq.read_schema(paths[0]))
        ap.create_frame(hive, box, table, schema)
        total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
        per_cell = max(1, math.ceil(total / cells_per_frame))
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in _batches(paths, schema):
            while len(batch):
                take = min(len(batch), per_cell - pending_rows)
                pending.append(batch.slice(0, take))
                pending_rows += take
                batch = batch.slice(take)
                if pending_rows == per_cell:
                    ap.write_to_frame(hive, box, table, pa.Table.from_batches(pending, schema))
                    pending, pending_rows = [], 0
        if pending_rows:
            ap.write_to_frame(hive, box, table, pa.Table.from_batches(pending, schema))


# -- baselines ---------------------------------------------------------------------------------


def cell_files(ap: Apiary, hive: str, box: str, root: Path) -> dict[str, list[Path]]:
    """The Parquet cells behind each frame's latest version, as local paths."""
    out: dict[str, list[Path]] = {}
    for table in TABLES:
        frame = ap.frame(hive, box, table)
        out[table] = [root / frame.prefix / c.path for c in frame.snapshot().cells.values()]
    return out


def raw_datafusion(files: Files) -> Any:
    """A DataFusion ``SessionContext``, each table registered straight from its Parquet files."""
    from datafusion import SessionContext

    ctx = SessionContext()
    for table in TABLES:
        paths = [Path(p) for p in files[table]]
        folder = paths[0].parent
        whole_folder = len(paths) > 1 and set(paths) == set(folder.glob("*.parquet"))
        if len(paths) == 1:
            ctx.register_parquet(table, str(paths[0]))
        elif whole_folder:
            ctx.register_parquet(table, str(folder))
        else:  # an arbitrary subset: one DataFrame per file, unioned (≈ a folder scan)
            ctx.register_view(table, _unioned(ctx, paths))
    return ctx


def _unioned(ctx: Any, paths: Sequence[Path]) -> Any:
    """One DataFrame of ``ctx`` reading each of ``paths``, unioned."""
    frame = ctx.read_parquet(str(paths[0]))
    for path in paths[1:]:
        frame = frame.union(ctx.read_parquet(str(path)))
    return frame


def tuned_datafusion(files: Files, options: Mapping[str, str]) -> Any:
    """Raw DataFusion with the options Apiary's bees use (``options``): what Apiary's own cost
    is measured against. Tables are made in the context that runs them, since a Parquet table
    keeps some options of the context that made it."""
    from datafusion import SessionConfig, SessionContext

    config = SessionConfig()
    for key, value in options.items():
        config = config.set(key, value)
    ctx = SessionContext(config)
    for table in TABLES:
        ctx.register_view(table, _unioned(ctx, [Path(p) for p in files[table]]))
    return ctx


class TunedDataFusion:
    """Raw DataFusion with Apiary's options, per query as Apiary picks them: the bees' own
    and, where a query's plan shape suits more (``sql.tuning``), those too. Each query's choice
    is made on its first (untimed) run."""

    def __init__(self, files: Files, options: Mapping[str, str]) -> None:
        self.files, self.options = files, dict(options)
        self._contexts: dict[frozenset[tuple[str, str]], Any] = {}
        self._chosen: dict[str, frozenset[tuple[str, str]]] = {}

    def _context(self, extra: frozenset[tuple[str, str]]) -> Any:
        if extra not in self._contexts:
            self._contexts[extra] = tuned_datafusion(self.files, {**self.options, **dict(extra)})
        return self._contexts[extra]

    def run(self, query: str) -> pa.Table:
        if query not in self._chosen:
            plan = self._context(frozenset()).sql(query).optimized_logical_plan()
            self._chosen[query] = frozenset(suited(plan).options.items())
        return run_datafusion(self._context(self._chosen[query]), query)


def duckdb_available() -> bool:
    return importlib.util.find_spec("duckdb") is not None


def duckdb_connection(files: Files) -> Any:
    """An in-memory DuckDB connection with one view per table over the same Parquet files."""
    if not duckdb_available():
        raise ModuleNotFoundError(
            "duckdb is not installed; install it with pip install duckdb "
            "(or pip install 'apiary[bench]')"
        )
    import duckdb

    con = duckdb.connect()
    for table in TABLES:
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files[table])
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}])")
    return con


def run_datafusion(ctx: Any, query: str) -> pa.Table:
    return ctx.sql(query).to_arrow_table()


def run_duckdb(con: Any, query: str) -> pa.Table:
    rel = con.sql(query)
    out = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


def use_box(ap: Apiary, hive: str, box: str) -> None:
    """Point ``ap.sql`` at ``hive.box`` so the queries' bare table names resolve to frames."""
    ap.sql(f"USE HIVE {hive}")
    ap.sql(f"USE BOX {box}")


# -- the benchmark -----------------------------------------------------------------------------


def _geomean(ratios: Iterable[float]) -> float | None:
    values = [r for r in ratios if r > 0]
    if not values:
        return None
    return round(math.exp(sum(math.log(r) for r in values) / len(values)), 3)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:500] + "..."


def run(
    sf: float = 1.0,
    repeats: int = 3,
    progress: Progress = _no_progress,
    *,
    cells_per_frame: int = 4,
    queries: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Generate, load and time every query on each engine; JSON-serialisable results.

    Per query: the median seconds of ``repeats`` interleaved runs (after one untimed run each)
    for Apiary (``ap.sql``), raw DataFusion with its defaults, raw DataFusion with Apiary's
    options (``datafusion_tuned``: Apiary's own cost) and DuckDB (when installed), the ratios
    ``apiary_s / baseline_s`` (above 1: Apiary is slower),
    and whether Apiary's rows equal DataFusion's (``apiary.bench.compare``). A query that fails on
    one engine is reported with its error and left out of that engine's geometric mean.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    numbers = list(queries) if queries is not None else sorted(QUERIES)
    total = len(numbers) + 2
    notes: list[str] = []
    with_duckdb = duckdb_available()
    if not with_duckdb:
        notes.append("DuckDB skipped: duckdb is not installed (pip install 'apiary[bench]').")
    results: dict[str, Any] = {
        "sf": sf,
        "repeats": repeats,
        "cells_per_frame": cells_per_frame,
        "versions": {
            name: _version(name) for name in ("apiary", "datafusion", "duckdb", "tpchgen-cli")
        },
        "notes": notes,
    }
    with tempfile.TemporaryDirectory(prefix="apiary-tpch-") as tmp:
        workdir = Path(tmp)
        progress(f"generating TPC-H SF {scale_text(sf)}", 0, total)
        started = time.perf_counter()
        files = generate(sf, workdir / "parquet")
        generate_s = time.perf_counter() - started

        progress("loading frames", 1, total)
        hive, box = "tpch", box_name(sf)
        with Apiary("tpch", str(workdir / "apiary")) as ap:
            started = time.perf_counter()
            load(ap, files, hive, box, cells_per_frame)
            load_s = time.perf_counter() - started
            frames = {t: ap.get_frame(hive, box, t) for t in TABLES}
            results["setup"] = {
                "generate_s": round(generate_s, 3),
                "load_s": round(load_s, 3),
                "tables": {
                    t: {"rows": f["rows"], "cells": f["cells"], "bytes": f["bytes"]}
                    for t, f in frames.items()
                },
            }
            use_box(ap, hive, box)
            # The baselines read Apiary's own cells, so the ratios measure Apiary's overhead
            # rather than differences in file layout or compression.
            cells = cell_files(ap, hive, box, workdir / "apiary")
            ctx = raw_datafusion(cells)
            con = duckdb_connection(cells) if with_duckdb else None
            tuned = TunedDataFusion(cells, ap.pool.bees[0].options(partitions=ap.pool.size))
            engines: dict[str, Callable[[str], pa.Table]] = {
                "apiary": ap.sql,
                "datafusion": lambda q: run_datafusion(ctx, q),
                "datafusion_tuned": tuned.run,
            }
            if con is not None:
                engines["duckdb"] = lambda q: run_duckdb(con, q)
            rows = []
            for done, number in enumerate(numbers, start=2):
                progress(f"Q{number}", done, total)
                rows.append(_run_query(number, engines, repeats))
            if con is not None:
                con.close()
        progress("done", total, total)

    results["queries"] = rows
    results["geomean"] = {
        f"apiary_over_{base}": _geomean(
            r[f"apiary_over_{base}"] for r in rows if r.get(f"apiary_over_{base}") is not None
        )
        for base in BASELINES
    }
    results["all_match_datafusion"] = all(r["matches_datafusion"] for r in rows)
    return results


BASELINES = ("datafusion", "datafusion_tuned", "duckdb")


def _run_query(
    number: int, engines: Mapping[str, Callable[[str], pa.Table]], repeats: int
) -> dict[str, Any]:
    """One query on every engine: a first run each (its result is compared, its time not
    counted: caches warm), then ``repeats`` rounds, each engine once per round in an order that
    rotates, so none always runs right after another (DuckDB's threads, the page cache)."""
    query = QUERIES[number]
    row: dict[str, Any] = {"query": number}
    outputs: dict[str, pa.Table] = {}
    errors: dict[str, str] = {}
    times: dict[str, list[float]] = {}
    for name, engine in engines.items():
        try:
            outputs[name] = engine(query)
        except Exception as exc:  # one engine failing one query must not end the run
            errors[name] = _error(exc)
    names = [name for name in engines if name in outputs]
    for round_ in range(repeats):
        turn = round_ % len(names) if names else 0
        for name in names[turn:] + names[:turn]:
            if name in errors:
                continue
            started = time.perf_counter()
            try:
                engines[name](query)
            except Exception as exc:
                errors[name] = _error(exc)
                continue
            times.setdefault(name, []).append(time.perf_counter() - started)
    for name in ("apiary", *BASELINES):
        seconds = times.get(name) if name not in errors else None
        row[f"{name}_s"] = round(statistics.median(seconds), 4) if seconds else None
    row["rows"] = outputs["datafusion"].num_rows if "datafusion" in outputs else None
    for base in BASELINES:
        a, b = row.get("apiary_s"), row.get(f"{base}_s")
        row[f"apiary_over_{base}"] = round(a / b, 3) if a and b else None
    if "apiary" in outputs and "datafusion" in outputs:
        difference = result_difference(
            outputs["apiary"], outputs["datafusion"], ordered=has_order_by(query)
        )
        row["matches_datafusion"] = difference is None
        row["difference"] = difference
    else:
        row["matches_datafusion"] = False
        row["difference"] = "not compared: a run failed"
    row["errors"] = errors
    return row
