"""A storage root in Apiary 0.1's format (``<frame>/_ledger/NNNNNN.json``), for upgrade tests.

Cells are real Parquet files written by today's cell writer; entries and checkpoints are the
JSON documents 0.1 wrote (the same pydantic models, 6-digit names, ``_checkpoint/`` + hint).
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from apiary import Apiary
from apiary.cells.sizing import CellSizing
from apiary.cells.writer import write_cells
from apiary.ledger.models import CellMeta, LedgerEntry

FRAME = ("old", "box", "events")
SCHEMA = {"n": "int64", "region": "string", "label": "string"}


def _put(root: Path, key: str, document: dict) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True))


def rows(n: int) -> pa.Table:
    return pa.table(
        {"n": [n, n + 1000], "region": ["eu", "us"], "label": [f"v{n}", None]},
        schema=pa.schema([("n", pa.int64()), ("region", pa.string()), ("label", pa.string())]),
    )


def make_legacy_root(root: Path, versions: int = 150, overwrite_at: int = 75) -> None:
    """A frame whose old ledger has ``versions`` versions after 0, one of them an overwrite."""
    with Apiary("legacy", str(root), join_swarm=False) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA, partition_by=["region"])
        frame = ap.frame(*FRAME)
        definition, storage = frame.definition, ap.storage
        schema = frame.schema
    prefix = "/".join(FRAME)
    shutil.rmtree(root / prefix / "_delta_log")  # today's create wrote one; 0.1 did not
    ledger = f"{prefix}/_ledger"

    def entry(version: int, op: str, add: list[CellMeta], remove: list[str]) -> LedgerEntry:
        return LedgerEntry(
            version=version,
            timestamp=datetime.now(UTC).isoformat(),
            writer="old-node",
            commit_id=uuid.uuid4().hex,
            operation=op,  # type: ignore[arg-type]
            frame_id=definition.frame_id,
            add=add,
            remove=remove,
        )

    first = entry(0, "create_frame", [], [])
    first.columns = definition.columns
    first.partition_by = definition.partition_by
    _put(root, f"{ledger}/{0:06d}.json", first.to_json())
    live: dict[str, CellMeta] = {}
    sizing = CellSizing(target_bytes=64 * 2**20, max_bytes=128 * 2**20)
    for version in range(1, versions + 1):
        cells = write_cells(storage, prefix, rows(version), ["region"], sizing, 16)
        if version == overwrite_at:
            e = entry(version, "rewrite_cells", cells, list(live))
            live = {}
        else:
            e = entry(version, "add_cells", cells, [])
        live.update((c.path, c) for c in cells)
        _put(root, f"{ledger}/{version:06d}.json", e.to_json())
        if version % 100 == 0:
            checkpoint = {
                "version": version,
                "frame_id": definition.frame_id,
                "cells": [c.model_dump(mode="json") for c in live.values()],
            }
            _put(root, f"{ledger}/_checkpoint/{version:06d}.json", checkpoint)
            _put(root, f"{ledger}/_checkpoint/_latest.json", {"version": version})
    assert schema.names == list(SCHEMA)
