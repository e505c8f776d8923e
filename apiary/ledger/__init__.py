"""The per-frame ledger: ACID commits over Parquet cells."""

from apiary.ledger.ledger import Ledger
from apiary.ledger.models import CellMeta, Checkpoint, ColumnStats, LedgerEntry, Snapshot

__all__ = ["CellMeta", "Checkpoint", "ColumnStats", "Ledger", "LedgerEntry", "Snapshot"]
