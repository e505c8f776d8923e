"""The rebase rule: what a commit removes when it lands on a given version.

A commit is prepared against one snapshot and may land on a later one (another writer won the
race in between). Its cells are uploaded once; only this decision is remade on each attempt, so
the history reads as the serial order of its versions:

- an append removes nothing and always rebases;
- a rewrite (compaction, and every copy-on-write change) removes the cells it read; if another
  commit already removed any of them the rewrite is a ``WriteConflictError``, since its new cells
  were computed from data that is no longer live. Cells appended meanwhile stay;
- a full overwrite removes every cell live at the version it lands on, so rows appended while it
  ran are not carried into it;
- an exclusive rewrite (a column widened by rewriting every cell) is a ``WriteConflictError``
  when any cell it did not rewrite is live where it lands.

Pure logic over ``Snapshot``: independent of how the ledger stores its entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from apiary.errors import WriteConflictError
from apiary.ledger.models import CellMeta, Operation, Snapshot


@dataclass(frozen=True)
class Change:
    """What a commit wants, independent of the version it will land on."""

    operation: Operation
    add: tuple[CellMeta, ...] = ()
    remove: tuple[str, ...] = ()  # the exact cells a rewrite replaces
    replace_all: bool = False  # a full overwrite: remove whatever is live at landing time
    # A rewrite that must see no other new cell (widening a column rewrites every cell under
    # the new type; a cell appended meanwhile would keep the old one).
    exclusive: bool = False

    def __post_init__(self) -> None:
        if self.replace_all and self.remove:
            raise ValueError("a full overwrite removes every live cell; do not list cells")


def removals(change: Change, base: Snapshot, frame: str) -> list[str]:
    """The cells ``change`` removes when committed as version ``base.version + 1``."""
    if change.replace_all:
        return list(base.cells)
    gone = [path for path in change.remove if path not in base.cells]
    if gone:
        raise WriteConflictError(
            f"a concurrent commit to {frame} (now at version {base.version}) already "
            f"removed {len(gone)} of the cells this rewrite replaces (e.g. {gone[0]}); "
            "nothing was committed. Re-read the frame and run the operation again."
        )
    if change.exclusive:
        extra = [path for path in base.cells if path not in change.remove]
        if extra:
            raise WriteConflictError(
                f"{len(extra)} cell(s) were added to {frame} (now at version "
                f"{base.version}) while its cells were rewritten for a new column type; "
                "nothing was committed. Run the change again."
            )
    return list(change.remove)
