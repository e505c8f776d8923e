"""``apiary sql`` (one statement) and ``apiary shell`` (an interactive prompt with history)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.table import Table
from rich.text import Text

from apiary.cli.common import console, err_console, open_apiary, storage_options
from apiary.errors import ApiaryError
from apiary.sdk import Apiary
from apiary.sql import history
from apiary.swarm.distribute import describe
from apiary.units import count

FORMATS = ("table", "csv", "json", "parquet")


def render(ap: Apiary, result: pa.Table, fmt: str, max_rows: int, output: Path | None) -> None:
    if fmt == "table":
        console.print(_rich_table(result, max_rows))
        _footer(ap, result, max_rows)
        return
    if fmt == "parquet":
        if output is None:
            raise click.UsageError("--format parquet needs --output FILE")
        pq.write_table(result, output)
        return
    if fmt == "csv":
        buffer = io.BytesIO()
        pacsv.write_csv(result, buffer)
        text = buffer.getvalue().decode()
    else:
        lines = (
            json.dumps(_finite(row), default=str, allow_nan=False) for row in result.to_pylist()
        )
        text = "\n".join(lines) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)


def _finite(value: Any) -> Any:
    """NaN and ±Infinity as null: JSON has no spelling for them (Python's would be invalid)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _rich_table(result: pa.Table, max_rows: int) -> Table:
    view = Table(*result.column_names, header_style="bold")
    for row in result.slice(0, max_rows).to_pylist():
        # Text, not markup: values such as "timestamp[us, tz=UTC]" must print as they are.
        view.add_row(*(Text("NULL" if v is None else str(v)) for v in row.values()))
    return view


def _footer(ap: Apiary, result: pa.Table, max_rows: int) -> None:
    stats = ap.last_query
    shown = f" (first {max_rows} shown)" if result.num_rows > max_rows else ""
    rows = count(result.num_rows, "row")
    console.print(f"{rows}{shown} in {stats.seconds * 1000:.0f} ms", style="dim")
    for frame in stats.frames:
        console.print(frame.describe(), style="dim", highlight=False)
    if stats.tuning:  # DataFusion options this query's shape chose (sql.tuning)
        console.print(stats.tuning, style="dim", highlight=False)
    shared = describe(stats.distribution)
    if shared:
        console.print(shared, style="dim", highlight=False)


@click.command()
@click.argument("query")
@storage_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to this file instead of the screen.",
)
@click.option("--max-rows", default=100, show_default=True, help="Rows shown by --format table.")
@click.option(
    "--profile",
    is_flag=True,
    help="Also print where the time went: catalog, planning, ledger, pruning, registration, "
    "execution, result (on stderr).",
)
def sql(
    query: str,
    storage: str | None,
    name: str,
    fmt: str,
    output: Path | None,
    max_rows: int,
    profile: bool,
) -> None:
    """Run one SQL statement and print the result.

    Frames are named hive.box.frame; time travel is "frame@v3" (quoted).
    Apiary's own commands work too: SHOW HIVES, DESCRIBE hive.box.frame, ...
    """
    with open_apiary(name, storage, create=False) as ap:
        render(ap, ap.sql(query), fmt, max_rows, output)
        if profile:
            _profile(ap)


PHASES = {
    "catalog": "catalog read (registry)",
    "planning": "planning against stand-ins (names, filters)",
    "ledger": "ledger read (pinned snapshots)",
    "pruning": "cell pruning",
    "registration": "bee context and cell registration",
    "execution": "DataFusion planning and execution",
    "bee": "  the bee task in all (registration + execution + hand-over)",
    "result": "result conversion",
}


def _profile(ap: Apiary) -> None:
    """Milliseconds per phase of the last query (QueryStats.phases), on stderr."""
    stats = ap.last_query
    view = Table("phase", "ms", title="where the time went", header_style="bold")
    for key, label in PHASES.items():
        if key in stats.phases:
            view.add_row(label, f"{stats.phases[key] * 1000:.1f}")
    view.add_row("total", f"{stats.seconds * 1000:.1f}")
    err_console.print(view)


HELP = """Statements end with ';' and may span lines. Apiary commands: USE HIVE h, USE BOX b,
SHOW HIVES, SHOW BOXES [IN h], SHOW FRAMES [IN h.b], DESCRIBE frame, EXPLAIN [ANALYZE] query.
Time travel: SELECT * FROM "frame@v3". Shell commands: .help, .quit (or Ctrl-D)."""


@click.command()
@storage_options
@click.option("--max-rows", default=50, show_default=True, help="Rows shown per result.")
def shell(storage: str | None, name: str, max_rows: int) -> None:
    """Interactive SQL prompt with history (kept in ~/.apiary/sql_history).

    Reading a script from a pipe, it runs every statement and exits 1 if any of them failed.
    """
    history_file = _start_history()
    interactive = sys.stdin.isatty()
    failed = 0
    with open_apiary(name, storage, create=False) as ap:
        if interactive:
            console.print(f"apiary shell on {ap.storage.location}. .help for help, Ctrl-D quits.")
        for statement in _statements(ap, interactive):
            if statement in (".quit", ".exit", "exit", "quit"):
                break
            if statement == ".help":
                console.print(HELP, highlight=False)
                continue
            if history_file is not None:
                _remember(history_file, statement)
            try:
                render(ap, ap.sql(statement), "table", max_rows, None)
            except ApiaryError as exc:
                # Text, not markup: brackets in a message ("[credentials]") print as they are.
                err_console.print(Text.assemble(("error: ", "bold red"), str(exc)))
                failed += 1
    if failed and not interactive:
        # A script's caller (CI, cron, `make`) must see that it did not all run.
        err_console.print(f"{count(failed, 'statement')} failed")
        sys.exit(1)


def _statements(ap: Apiary, interactive: bool):
    """Yield complete statements: lines are gathered until one ends with ';'."""
    buffer: list[str] = []
    while True:
        where = ".".join(p for p in ap.using if p)
        prompt = f"apiary{':' + where if where else ''}> " if not buffer else "   ...> "
        try:
            line = input(prompt if interactive else "")
        except EOFError:
            break
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            yield stripped
            continue
        if not stripped and not buffer:
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            yield "\n".join(buffer).strip()
            buffer = []
    if buffer and "".join(buffer).strip():
        yield "\n".join(buffer).strip()


def _start_history() -> Path | None:
    path = history.history_path()
    try:
        import readline
    except ImportError:  # not on every platform; history then lives only in the file
        readline = None  # type: ignore[assignment]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError:
        return None
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(path)
    return path


def _remember(path: Path, statement: str) -> None:
    line = history.remember(statement, path)
    try:
        import readline

        if line is not None:
            readline.add_history(line)
    except ImportError:
        pass
