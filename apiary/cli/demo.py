"""``apiary demo``: sample sensor data on the embedded default, written, read back, summarised."""

from __future__ import annotations

import shlex

import click
import pyarrow as pa
import pyarrow.compute as pc
from rich.table import Table
from rich.text import Text

from apiary.cli.common import console, open_apiary, storage_options
from apiary.sample_data import REGIONS, SCHEMA, sensor_readings
from apiary.units import count

HIVE, BOX, FRAME = "demo", "sensors", "readings"
FULL_NAME = f"{HIVE}.{BOX}.{FRAME}"
NEXT_QUERY = (
    f"SELECT region, count(*) AS readings, avg(temperature) AS avg_c FROM {FULL_NAME} "
    "GROUP BY region ORDER BY region"
)


@click.command()
@storage_options
@click.option("--rows", default=200_000, show_default=True, help="Rows per batch.")
@click.option("--batches", default=3, show_default=True, help="Commits to make.")
def demo(storage: str | None, name: str, rows: int, batches: int) -> None:
    """Write sample sensor readings partitioned by region, read them back, summarise.

    Safe to run again: the first batch overwrites the frame, so the data stays the
    same size while the ledger keeps every earlier version for time travel.
    """
    with open_apiary(name, storage, create=True) as ap:
        console.print(f"[bold]Apiary demo[/] on {ap.storage.location}")
        ap.create_hive(HIVE)
        ap.create_box(HIVE, BOX)
        ap.create_frame(HIVE, BOX, FRAME, SCHEMA, partition_by=["region"])

        written = 0
        for batch in range(batches):
            data = sensor_readings(rows, seed=batch)
            write = ap.overwrite_frame if batch == 0 else ap.write_to_frame
            result = write(HIVE, BOX, FRAME, data)
            written += result["rows_written"]
            console.print(
                f"  commit v{result['version']}: {count(result['rows_written'], 'row')} in "
                f"{count(result['cells_written'], 'cell')}, {result['bytes_written']:,} bytes, "
                f"{result['duration_ms']:.0f} ms (temperature {result['temperature']:.2f})"
            )

        table = ap.read_from_frame(HIVE, BOX, FRAME)
        if table.num_rows != written:
            raise click.ClickException(f"read back {table.num_rows} rows, wrote {written}")
        north = ap.read_from_frame(HIVE, BOX, FRAME, partition_filter={"region": "north"})
        info = ap.get_frame(HIVE, BOX, FRAME)
        first = ap.read_from_frame(HIVE, BOX, FRAME, version=info["version"] - batches + 1)

    console.print(_summary(table))
    console.print(
        f"{FULL_NAME}: version {info['version']}, {count(info['rows'], 'row')} in "
        f"{count(info['cells'], 'cell')} ({info['bytes']:,} bytes). "
        f"Read back {count(table.num_rows, 'row')}: all present. "
        f"Partition filter region=north read {count(north.num_rows, 'row')}; "
        f"time travel to version {info['version'] - batches + 1} read "
        f"{count(first.num_rows, 'row')}."
    )
    console.print(_next_steps(storage), highlight=False, soft_wrap=True)


def _next_steps(storage: str | None) -> Text:
    """The name to query and a command to paste (one line each, so a copy takes it whole)."""
    where = f" --storage {shlex.quote(storage)}" if storage else ""
    text = Text("\nQuery it as ")
    text.append(FULL_NAME, style="bold")
    text.append(", for example:\n")
    text.append(f'  apiary sql "{NEXT_QUERY}"{where}\n', style="cyan")
    text.append(f"  apiary shell{where}   (then SHOW TABLES; DESCRIBE {FULL_NAME};)")
    return text


def _summary(table: pa.Table) -> Table:
    grouped = table.group_by("region").aggregate(
        [
            ("sensor_id", "count"),
            ("temperature", "mean"),
            ("temperature", "min"),
            ("temperature", "max"),
            ("humidity", "mean"),
        ]
    )
    view = Table(
        "region",
        "readings",
        "avg °C",
        "min °C",
        "max °C",
        "avg humidity %",
        title="Sensor readings by region",
    )
    by_region = {row["region"]: row for row in grouped.to_pylist()}
    for region in REGIONS:
        row = by_region.get(region)
        if row is None:
            continue
        view.add_row(
            region,
            f"{row['sensor_id_count']:,}",
            f"{row['temperature_mean']:.2f}",
            f"{row['temperature_min']:.2f}",
            f"{row['temperature_max']:.2f}",
            f"{row['humidity_mean']:.1f}",
        )
    total = pc.mean(table["temperature"]).as_py()
    view.caption = f"{table.num_rows:,} readings, mean {total:.2f} °C"
    return view
