"""Empty stand-ins for every frame, so DataFusion can plan a query before cells are chosen.

DataFusion resolves names through these providers exactly as in the final run
(``hive.box.frame``, ``box.frame`` after USE, ``"frame@v3"``), and names that do not exist are
recorded for a helpful error.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from datafusion.catalog import CatalogProvider, Schema, SchemaProvider, Table

from apiary.catalog.models import FrameDef, RegistryState
from apiary.cells.types import schema_from_json
from apiary.sql.sources import placeholder
from apiary.sql.statements import split_version

# (hive, box, table as named) -> the schema of the version the query reads (the Delta metadata
# of its pinned snapshot: a column added later is not there in "frame@v3"); None: unknown.
SchemaOf = Callable[[str, str, str], pa.Schema | None]


class PlanningBox(SchemaProvider):
    """Empty stand-ins with the frames' schemas; records names that do not exist."""

    def __init__(
        self,
        hive: str,
        box: str,
        frames: dict[str, FrameDef],
        missing: list,
        schema_of: SchemaOf | None = None,
    ) -> None:
        self.hive, self.box, self.frames, self.missing = hive, box, frames, missing
        self.schema_of = schema_of

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
        if self.schema_of is not None:
            schema = self.schema_of(self.hive, self.box, name)
            if schema is not None:
                return placeholder(schema)
        return placeholder(schema_from_json(definition.columns))


class PlanningHive(CatalogProvider):
    def __init__(
        self, state: RegistryState, hive: str, missing: list, schema_of: SchemaOf | None = None
    ) -> None:
        self.state, self.hive, self.missing = state, hive, missing
        self.schema_of = schema_of

    def schema_names(self) -> set[str]:
        return set(self.state.hives[self.hive].boxes)

    def schema(self, name: str) -> Schema | None:
        box = self.state.hives[self.hive].boxes.get(name)
        if box is None:
            return None
        # DataFusion accepts a Python SchemaProvider where a Schema is expected.
        return PlanningBox(  # type: ignore[return-value]
            self.hive, name, box.frames, self.missing, self.schema_of
        )
