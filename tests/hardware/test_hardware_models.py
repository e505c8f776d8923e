"""The model table and revision-code decoding, checked against Raspberry Pi's published codes."""

from __future__ import annotations

import pytest

from hardware import MODELS, by_key, by_name, by_type_code, decode_revision
from hardware.models import MEMORY_SIZES_MB, TYPE_CODES

# (code, model key, RAM MB) from Raspberry Pi's "New-style revision codes in use" table.
PUBLISHED = [
    ("a02082", "3B", 1024),
    ("a22082", "3B", 1024),
    ("a32082", "3B", 1024),
    ("a020d3", "3B+", 1024),
    ("a020d4", "3B+", 1024),
    ("a03111", "4B", 1024),
    ("b03112", "4B", 2048),
    ("c03114", "4B", 4096),
    ("d03115", "4B", 8192),
    ("c03130", "400", 4096),
    ("902120", "Zero 2 W", 512),
    ("a03140", "CM4", 1024),
    ("d03140", "CM4", 8192),
    ("c04170", "5", 4096),
    ("d04170", "5", 8192),
    ("d04190", "500", 8192),
    ("b04180", "CM5", 2048),
    ("d04180", "CM5", 8192),
    ("c041a0", "CM5", 4096),  # CM5 Lite
]


@pytest.mark.parametrize(("code", "key", "ram_mb"), PUBLISHED)
def test_published_codes(code: str, key: str, ram_mb: int) -> None:
    revision = decode_revision(int(code, 16))
    assert revision.new_style and revision.hex == code
    model = by_type_code(revision.type_code)
    assert model is not None and model.key == key
    assert revision.memory_mb == ram_mb
    assert ram_mb in model.ram_mb


def test_fields_of_a_pi4_code() -> None:
    revision = decode_revision(0xC03114)
    assert revision.type_code == 0x11
    assert revision.processor == "BCM2711"
    assert revision.manufacturer == "Sony UK"
    assert revision.pcb_revision == "1.4"


def test_warranty_and_otp_bits_do_not_change_the_board() -> None:
    plain = decode_revision(0xA02082)
    voided = decode_revision(0xA02082 | 1 << 25 | 1 << 31)
    assert (voided.type_code, voided.memory_mb) == (plain.type_code, plain.memory_mb)


def test_old_style_codes_have_no_fields() -> None:
    revision = decode_revision(0x000E)  # first-generation Model B
    assert not revision.new_style and revision.type_code is None and revision.memory_mb is None


def test_memory_size_codes() -> None:
    assert MEMORY_SIZES_MB == {0: 256, 1: 512, 2: 1024, 3: 2048, 4: 4096, 5: 8192, 6: 16384}


def test_boards_apiary_does_not_support_are_unknown() -> None:
    assert by_type_code(0x0C) is None  # Zero W: one core
    assert by_type_code(0x04) is None  # 2B


def test_table_is_complete_and_consistent() -> None:
    assert [m.key for m in MODELS] == [
        "3B", "3B+", "4B", "400", "5", "500", "Zero 2 W", "CM4", "CM5",
    ]  # fmt: skip
    assert set(TYPE_CODES.values()) == {m.key for m in MODELS}
    for model in MODELS:
        assert model.type_codes, model.key
        assert model.cores == 4
        assert model.ram_mb == tuple(sorted(model.ram_mb))
        assert set(model.ram_mb) <= set(MEMORY_SIZES_MB.values())
        assert model.soc in {"BCM2837", "BCM2837B0", "BCM2710A1", "BCM2711", "BCM2712"}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Raspberry Pi 3 Model B Rev 1.2", "3B"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", "3B+"),
        ("Raspberry Pi 4 Model B Rev 1.5", "4B"),
        ("Raspberry Pi Compute Module 5 Lite Rev 1.0", "CM5"),
        ("Raspberry Pi 500 Rev 1.0", "500"),
        ("Raspberry Pi Compute Module 4S Rev 1.0", None),  # not "Compute Module 4"
        ("Raspberry Pi 3 Model A Plus Rev 1.0", None),
        ("Raspberry Pi 5000", None),
    ],
)
def test_by_name(name: str, key: str | None) -> None:
    model = by_name(name)
    assert (model.key if model else None) == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("4B", "4B"),
        ("pi4b", "4B"),
        ("Raspberry Pi 4 Model B", "4B"),
        ("3b+", "3B+"),
        ("zero2w", "Zero 2 W"),
        ("Zero 2 W", "Zero 2 W"),
        ("cm5", "CM5"),
        ("Compute Module 4", "CM4"),
        ("5", "5"),
        ("pi500", "500"),
        ("6", None),
        ("zero", None),
    ],
)
def test_by_key(text: str, key: str | None) -> None:
    model = by_key(text)
    assert (model.key if model else None) == key
