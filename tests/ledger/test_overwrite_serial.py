"""Overwrites replay serially: a full overwrite removes every cell live at the version it lands on.

Deterministic interleavings hold one writer between taking its snapshot and committing (its
cells are uploaded, its entry not yet created) while another commits; the racing tests use two
real writer processes mixing appends and overwrites, and check every version of the history
against the serial replay of the versions before it.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from support.processes import (
    finish,
    ids_by_commit,
    release,
    spawn_writer,
    start_together,
    wait_for_line,
)
from support.writer_process import FRAME, SCHEMA, batch

import apiary.cells.writer
import apiary.frame
import apiary.maintenance
from apiary import Apiary
from apiary.errors import WriteConflictError


def make_frame(uri: str) -> None:
    with Apiary("test", uri) as ap:
        ap.create_hive(FRAME[0])
        ap.create_box(*FRAME[:2])
        ap.create_frame(*FRAME, SCHEMA)


def ids(table: pa.Table) -> list[int]:
    return sorted(table["id"].to_pylist())


def hold_after_upload(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """Run ``meanwhile`` once, after the next write or compaction has uploaded its cells and
    before it commits: the other client's commit lands between its snapshot and its commit."""
    upload = apiary.cells.writer.write_cells
    pending = [meanwhile]

    def write_cells(*args, **kwargs):
        cells = upload(*args, **kwargs)
        if pending:
            pending.pop()()
        return cells

    for module in (apiary.frame, apiary.maintenance):
        monkeypatch.setattr(module, "write_cells", write_cells)


@pytest.fixture
def uri(tmp_path) -> str:
    root = str(tmp_path / "root")
    make_frame(root)
    return root


def test_two_overwrites_of_an_empty_frame_leave_only_the_later_one(uri, monkeypatch) -> None:
    with Apiary("test", uri, node_id="a") as a, Apiary("test", uri, node_id="b") as b:
        hold_after_upload(monkeypatch, lambda: b.overwrite_frame(*FRAME, batch(2, 0, 5)))
        result = a.overwrite_frame(*FRAME, batch(1, 0, 5))
        assert result["version"] == 2  # b's overwrite took version 1; a rebased onto it
        assert ids(a.read_from_frame(*FRAME)) == ids(batch(1, 0, 5))
        assert ids(a.read_from_frame(*FRAME, version=1)) == ids(batch(2, 0, 5))


def test_an_overwrite_does_not_keep_rows_appended_while_it_ran(uri, monkeypatch) -> None:
    with Apiary("test", uri, node_id="a") as a, Apiary("test", uri, node_id="b") as b:
        b.write_to_frame(*FRAME, batch(2, 0, 3))  # version 1
        hold_after_upload(monkeypatch, lambda: b.write_to_frame(*FRAME, batch(2, 1, 3)))
        result = a.overwrite_frame(*FRAME, batch(1, 0, 4))
        assert result["version"] == 3
        # Version 3 holds exactly what the overwrite wrote; version 2 keeps the append.
        assert ids(a.read_from_frame(*FRAME)) == ids(batch(1, 0, 4))
        assert ids(a.read_from_frame(*FRAME, version=2)) == ids(batch(2, 0, 3)) + ids(
            batch(2, 1, 3)
        )
        removed = a.frame_history(*FRAME)[3]["cells_removed"]
        assert removed == 2  # both appends' cells, listed explicitly in the entry


def test_an_append_racing_an_overwrite_lands_after_it_and_stays(uri, monkeypatch) -> None:
    with Apiary("test", uri, node_id="a") as a, Apiary("test", uri, node_id="b") as b:
        a.write_to_frame(*FRAME, batch(1, 0, 2))
        hold_after_upload(monkeypatch, lambda: b.overwrite_frame(*FRAME, batch(2, 0, 3)))
        assert a.write_to_frame(*FRAME, batch(1, 1, 2))["version"] == 3
        assert ids(a.read_from_frame(*FRAME)) == sorted(ids(batch(2, 0, 3)) + ids(batch(1, 1, 2)))


