"""Housekeeping of one frame: ``vacuum`` (delete unreferenced cells) and ``compact``."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from apiary.cells.reader import read_cells
from apiary.cells.sizing import CellSizing
from apiary.cells.writer import write_cells
from apiary.errors import ConfigError
from apiary.frame import Frame
from apiary.ledger import CellMeta, LedgerEntry
from apiary.storage.local import delete_staged, staged_uploads

log = logging.getLogger("apiary.maintenance")

SAFE_RETENTION = timedelta(hours=1)


@dataclass
class VacuumReport:
    deleted: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)  # staged uploads of killed writers
    bytes_freed: int = 0
    kept_recent: int = 0  # unreferenced but younger than the retention
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "cells_deleted": len(self.deleted),
            "temp_files_deleted": len(self.temp_files),
            "bytes_freed": self.bytes_freed,
            "kept_within_retention": self.kept_recent,
            "dry_run": self.dry_run,
            "deleted_paths": self.deleted + self.temp_files,
        }


def vacuum(
    frame: Frame, retention: timedelta, *, dry_run: bool = False, force: bool = False
) -> VacuumReport:
    """Delete cells no longer referenced by the latest version and older than ``retention``.

    "Older" is measured on the storage's clock: an orphan (its writer died before committing)
    from the time it was uploaded, a replaced cell from the time its removal was committed, so
    time travel keeps working for at least ``retention``. The staged files of uploads that never
    completed (a writer killed mid-put on a local root) go by the time they were last written.
    """
    if retention < SAFE_RETENTION and not force:
        raise ConfigError(
            "a retention under one hour can delete the cells of a write still in "
            "progress; pass force=True (apiary vacuum --force) when no writer is active"
        )
    now: datetime = frame.storage.now()
    active = set(frame.ledger.latest().cells)
    removed_at: dict[str, datetime] = {}
    for entry, committed_at in frame.ledger.history():
        for path in entry.remove:
            removed_at[path] = committed_at

    report = VacuumReport(dry_run=dry_run)
    cell_prefix = frame.prefix + "/"
    for obj in frame.storage.list(frame.prefix):
        relative = obj.path[len(cell_prefix) :]
        if not relative.endswith(".parquet") or relative.startswith("_") or relative in active:
            continue
        if now - removed_at.get(relative, obj.last_modified) < retention:
            report.kept_recent += 1
            continue
        report.deleted.append(relative)
        report.bytes_freed += obj.size
        if not dry_run:
            frame.storage.delete(obj.path)
    for staged in staged_uploads(frame.storage.location, frame.prefix):
        if now - staged.last_modified < retention:
            report.kept_recent += 1
            continue
        report.temp_files.append(staged.path[len(cell_prefix) :])
        report.bytes_freed += staged.size
        if not dry_run:
            delete_staged(frame.storage.location, staged.path)
    log.info(
        "vacuum %s: %d cells, %d temporary files, %d bytes%s",
        frame.full_name,
        len(report.deleted),
        len(report.temp_files),
        report.bytes_freed,
        " (dry run)" if dry_run else "",
    )
    return report


@dataclass
class CompactReport:
    version: int
    cells_removed: int
    cells_added: int
    rows: int

    def to_dict(self) -> dict[str, int]:
        return {
            "version": self.version,
            "cells_removed": self.cells_removed,
            "cells_added": self.cells_added,
            "rows_rewritten": self.rows,
        }


def plan_compaction(
    cells: list[CellMeta], sizing: CellSizing, sort_by: Sequence[str] = ()
) -> list[list[CellMeta]]:
    """Groups of small cells (same partition) to merge, each group up to the target size.

    A cell is small below half the target: the writer never cuts pieces that small from a big
    write, so compacted cells are not picked again, and a lone small cell is left alone.

    A sorted frame's groups go up to the largest cell (``max_bytes``, half a bee's memory: the
    group is read whole and sorted), since the writer cuts one sorted group into cells whose
    ranges of the first key do not overlap. A partition with more small cells than that is
    merged in several groups, taken in order of their smallest first key, so the groups'
    ranges overlap little; cells already compacted are left as they are (rewriting them on
    every compaction would cost more than the overlap).
    """
    limit = sizing.max_bytes if sort_by else sizing.target_bytes
    by_partition: dict[tuple[tuple[str, str], ...], list[CellMeta]] = defaultdict(list)
    for cell in cells:
        if cell.memory_bytes < sizing.target_bytes // 2:
            by_partition[tuple(sorted(cell.partition.items()))].append(cell)
    groups: list[list[CellMeta]] = []
    for small in by_partition.values():
        if sort_by:
            small = _by_first_key(small, sort_by[0])
        group: list[CellMeta] = []
        size = 0
        for cell in small:
            if group and size + cell.memory_bytes > limit:
                groups.append(group)
                group, size = [], 0
            group.append(cell)
            size += cell.memory_bytes
        groups.append(group)
    return [group for group in groups if len(group) > 1]


def _by_first_key(cells: list[CellMeta], key: str) -> list[CellMeta]:
    """``cells`` by the smallest value of ``key`` their statistics record (as they are if the
    ledger lacks them or they do not compare, e.g. a cell from another writer)."""

    def smallest(cell: CellMeta) -> Any:
        stats = cell.stats.get(key)
        return stats.min if stats is not None else None

    if any(smallest(cell) is None for cell in cells):
        return cells
    try:
        return sorted(cells, key=smallest)
    except TypeError:
        return cells


def compact(frame: Frame, sizing: CellSizing, max_partitions: int) -> CompactReport:
    """Rewrite many small cells into leafcutter-sized ones, committed as one ``rewrite_cells``."""
    snap = frame.ledger.latest()
    sort_by = frame.definition.sort_by
    groups = plan_compaction(list(snap.cells.values()), sizing, sort_by)
    if not groups:
        return CompactReport(snap.version, 0, 0, 0)
    added: list[CellMeta] = []
    removed: list[str] = []
    rows = 0
    # A sorted group is cut at the target size (not up to the maximum), so that a partition's
    # small cells merged into one group come out as several cells of disjoint key ranges.
    cells_sizing = CellSizing(sizing.target_bytes, sizing.target_bytes) if sort_by else sizing
    for group in groups:
        table: pa.Table = read_cells(frame.storage, frame.prefix, group, frame.schema)
        added += write_cells(
            frame.storage,
            frame.prefix,
            table,
            frame.partition_by,
            cells_sizing,
            max_partitions,
            sort_by=sort_by,
        )
        removed += [cell.path for cell in group]
        rows += table.num_rows
        del table  # one group in memory at a time, not two while the next one is read
    # Arrow's allocator keeps freed memory for reuse: after a whole frame passed through it,
    # that was 1.3 GB of a node's memory, and DataFusion queries in the same process ran
    # 2-3x slower until it was returned (measured on 20 M sensor readings).
    pa.default_memory_pool().release_unused()
    entry: LedgerEntry = frame.ledger.commit("rewrite_cells", added, removed)
    return CompactReport(entry.version, len(removed), len(added), rows)
