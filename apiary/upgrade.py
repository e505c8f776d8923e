"""``apiary upgrade``: turn every frame of a root written by Apiary 0.1 into a Delta table.

Frame by frame through :func:`apiary.ledger.legacy.upgrade_frame`: idempotent, and a kill at
any point leaves every frame readable, old or new. The catalog (``_registry/``) keeps its
format. A frame whose types Delta lacks stays in the old format (readable, not writable) and
is reported with the type to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apiary.catalog import Registry
from apiary.commitlog import DeltaLog
from apiary.errors import ApiaryError
from apiary.ledger.ledger import LOG_FOLDER
from apiary.ledger.legacy import upgrade_frame
from apiary.storage import Storage


@dataclass
class UpgradeReport:
    frames: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # frame -> why it stays old

    @property
    def upgraded(self) -> int:
        return sum(1 for f in self.frames if f["state"] == "upgraded")


def upgrade_root(storage: Storage, registry: Registry) -> UpgradeReport:
    report = UpgradeReport()
    state = registry.state()
    for hive_name, hive in sorted(state.hives.items()):
        for box_name, box in sorted(hive.boxes.items()):
            for frame_name, definition in sorted(box.frames.items()):
                prefix = f"{hive_name}/{box_name}/{frame_name}"
                name = f"{hive_name}.{box_name}.{frame_name}"
                try:
                    report.frames.append(
                        upgrade_frame(
                            storage,
                            prefix,
                            definition,
                            name,
                            DeltaLog(storage, f"{prefix}/{LOG_FOLDER}"),
                        )
                    )
                except ApiaryError as exc:
                    report.refused[name] = str(exc)
    return report
