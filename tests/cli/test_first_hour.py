"""The first hour of a new user (issue 15): names to query, typos in --storage, units, plurals,
an empty swarm and a failing script. Every call is the real `apiary` in a separate process."""

from __future__ import annotations

import re
import subprocess

import pytest
from support.processes import run_apiary


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_apiary(*args, stdin=stdin, columns=120)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[str, str]:
    root = str(tmp_path_factory.mktemp("first-hour") / "root")
    done = run("demo", "--storage", root, "--rows", "100", "--batches", "1")
    assert done.returncode == 0, done.stderr
    return root, done.stdout


def test_demo_names_the_frame_to_query_and_the_next_command(demo_run) -> None:
    root, out = demo_run
    assert "demo.sensors.readings" in out
    assert 'apiary sql "SELECT' in out and "FROM demo.sensors.readings" in out
    # the suggested command works as printed (with the same --storage)
    suggested = re.search(r'apiary sql "([^"]+)"', out)
    assert suggested is not None
    ran = run("sql", suggested[1], "--storage", root)
    assert ran.returncode == 0, ran.stderr


def test_plain_show_boxes_and_tables_list_everything_qualified(demo_run) -> None:
    root, _ = demo_run
    boxes = run("sql", "SHOW BOXES", "--storage", root, "--format", "json")
    assert boxes.returncode == 0, boxes.stderr
    assert boxes.stdout.splitlines() == ['{"box": "demo.sensors"}']
    tables = run("sql", "SHOW TABLES", "--storage", root, "--format", "json")
    assert tables.returncode == 0, tables.stderr
    assert tables.stdout.splitlines() == ['{"frame": "demo.sensors.readings"}']
    # After USE the lists stay scoped and short, as before.
    scoped = run("shell", "--storage", root, stdin="USE demo.sensors;\nSHOW FRAMES;\n")
    assert scoped.returncode == 0, scoped.stderr
    assert "readings" in scoped.stdout and "demo.sensors.readings" not in scoped.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["sql", "SHOW HIVES"],
        ["status"],
        ["swarm"],
        ["doctor"],
        ["history", "demo.sensors.readings"],
        ["vacuum", "demo.sensors.readings"],
        ["shell"],
    ],
)
def test_reading_commands_refuse_a_root_that_does_not_exist(tmp_path, args) -> None:
    typo = tmp_path / "srv" / "apairy"
    out = run(*args, "--storage", str(typo), stdin="SHOW HIVES;\n")
    assert out.returncode == 1, out.stdout
    said = re.sub(r"[│\s]+", " ", out.stderr + out.stdout)  # doctor says it in its table
    assert f"{typo} does not exist" in said
    assert "apiary demo" in said  # what to do about it
    assert "Traceback" not in out.stderr
    assert not typo.exists() and not typo.parent.exists()  # nothing was created


def test_writing_commands_still_create_a_new_root(tmp_path) -> None:
    fresh = tmp_path / "new" / "root"
    done = run("demo", "--storage", str(fresh), "--rows", "10", "--batches", "1")
    assert done.returncode == 0, done.stderr
    assert (fresh / "_registry").is_dir()


def test_one_row_is_a_row(demo_run) -> None:
    root, _ = demo_run
    one = run("sql", "SELECT 1 AS x", "--storage", root)
    assert one.returncode == 0, one.stderr
    assert re.search(r"\b1 row in\b", one.stdout), one.stdout
    two = run("sql", "SELECT * FROM (VALUES (1), (2)) AS t(x)", "--storage", root)
    assert re.search(r"\b2 rows in\b", two.stdout), two.stdout


_MEMORY = re.compile(r"\d[\d.,]* ?(?:[KMGT]i?B|MB|GB)\b")


def test_memory_is_shown_in_one_unit_style_everywhere(demo_run) -> None:
    root, _ = demo_run
    outputs = {
        "hardware": run("hardware").stdout,
        "doctor": run("doctor", "--storage", root).stdout,
        "status": run("status", "--storage", root).stdout,
    }
    for command, text in outputs.items():
        found = _MEMORY.findall(text)
        assert found, (command, text)
        for figure in found:
            assert re.fullmatch(r"\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB)", figure), (command, figure)


def test_an_empty_swarm_says_how_to_start_a_node(demo_run) -> None:
    root, _ = demo_run
    out = run("swarm", "--storage", root)
    assert out.returncode == 0, out.stderr
    assert f"no nodes on {root}" in out.stdout
    assert f"apiary node --storage {root}" in out.stdout
    assert "┃" not in out.stdout  # no empty table


def test_a_piped_shell_script_with_a_failed_statement_exits_non_zero(demo_run) -> None:
    root, _ = demo_run
    failed = run("shell", "--storage", root, stdin="SELECT * FROM nope;\nSHOW HIVES;\n")
    assert failed.returncode == 1
    assert "nope" in failed.stderr and "┃ hive" in failed.stdout  # later statements still ran
    ok = run("shell", "--storage", root, stdin="SHOW HIVES;\n")
    assert ok.returncode == 0, ok.stderr
