"""Schema forms beyond ``{column: type}``: the original SDK's JSON form, foreign pyarrow types."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from apiary.catalog.models import FrameDef, RegistryState
from apiary.cells.types import (
    original_schema_form,
    schema_as_created,
    schema_from_json,
    schema_from_spec,
    schema_to_json,
)
from apiary.errors import InvalidNameError, SchemaError


def original(*fields: tuple[str, dict, bool]) -> dict:
    return {"fields": [{"name": n, "type": t, "nullable": null} for n, t, null in fields]}


def one_type(t: dict) -> pa.DataType:
    return schema_from_spec(original(("c", t, True))).field("c").type


@pytest.mark.parametrize(
    ("t", "want"),
    [
        ({"name": "int", "bitWidth": 8, "isSigned": True}, pa.int8()),
        ({"name": "int", "bitWidth": 16, "isSigned": True}, pa.int16()),
        ({"name": "int", "bitWidth": 32, "isSigned": True}, pa.int32()),
        ({"name": "int", "bitWidth": 64, "isSigned": True}, pa.int64()),
        ({"name": "int", "bitWidth": 8, "isSigned": False}, pa.uint8()),
        ({"name": "int", "bitWidth": 16, "isSigned": False}, pa.uint16()),
        ({"name": "int", "bitWidth": 32, "isSigned": False}, pa.uint32()),
        ({"name": "int", "bitWidth": 64, "isSigned": False}, pa.uint64()),
        ({"name": "floatingpoint", "precision": "HALF"}, pa.float32()),  # no float16 in frames
        ({"name": "floatingpoint", "precision": "SINGLE"}, pa.float32()),
        ({"name": "floatingpoint", "precision": "DOUBLE"}, pa.float64()),
        ({"name": "utf8"}, pa.string()),
        ({"name": "bool"}, pa.bool_()),
        ({"name": "date", "unit": "DAY"}, pa.date32()),
        ({"name": "date", "unit": "MILLISECOND"}, pa.date64()),
        ({"name": "timestamp", "unit": "SECOND", "timezone": None}, pa.timestamp("s")),
        ({"name": "timestamp", "unit": "MILLISECOND", "timezone": None}, pa.timestamp("ms")),
        ({"name": "timestamp", "unit": "MICROSECOND", "timezone": None}, pa.timestamp("us")),
        ({"name": "timestamp", "unit": "NANOSECOND", "timezone": None}, pa.timestamp("ns")),
        (
            {"name": "timestamp", "unit": "MICROSECOND", "timezone": "UTC"},
            pa.timestamp("us", "UTC"),
        ),
        ({"name": "timestamp", "unit": "NANOSECOND"}, pa.timestamp("ns")),  # no key = no zone
        ({"name": "decimal", "precision": 10, "scale": 2}, pa.decimal128(10, 2)),
        ({"name": "decimal", "precision": 38, "scale": 0}, pa.decimal128(38, 0)),
        ({"name": "binary"}, pa.binary()),
        # Arrow's own JSON spellings of the types above, as other tools write them
        ({"name": "largeutf8"}, pa.string()),
        ({"name": "utf8view"}, pa.string()),
        ({"name": "largebinary"}, pa.binary()),
        ({"name": "time", "unit": "MICROSECOND", "bitWidth": 64}, pa.time64("us")),
        ({"name": "duration", "unit": "MILLISECOND"}, pa.duration("ms")),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else str(v),
)
def test_every_original_type_form(t: dict, want: pa.DataType) -> None:
    assert one_type(t) == want


def test_original_form_keeps_order_and_nullability() -> None:
    schema = schema_from_spec(
        original(
            ("id", {"name": "int", "bitWidth": 64, "isSigned": True}, False),
            ("temp", {"name": "floatingpoint", "precision": "SINGLE"}, True),
            ("room", {"name": "utf8"}, True),
        ),
        ["room"],
    )
    assert schema == pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("temp", pa.float32()),
            pa.field("room", pa.string(), nullable=False),  # partition columns are never null
        ]
    )


def test_nullable_may_be_left_out_and_json_text_is_accepted() -> None:
    spec = {"fields": [{"name": "a", "type": {"name": "bool"}}]}
    assert schema_from_spec(spec) == pa.schema([pa.field("a", pa.bool_())])
    assert schema_from_spec(json.dumps(spec)) == schema_from_spec(spec)


def test_empty_original_form_is_an_empty_schema() -> None:
    assert schema_from_spec({"fields": []}) == pa.schema([])
    assert schema_from_json(schema_to_json(pa.schema([]))) == pa.schema([])
    with pytest.raises(SchemaError, match=r'\{"fields": \[\]\}'):
        schema_from_spec({})  # an empty dict is more likely a mistake: say how to mean it


def test_a_column_named_fields_is_still_a_plain_dict() -> None:
    assert schema_from_spec({"fields": "int64"}) == pa.schema([pa.field("fields", pa.int64())])


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (original(("a", {"name": "int", "bitWidth": 12, "isSigned": True}, True)), "'a'.*8, 16"),
        (original(("a", {"name": "int", "bitWidth": "64"}, True)), "'a'.*bitWidth"),
        (original(("a", {"name": "int", "isSigned": True}, True)), "'a'.*bitWidth"),
        (original(("a", {"name": "floatingpoint", "precision": "QUAD"}, True)), "'a'.*HALF"),
        (original(("a", {"name": "date", "unit": "HOUR"}, True)), "'a'.*DAY"),
        (original(("a", {"name": "timestamp", "unit": "MINUTE"}, True)), "'a'.*SECOND"),
        (
            original(
                ("a", {"name": "timestamp", "unit": "SECOND", "timezone": "Mars/Olympus"}, True)
            ),
            "'a'.*time zone",
        ),
        (original(("a", {"name": "decimal", "precision": 40, "scale": 2}, True)), "'a'.*38"),
        (original(("a", {"name": "decimal", "precision": 5, "scale": 7}, True)), "'a'.*scale"),
        (original(("a", {"name": "decimal", "precision": 5, "bitWidth": 256}, True)), "'a'.*128"),
        (original(("a", {"name": "list"}, True)), "'a'.*nested"),
        (original(("a", {"name": "int", "bitWidth": 8, "isSigend": True}, True)), "isSigend"),
        (original(("a", {"name": "money"}, True)), "'a'.*unknown.*money"),
        (original(("a", "utf8", True)), "'a'.*type"),
        (original(("a", {"name": "utf8"}, "yes")), "'a'.*nullable"),
        ({"fields": [{"name": "a", "type": {"name": "utf8"}, "nulable": True}]}, "nulable"),
        ({"fields": [{"type": {"name": "utf8"}}]}, "name"),
        ({"fields": [{"name": "a", "type": {"name": "utf8"}, "children": [{}]}]}, "nested"),
        ({"fields": {"a": "utf8"}}, "list"),
        ({"fields": [], "colour": "red"}, "colour"),
        ("{not json", "JSON"),
    ],
)
def test_bad_original_forms_say_what_is_wrong(spec: object, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        schema_from_spec(spec)  # type: ignore[arg-type]


def test_column_names_are_checked_as_everywhere() -> None:
    with pytest.raises(InvalidNameError, match="'a b'"):
        schema_from_spec(original(("a b", {"name": "utf8"}, True)))


VIEW_AND_LARGE = pa.schema(
    [
        pa.field("sv", pa.string_view(), nullable=False),
        pa.field("ls", pa.large_string()),
        pa.field("bv", pa.binary_view()),
        pa.field("lb", pa.large_binary()),
        pa.field("cat", pa.dictionary(pa.uint32(), pa.large_string())),
        pa.field("n", pa.int64()),
    ]
)


def test_view_and_large_types_are_stored_as_the_plain_type() -> None:
    schema = schema_from_spec(VIEW_AND_LARGE)
    assert schema == pa.schema(
        [
            pa.field("sv", pa.string(), nullable=False),
            pa.field("ls", pa.string()),
            pa.field("bv", pa.binary()),
            pa.field("lb", pa.binary()),
            pa.field("cat", pa.string()),
            pa.field("n", pa.int64()),
        ]
    )
    assert schema_from_spec({"s": pa.string_view()}) == pa.schema([pa.field("s", pa.string())])


def test_a_stored_large_string_still_loads_as_large_string() -> None:
    # Registries written before this change keep their exact types; only new input is normalised.
    stored = [{"name": "ls", "type": "large_string", "nullable": True}]
    assert schema_from_json(stored) == pa.schema([pa.field("ls", pa.large_string())])
    assert schema_from_spec({"ls": "large_string"}).field("ls").type == pa.large_string()


def test_nested_large_list_is_still_refused_by_name() -> None:
    with pytest.raises(SchemaError, match="'l'.*nested"):
        schema_from_spec(pa.schema([pa.field("l", pa.large_list(pa.int64()))]))


# -- the form a frame was created with -------------------------------------------------------


def definition(spec: object, partition_by: tuple[str, ...] = ()) -> FrameDef:
    """A FrameDef as ``create_frame`` makes it, through the registry's JSON and back."""
    made = FrameDef(
        frame_id="f" * 32,
        columns=schema_to_json(schema_from_spec(spec, partition_by)),  # type: ignore[arg-type]
        partition_by=list(partition_by),
        schema_spec=original_schema_form(spec),  # type: ignore[arg-type]
    )
    return FrameDef.model_validate(json.loads(json.dumps(made.model_dump(by_alias=True))))


