"""`apiary sql` and `apiary shell` as a user runs them (real child processes)."""

from __future__ import annotations

import json
import subprocess

import pyarrow.parquet as pq
import pytest
from support.processes import run_apiary


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_apiary(*args, stdin=stdin, columns=120)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sqlcli") / "root")
    done = run("demo", "--storage", path, "--rows", "1000", "--batches", "2")
    assert done.returncode == 0, done.stderr
    return path


QUERY = (
    "SELECT region, count(*) AS n FROM demo.sensors.readings "
    "WHERE region IN ('north', 'south') GROUP BY region ORDER BY region"
)


def test_sql_prints_a_table_with_timing_and_pruning(root: str) -> None:
    out = run("sql", QUERY, "--storage", root)
    assert out.returncode == 0, out.stderr
    assert "north" in out.stdout and "500" in out.stdout
    assert "2 rows in" in out.stdout
    assert "8 cells considered, 4 pruned by partition" in out.stdout


def test_sql_says_which_options_a_querys_shape_chose(root: str) -> None:
    correlated = (  # each north reading against its own sensor's average over the frame
        "SELECT count(*) AS n FROM demo.sensors.readings r WHERE r.region = 'north' AND "
        "r.temperature > (SELECT avg(temperature) FROM demo.sensors.readings "
        "WHERE sensor_id = r.sensor_id)"
    )
    out = run("sql", correlated, "--storage", root)
    assert out.returncode == 0, out.stderr
    assert "filters evaluated in the Parquet scan" in out.stdout
    plain = run("sql", QUERY, "--storage", root)
    assert plain.returncode == 0, plain.stderr
    assert "filters evaluated" not in plain.stdout


def test_sql_profile_prints_where_the_time_went(root: str) -> None:
    out = run("sql", QUERY, "--storage", root, "--profile", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == '"region","n"'  # the result is untouched on stdout
    for phase in ("catalog read", "planning", "ledger read", "cell pruning", "registration",
                  "DataFusion planning and execution", "result conversion", "total"):  # fmt: skip
        assert phase in out.stderr, (phase, out.stderr)


def test_sql_formats(root: str, tmp_path) -> None:
    csv = run("sql", QUERY, "--storage", root, "--format", "csv").stdout.splitlines()
    assert csv == ['"region","n"', '"north",500', '"south",500']
    rows = [
        json.loads(line)
        for line in run("sql", QUERY, "--storage", root, "--format", "json").stdout.splitlines()
    ]
    assert rows == [{"region": "north", "n": 500}, {"region": "south", "n": 500}]
    target = tmp_path / "out.parquet"
    assert (
        run("sql", QUERY, "--storage", root, "--format", "parquet", "-o", str(target)).returncode
        == 0
    )
    assert pq.read_table(target).to_pydict() == {"region": ["north", "south"], "n": [500, 500]}


def test_sql_errors_are_one_line(root: str) -> None:
    out = run("sql", "SELECT * FROM demo.sensors.readingz", "--storage", root)
    assert out.returncode == 1
    assert "did you mean demo.sensors.readings" in out.stderr and "Traceback" not in out.stderr


def test_shell_runs_statements_keeps_going_after_errors_and_keeps_history(root, isolated_home):
    script = (
        "USE HIVE demo;\nUSE BOX sensors;\nSELECT count(*) AS total\n  FROM readings;\n"
        "SELECT * FROM nope;\n.help\nSHOW FRAMES;\n"
    )
    out = run("shell", "--storage", root, stdin=script)
    assert out.returncode == 1, out.stderr  # a piped script with a failed statement
    assert "1 statement failed" in out.stderr
    assert "2000" in out.stdout  # the multi-line statement ran
    assert "frame demo.sensors.nope does not exist" in out.stderr
    assert "┃ frame" in out.stdout  # SHOW FRAMES ran after the error
    assert "Time travel" in out.stdout  # .help
    history = (isolated_home / "sql_history").read_text().splitlines()
    assert history[-1] == "SHOW FRAMES;"
    assert "SELECT count(*) AS total   FROM readings;" in history
