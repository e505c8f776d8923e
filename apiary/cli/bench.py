"""``apiary bench``: benchmarks that report ratios against baselines run in the same process."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from apiary.cli.bench_tpch import tpch
from apiary.cli.common import console


@contextlib.contextmanager
def spinner(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A one-line progress display; yields the function that says what is running now."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("starting")
        yield lambda what: bar.update(task, description=what)


@contextlib.contextmanager
def missing_extra() -> Iterator[None]:
    """A benchmark whose optional tools are absent (the frozen binary has no moto) says so."""
    from apiary.bench.tpch import TpchgenMissingError

    try:
        yield
    except (ModuleNotFoundError, TpchgenMissingError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def bench() -> None:
    """Measure Apiary against raw baselines on this machine."""


@bench.command("write")
@click.option("--rows", default=2_000_000, show_default=True, help="Rows in the test table.")
@click.option("--repeats", default=3, show_default=True, help="Runs per side; medians shown.")
@click.option("--commits", default=50, show_default=True, help="Commits per concurrent writer.")
@click.option(
    "--writers", default="1,4,8", show_default=True, help="Concurrent writer counts to try."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_write(rows: int, repeats: int, commits: int, writers: str, as_json: bool) -> None:
    """Write throughput vs bare pyarrow.parquet, and commits/s under concurrency."""
    from apiary.bench import write

    counts = tuple(int(w) for w in writers.split(",") if w.strip())
    with spinner(as_json) as progress:
        results = write.run(rows, repeats, counts, commits, progress=progress)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    w = results["write"]
    table = Table(
        "writer",
        "seconds",
        "rows/s",
        "MB/s",
        "vs bare",
        title=f"write {w['rows']:,} rows ({w['megabytes']} MB in memory), LZ4",
    )
    table.add_row(
        "bare pyarrow.parquet",
        str(w["bare"]["seconds"]),
        f"{w['bare']['rows_per_s']:,}",
        str(w["bare"]["mb_per_s"]),
        "1.00",
    )
    for label in ("apiary", "apiary_partitioned", "apiary_sorted"):
        r = w[label]
        table.add_row(
            label.replace("_", " "),
            str(r["seconds"]),
            f"{r['rows_per_s']:,}",
            str(r["mb_per_s"]),
            f"{r['ratio_vs_bare']:.2f}",
        )
    console.print(table)
    commits_table = Table(
        "writers",
        "commits",
        "seconds",
        "commits/s",
        title="concurrent commits to one frame, local disk",
    )
    for c in results["commits"]:
        commits_table.add_row(
            str(c["writers"]), str(c["commits"]), str(c["seconds"]), str(c["commits_per_s"])
        )
    console.print(commits_table)


bench.add_command(tpch)


@bench.command("s3")
@click.option("--rows", default=2_000_000, show_default=True, help="Rows in the test frame.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_s3(rows: int, as_json: bool) -> None:
    """A selective query on S3 (moto): requests and bytes avoided by ledger pruning."""
    from apiary.bench import s3

    with missing_extra(), spinner(as_json) as progress:
        results = s3.run(rows, progress=progress)
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
        return
    table = Table(
        "engine",
        "seconds",
        "requests",
        "cell requests",
        "cells touched",
        "bytes",
        title=f"{results['rows']:,} rows in {results['cells']} cells on S3 (moto)",
    )
    for label, key in (
        ("apiary (ledger pruning)", "apiary"),
        ("datafusion, whole folder", "datafusion_whole_folder"),
        ("duckdb, whole folder", "duckdb_whole_folder"),
    ):
        r = results.get(key)
        if r:
            table.add_row(
                label,
                str(r["seconds"]),
                str(r["requests"]),
                str(r["cell_requests"]),
                str(r["cells_touched"]),
                f"{r['bytes']:,}",
            )
    console.print(table)
    a = results["apiary"]
    console.print(
        f"pruned {a['pruned_by_partition']} cells by partition and {a['pruned_by_stats']} by "
        f"statistics; avoided {results['avoided']['cell_requests']} cell requests and "
        f"{results['avoided']['bytes']:,} bytes; results match: {results['results_match']}",
        highlight=False,
    )
    for note in results["notes"]:
        console.print(note, style="dim", highlight=False, markup=False)


@bench.command("swarm")
@click.option("--sf", default=1.0, show_default=True, help="TPC-H scale factor (local part).")
@click.option("--repeats", default=3, show_default=True, help="Timed runs per query and setting.")
@click.option("--query", "queries", type=int, multiple=True, help="Only these TPC-H queries.")
@click.option("--rows", default=1_000_000, show_default=True, help="Rows in the S3 test frame.")
@click.option("--s3/--no-s3", default=True, show_default=True, help="Also run the S3 part.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_swarm(
    sf: float, repeats: int, queries: tuple[int, ...], rows: int, s3: bool, as_json: bool
) -> None:
    """TPC-H on one node and on two (local root, one core each); an aggregate over S3 (moto)
    with 1, 2 and 3 nodes, idle S3 requests and kill detection."""
    from apiary.bench import swarm, swarm_tpch
    from apiary.bench.nodes import need_moto

    with missing_extra(), spinner(as_json) as progress:
        if s3:
            need_moto("swarm")  # before an hour of TPC-H, not after
        local = swarm_tpch.run(sf, repeats, progress, queries=queries or None)
        remote = swarm.run(rows, progress=progress) if s3 else None
    if as_json:
        click.echo(
            json.dumps(
                {"geomean_speedup": local["geomean_speedup"], "tpch": local, "s3": remote},
                indent=2,
            )
        )
        return
    table = Table(
        "query", "1 node s", "2 nodes s", "speedup", "shared", "tasks per node", "same answer",
        title=f"TPC-H SF {sf}, local root, one core per node (medians of {repeats})",
    )  # fmt: skip
    for r in local["queries"]:
        per_node = ", ".join(f"{n}: {c}" for n, c in sorted(r["tasks_per_node"].items()))
        table.add_row(
            f"Q{r['query']}",
            f"{r['one_node_s']:.3f}",
            f"{r['two_nodes_s']:.3f}",
            f"{r['speedup']:.2f}" if r["speedup"] else "-",
            "yes" if r["distributed"] else f"no: {(r['why_not'] or '')[:60]}",
            per_node,
            "yes" if r["same_answer"] else "NO",
        )
    console.print(table)
    o = local["overhead"]
    console.print(
        f"geomean speedup over the {local['distributed']} shared queries: "
        f"{local['geomean_speedup']} (Q1 {local['q1_speedup']}, Q6 {local['q6_speedup']}; "
        f"all 22: {local['geomean_speedup_all']}). Sharing a trivial aggregate costs "
        f"{o['overhead_ms']} ms at the median ({o['local_median_ms']} ms local, "
        f"{o['shared_median_ms']} ms shared, {o['runs']} runs)",
        highlight=False,
    )
    if remote is None:
        return
    results = remote
    table = Table(
        "nodes",
        "seconds",
        "distributed",
        "tasks per node",
        "S3 requests",
        "S3 bytes",
        title=f"{results['rows']:,} rows in {results['cells']} cells on S3 (moto)",
    )
    for r in results["runs"]:
        per_node = ", ".join(f"{n}: {c}" for n, c in sorted(r["tasks_per_node"].items()))
        table.add_row(
            str(r["nodes"]),
            str(r["seconds"]),
            "yes" if r["distributed"] else "no",
            per_node,
            str(r["s3_requests"]),
            f"{r['s3_bytes']:,}",
        )
    console.print(table)
    idle = results["idle"]
    console.print(
        f"an idle node makes {idle['per_node_hour']:,} S3 requests an hour with a "
        f"{idle['heartbeat_interval_s']:g} s heartbeat: {idle['by_kind_per_node_hour']}",
        highlight=False,
    )
    d = results["kill_detection"]
    console.print(
        f"SIGKILLed {d['node']}: suspect after {d['suspect_after_s']} s, dead after "
        f"{d['dead_after_s']} s (settings {d['settings']})",
        highlight=False,
    )


@bench.command("sensors")
@click.option("--devices", default=200, show_default=True, help="Devices in the fleet.")
@click.option(
    "--days", default=540, show_default=True, help="Days of readings (one partition each)."
)
@click.option(
    "--interval", default=450, show_default=True, help="Seconds between a device's readings."
)
@click.option(
    "--groups", default=1, show_default=True, help="Device groups, each committing on its own."
)
@click.option(
    "--hours-per-commit",
    "hours",
    default=6,
    show_default=True,
    type=click.Choice(["1", "2", "3", "4", "6", "8", "12", "24"]),
    help="Hours of readings in each group's commits.",
)
@click.option("--repeats", default=3, show_default=True, help="Timed runs per query and engine.")
@click.option(
    "--compact/--no-compact", default=True, show_default=True, help="Compact before querying."
)
@click.option(
    "--sorted/--unsorted",
    "sort",
    default=True,
    show_default=True,
    help="Create the frame with sort_by=[device, ts].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_sensors(
    devices: int,
    days: int,
    interval: int,
    groups: int,
    hours: str,
    repeats: int,
    compact: bool,
    sort: bool,
    as_json: bool,
) -> None:
    """A fleet dashboard's queries on Apiary, DuckDB and DataFusion over the same folder."""
    from apiary.bench import sensors

    sort_by = sensors.SORT_BY if sort else ()
    with missing_extra(), spinner(as_json) as progress:
        results = sensors.run(
            devices,
            days,
            interval,
            groups,
            repeats,
            compact,
            progress,
            sort_by=sort_by,
            hours=int(hours),
        )
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    engines = [e for e in ("apiary", "duckdb", "datafusion") if e in results["queries"][0]]
    others = [e for e in engines if e != "apiary"]
    table = Table(
        "query", *[f"{e} s" for e in engines], *[f"vs {e}" for e in others], "cells scanned",
        "MB read", "same answers",
        title=f"{results['rows']:,} readings, {results['cells']} cells "
        f"({results['cells_written']} written in {results['commits']} commits), "
        f"sorted by {', '.join(results['sort_by']) or 'nothing'}",
    )  # fmt: skip
    for r in results["queries"]:
        table.add_row(
            r["query"],
            *[f"{r[e]:.4f}" for e in engines],
            *[f"{r[e] / r['apiary']:.2f}x" for e in others],
            f"{r.get('cells_scanned', '-')} of {r.get('cells_considered', '-')}",
            f"{r['bytes_scanned'] / 1e6:.1f}",
            "yes" if r["same_answers"] else "NO",
        )
    console.print(table)
    for other, ratio in results["speedup_over"].items():
        console.print(
            f"Apiary vs {other}: {ratio['selective_geomean']}x on the selective queries "
            f"(geomean), {ratio['full_table']}x on the full-table aggregate (above 1: faster)",
            highlight=False,
        )
    process = results["process"]
    console.print(
        f"This process after the queries (all engines): {process['private_mb']:,} MB private "
        f"memory, {process['threads']} threads",
        highlight=False,
    )
