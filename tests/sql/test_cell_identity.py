"""A cell whose object was swapped outside Apiary is refused on every read path, not miscounted."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datafusion import SessionContext

from apiary import Apiary
from apiary.errors import SerializationError
from apiary.runtime.cache import CellCache
from apiary.sql.sources import frame_table, register_object_store, scratch_folder

FRAME = ("farm", "sensors", "temps")


def make_frame(ap: Apiary, name: str = FRAME[2], sizes: tuple[int, ...] = (10, 20, 30)) -> None:
    ap.create_hive(FRAME[0])
    ap.create_box(*FRAME[:2])
    ap.create_frame(FRAME[0], FRAME[1], name, {"id": "int64", "label": "string"})
    start = 0
    for rows in sizes:
        ids = range(start, start + rows)
        ap.write_to_frame(
            FRAME[0], FRAME[1], name, pa.table({"id": ids, "label": [f"l{i}" * 3 for i in ids]})
        )
        start += rows


def cell_keys(ap: Apiary, name: str = FRAME[2]) -> list[str]:
    """Storage keys of the frame's live cells, in ledger order of rows (smallest first)."""
    frame = ap.frame(FRAME[0], FRAME[1], name)
    cells = sorted(frame.ledger.latest().cells.values(), key=lambda c: c.rows)
    return [f"{frame.prefix}/{cell.path}" for cell in cells]


def assert_refused(ap: Apiary, swapped_key: str) -> None:
    cell = swapped_key.rsplit("/", 1)[1]
    with pytest.raises(SerializationError) as sql_error:
        ap.sql("SELECT count(*) AS n FROM farm.sensors.temps")
    with pytest.raises(SerializationError) as read_error:
        ap.read_from_frame(*FRAME)
    for error in (sql_error, read_error):
        text = str(error.value)
        assert cell in text and "farm.sensors.temps" in text, text
        assert "overwrite the frame" in text or "restore" in text.lower(), text


def test_a_cell_swapped_with_a_sibling_is_refused(storage_uri) -> None:
    with Apiary("test", storage_uri) as ap:
        make_frame(ap)
        assert ap.sql("SELECT count(*) AS n FROM farm.sensors.temps")["n"].to_pylist() == [60]
        small, big, _ = cell_keys(ap)
        ap.storage.put(small, ap.storage.get(big))  # 20 rows where the ledger says 10
        assert_refused(ap, small)


def test_a_cell_swapped_with_another_frames_cell_of_equal_rows_is_refused(storage_uri) -> None:
    """Same row count, other content: only the size gives it away."""
    with Apiary("test", storage_uri) as ap:
        make_frame(ap)
        make_frame(ap, "other", sizes=(1000,))
        ap.write_to_frame(
            FRAME[0], FRAME[1], "other", pa.table({"id": range(10), "label": ["x"] * 10})
        )
        foreign = cell_keys(ap, "other")[0]  # the 10-row cell of the other frame
        target = cell_keys(ap)[0]  # the 10-row cell of farm.sensors.temps
        assert len(ap.storage.get(foreign)) != len(ap.storage.get(target))
        ap.storage.put(target, ap.storage.get(foreign))
        assert_refused(ap, target)


def test_untouched_frames_still_read(storage_uri) -> None:
    with Apiary("test", storage_uri) as ap:
        make_frame(ap)
        result = ap.sql("SELECT count(*) AS n, sum(id) AS s FROM farm.sensors.temps WHERE id >= 5")
        assert result.to_pylist() == [{"n": 55, "s": sum(range(5, 60))}]
        assert ap.read_from_frame(*FRAME).num_rows == 60


def test_cells_linked_from_a_cell_cache_are_checked_too(s3_bucket, tmp_path) -> None:
    """A node's cache fetches a replaced cell whole; the size of the local copy gives it away."""
    with Apiary("test", s3_bucket.uri) as ap:
        make_frame(ap)
        frame = ap.frame(*FRAME)
        cells = list(frame.ledger.latest().cells.values())
        warm = CellCache(tmp_path / "cache")
        ctx = SessionContext()
        register_object_store(ctx, ap.storage.location, None)
        with scratch_folder(ap.storage.location, tmp_path / "scratch") as scratch:
            fetch = lambda key: warm.fetch(key, ap.storage.get)  # noqa: E731
            table = frame_table(ctx, frame, cells, scratch, fetch=fetch)
            ctx.register_table("t", table)
            assert ctx.sql("SELECT count(*) AS n FROM t").to_arrow_table()["n"][0].as_py() == 60

        small, big, _ = cell_keys(ap)
        ap.storage.put(small, ap.storage.get(big))
        cold = CellCache(tmp_path / "cold-cache")  # fetches the replaced object
        with (
            scratch_folder(ap.storage.location, tmp_path / "scratch") as scratch,
            pytest.raises(SerializationError, match=small.rsplit("/", 1)[1]),
        ):
            fetch = lambda key: cold.fetch(key, ap.storage.get)  # noqa: E731
            frame_table(SessionContext(), frame, cells, scratch, fetch=fetch)
