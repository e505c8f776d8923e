"""The registry's file format: one full catalog state per version (``_registry/NNNNNN.json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FrameDef(BaseModel):
    """What a frame is: its id, schema and partitioning. Fixed once created."""

    model_config = ConfigDict(populate_by_name=True)

    frame_id: str
    columns: list[dict[str, Any]] = Field(alias="schema")  # apiary.cells.types.schema_to_json
    partition_by: list[str] = []
    created_at: str = ""
    # The original SDK's JSON form when the frame was created with it, shown back by get_frame
    # (apiary.cells.types.schema_as_created); absent in older registries. Not part of the
    # definition: the same columns in another form are the same frame.
    schema_spec: dict[str, Any] | None = None
    # The table's folder relative to the root when the frame is an attached Delta table
    # (attach_frame); None for a frame in its own folder <hive>/<box>/<frame>.
    location: str | None = None
    # Columns each cell is sorted by (apiary.cells.sorting), for tight min/max statistics;
    # empty for an unsorted frame (and in older registries).
    sort_by: list[str] = []

    def same_definition(self, other: FrameDef) -> bool:
        return (
            self.columns == other.columns
            and self.partition_by == other.partition_by
            and self.location == other.location
            and self.sort_by == other.sort_by
        )


class BoxDef(BaseModel):
    frames: dict[str, FrameDef] = {}


class HiveDef(BaseModel):
    boxes: dict[str, BoxDef] = {}


class RegistryState(BaseModel):
    """The whole catalog. Small (names and schemas only), so each version holds all of it."""

    version: int = -1
    commit_id: str = ""
    writer: str = ""
    timestamp: str = ""
    hives: dict[str, HiveDef] = {}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
