"""The per-frame ledger: ACID commits over Parquet cells."""

from apiary.ledger.ledger import Ledger
from apiary.ledger.models import CellMeta, ColumnStats, LedgerEntry, Snapshot

__all__ = ["CellMeta", "ColumnStats", "Ledger", "LedgerEntry", "Snapshot"]