def test_compaction_keeps_cells_appended_while_it_ran(uri, monkeypatch) -> None:
    with Apiary("test", uri, node_id="a") as a, Apiary("test", uri, node_id="b") as b:
        for commit in range(4):
            a.write_to_frame(*FRAME, batch(1, commit, 2))
        expected = ids(a.read_from_frame(*FRAME)) + ids(batch(2, 0, 2))
        hold_after_upload(monkeypatch, lambda: b.write_to_frame(*FRAME, batch(2, 0, 2)))
        report = a.compact_frame(*FRAME)
        assert report["cells_removed"] == 4
        assert ids(a.read_from_frame(*FRAME)) == sorted(expected)
        assert a.get_frame(*FRAME)["cells"] == 2  # the merged cell and the appended one


def test_compaction_racing_an_overwrite_is_a_write_conflict(uri, monkeypatch) -> None:
    with Apiary("test", uri, node_id="a") as a, Apiary("test", uri, node_id="b") as b:
        for commit in range(4):
            a.write_to_frame(*FRAME, batch(1, commit, 2))
        hold_after_upload(monkeypatch, lambda: b.overwrite_frame(*FRAME, batch(2, 0, 2)))
        with pytest.raises(WriteConflictError, match="already removed"):
            a.compact_frame(*FRAME)
        assert ids(a.read_from_frame(*FRAME)) == ids(batch(2, 0, 2))


# -- two real processes ----------------------------------------------------------------------

OVERWRITE_EVERY = 4  # commit k of a writer overwrites when k % 4 == 0, else appends


def expected_history(acks: list[dict], rows: int) -> dict[int, list[int]]:
    """Each version's row ids by serial replay of the acknowledged commits in version order."""
    history: dict[int, list[int]] = {0: []}
    for ack in sorted(acks, key=lambda a: a["version"]):
        added = ids(batch(ack["writer"], ack["commit"], rows))
        before = [] if ack["commit"] % OVERWRITE_EVERY == 0 else history[ack["version"] - 1]
        history[ack["version"]] = sorted(before + added)
    return history


@pytest.mark.multiprocess
@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "append"])
def test_a_writer_process_held_before_its_commit_lands_serially(overwrite, uri) -> None:
    """Writer 1 has its snapshot and its uploaded cells when this process commits in between."""
    with Apiary("test", uri, node_id="main") as ap:
        ap.write_to_frame(*FRAME, batch(2, 0, 3))  # version 1
        held = spawn_writer(
            uri,
            1,
            1,
            rows=3,
            crash_phase="cells_uploaded",
            hold=True,
            overwrite_every=1 if overwrite else 0,
        )
        wait_for_line(held, "PHASE cells_uploaded")
        # Version 2 lands between the held writer's snapshot and its commit.
        if overwrite:  # writer 1 overwrites: the append must not survive into version 3
            ap.write_to_frame(*FRAME, batch(2, 1, 3))
        else:  # writer 1 appends: it lands on top of the overwrite
            ap.overwrite_frame(*FRAME, batch(2, 1, 3))
        release(held)
        [ack] = finish(held)
        assert ack["version"] == 3
        expected = ids(batch(1, 0, 3)) + ([] if overwrite else ids(batch(2, 1, 3)))
        assert ids(ap.read_from_frame(*FRAME)) == sorted(expected)


def race_and_check(root: str, commits: int = 50, rows: int = 3) -> None:
    """Two writer processes, started together, each mixing appends and overwrites."""
    make_frame(root)
    procs = [
        spawn_writer(root, w, commits, rows=rows, overwrite_every=OVERWRITE_EVERY, wait_go=True)
        for w in (1, 2)
    ]
    start_together(procs)
    acks = [ack for proc in procs for ack in finish(proc)]
    assert sorted(a["version"] for a in acks) == list(range(1, 2 * commits + 1))

    expected = expected_history(acks, rows)
    with Apiary("test", root) as ap:
        for version, wanted in expected.items():
            table = ap.read_from_frame(*FRAME, version=version)
            assert ids(table) == wanted, f"version {version} is not the serial replay"
        assert set(ids_by_commit(ap.read_from_frame(*FRAME))) <= {
            (a["writer"], a["commit"]) for a in acks
        }


@pytest.mark.multiprocess
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_racing_overwrites_and_appends_replay_serially(backend, request, tmp_path) -> None:
    # An overwrite only goes wrong when it loses a race, so race several times where it is cheap.
    rounds = 3 if backend == "local" else 1
    for round_ in range(rounds):
        if backend == "local":
            root = str(tmp_path / f"race{round_}")
        else:
            root = request.getfixturevalue("s3_bucket").uri
        race_and_check(root)
