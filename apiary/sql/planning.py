"""Empty stand-ins for every frame, so DataFusion can plan a query before cells are chosen.

DataFusion resolves names through these providers exactly as in the final run
(``hive.box.frame``, ``box.frame`` after USE, ``"frame@v3"``), and names that do not exist are
recorded for a helpful error.
"""

from __future__ import annotations

from datafusion.catalog import CatalogProvider, Schema, SchemaProvider, Table

from apiary.catalog.models import FrameDef, RegistryState
from apiary.cells.types import schema_from_json
from apiary.sql.sources import placeholder
from apiary.sql.statements import split_version


class PlanningBox(SchemaProvider):
    """Empty stand-ins with the frames' schemas; records names that do not exist."""

    def __init__(self, hive: str, box: str, frames: dict[str, FrameDef], missing: list) -> None:
        self.hive, self.box, self.frames, self.missing = hive, box, frames, missing

    def table_names(self) -> set[str]:
        return set(self.frames)

    def table_exist(self, name: str) -> bool:
        return split_version(name)[0] in self.frames

    def table(self, name: str) -> Table | None:
        base = split_version(name)[0]
        definition = self.frames.get(base)
        if definition is None:
            self.missing.append((self.hive, self.box, base))
            return None
        return placeholder(schema_from_json(definition.columns))


class PlanningHive(CatalogProvider):
    def __init__(self, state: RegistryState, hive: str, missing: list) -> None:
        self.state, self.hive, self.missing = state, hive, missing

    def schema_names(self) -> set[str]:
        return set(self.state.hives[self.hive].boxes)

    def schema(self, name: str) -> Schema | None:
        box = self.state.hives[self.hive].boxes.get(name)
        if box is None:
            return None
        # DataFusion accepts a Python SchemaProvider where a Schema is expected.
        return PlanningBox(self.hive, name, box.frames, self.missing)  # type: ignore[return-value]
