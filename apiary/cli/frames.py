"""Frame housekeeping commands: ``vacuum``, ``compact``, ``history``."""

from __future__ import annotations

import click
from rich.table import Table

from apiary.cli.common import console, frame_argument, open_apiary, split_frame, storage_options


@click.command("vacuum")
@frame_argument
@storage_options
@click.option(
    "--retention-hours",
    type=float,
    default=None,
    help="Keep unreferenced cells younger than this (default from settings: 168).",
)
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option("--force", is_flag=True, help="Allow a retention under one hour.")
def vacuum_cmd(
    frame: str,
    storage: str | None,
    name: str,
    retention_hours: float | None,
    dry_run: bool,
    force: bool,
) -> None:
    """Delete cells no longer referenced by FRAME (orphans and replaced cells)."""
    hive, box, frame_name = split_frame(frame)
    with open_apiary(name, storage, create=False) as ap:
        report = ap.vacuum_frame(
            hive, box, frame_name, retention_hours=retention_hours, dry_run=dry_run, force=force
        )
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{frame}: {verb} {report['cells_deleted']} cells and {report['temp_files_deleted']} "
        f"temporary file(s) of interrupted uploads ({report['bytes_freed']:,} bytes); "
        f"{report['kept_within_retention']} unreferenced cells kept within the retention",
        highlight=False,
        soft_wrap=True,  # one line, whatever the terminal width: scripts grep it
    )
    if dry_run:
        for path in report["deleted_paths"]:  # type: ignore[attr-defined]
            console.print(f"  {path}", markup=False, highlight=False)


@click.command("compact")
@frame_argument
@storage_options
def compact_cmd(frame: str, storage: str | None, name: str) -> None:
    """Merge FRAME's small cells into leafcutter-sized ones (one commit)."""
    hive, box, frame_name = split_frame(frame)
    with open_apiary(name, storage, create=False) as ap:
        report = ap.compact_frame(hive, box, frame_name)
    if not report["cells_removed"]:
        console.print(f"{frame}: nothing to compact (version {report['version']})")
        return
    console.print(
        f"{frame}: {report['cells_removed']} cells → {report['cells_added']} "
        f"({report['rows_rewritten']:,} rows) at version {report['version']}"
    )


@click.command("history")
@frame_argument
@storage_options
def history_cmd(frame: str, storage: str | None, name: str) -> None:
    """List FRAME's versions (what each commit did); read any of them with version=."""
    hive, box, frame_name = split_frame(frame)
    with open_apiary(name, storage, create=False) as ap:
        rows = ap.frame_history(hive, box, frame_name)
    table = Table(
        "version", "operation", "committed at", "writer", "+cells", "-cells", "+rows", "notes"
    )
    for row in rows:
        notes = [f"txn {app}={seq}" for app, seq in row["txn"].items()]
        if row["schema"] is not None and row["version"] > 0:  # a schema change
            columns = ", ".join(f"{n} {t}" for n, t in row["schema"].items())
            notes.append(f"schema: {columns[:80]}{'…' if len(columns) > 80 else ''}")
        table.add_row(
            str(row["version"]),
            str(row["operation"]),
            str(row["committed_at"])[:19].replace("T", " "),
            str(row["writer"]),
            str(row["cells_added"]),
            str(row["cells_removed"]),
            f"{row['rows_added']:,}",
            "; ".join(notes),
        )
    console.print(table)


@click.command("upgrade")
@storage_options
def upgrade_cmd(storage: str | None, name: str) -> None:
    """Turn a root written by Apiary 0.1 (_ledger/) into Delta tables; safe to re-run.

    Stop every node of the old release first. Each frame keeps its whole history (time travel
    works as before); a kill at any point leaves every frame readable, and running the command
    again finishes the job.
    """
    from apiary.upgrade import upgrade_root

    with open_apiary(name, storage, create=False) as ap:
        report = upgrade_root(ap.storage, ap.registry)
    for frame in report.frames:
        if frame["state"] == "upgraded":
            console.print(
                f"{frame['frame']}: upgraded, {frame['versions']} versions",
                highlight=False,
                soft_wrap=True,
            )
    for frame_name, why in report.refused.items():
        console.print(f"{frame_name}: not upgraded: {why}", highlight=False, soft_wrap=True)
    already = sum(1 for f in report.frames if f["state"] != "upgraded")
    console.print(
        f"{report.upgraded} frame(s) upgraded, {already} already Delta tables, "
        f"{len(report.refused)} left in the old format",
        highlight=False,
        soft_wrap=True,
    )
    if report.refused:
        raise SystemExit(1)