def test_original_form_is_given_back_as_given() -> None:
    spec = original(
        ("id", {"name": "int", "bitWidth": 32, "isSigned": True}, False),
        ("temp", {"name": "floatingpoint", "precision": "HALF"}, True),
        ("ts", {"name": "timestamp", "unit": "MILLISECOND", "timezone": None}, True),
        ("room", {"name": "utf8"}, True),
    )
    shown = schema_as_created(definition(spec, ("room",)))
    assert shown == spec
    assert schema_as_created(definition(json.dumps(spec))) == spec
    assert schema_as_created(definition({"fields": []})) == {"fields": []}


def test_other_forms_are_given_back_as_a_pyarrow_schema() -> None:
    assert original_schema_form({"a": "int64"}) is None
    assert original_schema_form(VIEW_AND_LARGE) is None
    want = pa.schema([pa.field("a", pa.int64())])
    assert schema_as_created(definition({"a": "int64"})) == want
    assert schema_as_created(definition(want)) == want


def test_old_registry_entries_without_a_spec_still_load() -> None:
    old = {"frame_id": "f" * 32, "schema": [{"name": "a", "type": "int64", "nullable": True}]}
    frame = FrameDef.model_validate(old)
    assert frame.schema_spec is None
    assert schema_as_created(frame) == pa.schema([pa.field("a", pa.int64())])
    state = RegistryState.model_validate({"hives": {"h": {"boxes": {"b": {"frames": {"f": old}}}}}})
    assert state.hives["h"].boxes["b"].frames["f"].same_definition(frame)


def test_a_stored_spec_that_disagrees_with_the_columns_is_not_believed() -> None:
    # The registry is read from the bucket: a spec edited there must not change what get_frame
    # says the columns are. The columns decide.
    frame = definition(original(("a", {"name": "int", "bitWidth": 64, "isSigned": True}, True)))
    forged = frame.model_copy(update={"schema_spec": original(("a", {"name": "utf8"}, True))})
    assert schema_as_created(forged) == pa.schema([pa.field("a", pa.int64())])
    garbage = frame.model_copy(update={"schema_spec": {"fields": "nonsense"}})
    assert schema_as_created(garbage) == pa.schema([pa.field("a", pa.int64())])


def test_the_same_frame_in_another_form_is_the_same_definition() -> None:
    spec = original(("a", {"name": "int", "bitWidth": 64, "isSigned": True}, True))
    assert definition(spec).same_definition(definition({"a": "int64"}))
