"""Empty stand-ins for every frame, so DataFusion can plan a query before cells are chosen.

DataFusion resolves names through these providers exactly as in the final run
(``hive.box.frame``, ``box.frame`` after USE, ``"frame@v3"``), and names that do not exist are
recorded for a helpful error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from datafusion import LogicalPlan, SessionContext
from datafusion.catalog import CatalogProvider, Schema, SchemaProvider, Table

from apiary.catalog.models import FrameDef, RegistryState
from apiary.cells.types import schema_from_json
from apiary.sql.plan import Scan
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


@dataclass
class KeptPlan:
    """A query's optimised plan against the stand-ins, and what it was planned over."""

    plan: LogicalPlan
    planning: SessionContext  # the stand-ins it was planned in
    schemas: dict[tuple[str, str, str], pa.Schema]  # each frame it reads, as it was then
    scans: list[Scan]  # its scans (reading them from the plan costs ~0.2 ms a time)


class KeptPlans:
    """Plans of the queries a session ran lately, so one that comes again (a dashboard's
    refresh) skips planning against stand-ins (3-6 ms on TPC-H).

    Kept by the SQL text, USE HIVE / USE BOX and the catalog version; a plan is used again only
    while every frame it reads has the same schema at the version this query pins (the frames
    are pinned and pruned afresh each time, so new commits are always seen).
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._plans: OrderedDict[tuple[object, ...], KeptPlan] = OrderedDict()

    def get(self, key: tuple[object, ...], schema_of: SchemaOf) -> KeptPlan | None:
        kept = self._plans.get(key)
        if kept is None:
            return None
        for name, schema in kept.schemas.items():
            now = schema_of(*name)
            if now is None or not now.equals(schema):
                del self._plans[key]
                return None
        self._plans.move_to_end(key)
        return kept

    def put(self, key: tuple[object, ...], kept: KeptPlan) -> None:
        self._plans[key] = kept
        while len(self._plans) > self.size:
            self._plans.popitem(last=False)
