"""``apiary bench tpch``: the 22 TPC-H queries on Apiary vs raw DataFusion and DuckDB."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from apiary.cli.common import console


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.command("tpch")
@click.option(
    "--sf", default=1.0, show_default=True, type=float, help="TPC-H scale factor (1 ≈ 1 GB)."
)
@click.option("--repeats", default=3, show_default=True, help="Runs per query and engine.")
@click.option(
    "--cells-per-frame",
    default=4,
    show_default=True,
    help="Commits per table when loading (at least one cell each).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def tpch(sf: float, repeats: int, cells_per_frame: int, as_json: bool) -> None:
    """TPC-H: Apiary SQL vs raw DataFusion and DuckDB on the same Parquet data.

    Generates the data with tpchgen-cli, loads it into frames, times the 22 queries on each
    engine (median of --repeats interleaved runs) and checks that Apiary answers like DataFusion.
    """
    from apiary.bench import tpch as tpch_bench

    try:
        tpch_bench.tpchgen_executable()
    except tpch_bench.TpchgenMissingError as exc:
        raise click.ClickException(str(exc)) from None

    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        results = tpch_bench.run(sf, repeats, progress, cells_per_frame=cells_per_frame)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    _print(results)


def _print(results: dict[str, Any]) -> None:
    setup = results["setup"]
    title = (
        f"TPC-H SF {results['sf']:g}: median of {results['repeats']} run(s), seconds "
        f"(data generated in {setup['generate_s']:.1f} s, loaded in {setup['load_s']:.1f} s)"
    )
    table = Table(
        "query",
        "rows",
        "apiary",
        "datafusion",
        "df tuned",
        "duckdb",
        "vs df",
        "vs df tuned",
        "vs duckdb",
        "same",
        title=title,
        show_footer=True,
    )
    for r in results["queries"]:
        same = "yes" if r["matches_datafusion"] else "[bold red]NO[/]"
        table.add_row(
            f"Q{r['query']}",
            str(r.get("rows", "-")),
            _seconds(r.get("apiary_s")),
            _seconds(r.get("datafusion_s")),
            _seconds(r.get("datafusion_tuned_s")),
            _seconds(r.get("duckdb_s")),
            _ratio(r.get("apiary_over_datafusion")),
            _ratio(r.get("apiary_over_datafusion_tuned")),
            _ratio(r.get("apiary_over_duckdb")),
            same,
        )
    geo = results["geomean"]
    table.columns[0].footer = "geomean"
    table.columns[6].footer = _ratio(geo["apiary_over_datafusion"])
    table.columns[7].footer = _ratio(geo["apiary_over_datafusion_tuned"])
    table.columns[8].footer = _ratio(geo["apiary_over_duckdb"])
    table.columns[9].footer = "all" if results["all_match_datafusion"] else "[bold red]not all[/]"
    console.print(table)
    console.print(
        "vs = Apiary seconds / baseline seconds (above 1: Apiary is slower); df tuned = "
        "DataFusion with the options Apiary's bees use (Apiary's own cost); "
        "same = Apiary's rows equal DataFusion's",
        style="dim",
    )
    for r in results["queries"]:
        for engine, error in r["errors"].items():
            console.print(f"[red]Q{r['query']} failed on {engine}:[/] {error}", highlight=False)
        if r["difference"] and not r["errors"]:
            console.print(f"[red]Q{r['query']} differs from DataFusion:[/] {r['difference']}")
    for note in results["notes"]:
        console.print(note, style="yellow", markup=False)  # "[bench]" is not a style tag
