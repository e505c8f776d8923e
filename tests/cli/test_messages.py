"""What the CLI prints: valid JSON, errors that name the real cause, text printed as it is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.processes import child_env, run_apiary

from apiary import Apiary
from apiary.cli.common import fail_cleanly
from apiary.errors import ConfigError, NotFoundError, SqlError, StorageError

apiary = run_apiary


def strict_json(line: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


def test_json_output_is_valid_json_with_non_finite_floats_as_null(tmp_path) -> None:
    query = (
        "SELECT CAST('inf' AS DOUBLE) AS a, CAST('-inf' AS DOUBLE) AS b,"
        " CAST('NaN' AS DOUBLE) AS c, 1.5 AS d,"
        " make_array(1.0, CAST('NaN' AS DOUBLE)) AS e, 'Infinity' AS f"
    )
    (tmp_path / "root").mkdir()  # an existing (empty) root: sql never creates one
    proc = apiary("sql", query, "--format", "json", "--storage", str(tmp_path / "root"))
    assert proc.returncode == 0, proc.stderr
    rows = [strict_json(line) for line in proc.stdout.splitlines()]
    assert rows == [{"a": None, "b": None, "c": None, "d": 1.5, "e": [1.0, None], "f": "Infinity"}]


def test_a_missing_bucket_is_named_with_its_endpoint(s3_bucket) -> None:
    uri = f"s3://apiary-no-such-bucket/root?endpoint={s3_bucket.endpoint}"
    with pytest.raises(StorageError) as info:
        Apiary("test", uri).start()
    assert not isinstance(info.value, NotFoundError)  # not "an object is absent"
    text = str(info.value)
    assert "bucket apiary-no-such-bucket does not exist" in text, text
    assert s3_bucket.endpoint in text and "create it" in text, text
    assert "_clock" not in text and "probe" not in text, text

    proc = apiary("sql", "SELECT 1", "--storage", uri)
    assert proc.returncode == 1
    assert "bucket apiary-no-such-bucket does not exist" in proc.stderr, proc.stderr
    assert "_clock" not in proc.stderr and "Traceback" not in proc.stderr

    # doctor lists first: a missing bucket is no fault that a retry could fix
    proc = apiary("doctor", "--storage", uri)
    assert proc.returncode == 1
    assert "bucket apiary-no-such-bucket does not exist" in " ".join(proc.stdout.split())
    assert "retrying" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("query", "cause"),
    [
        ("SELECT CAST(1e40 AS DECIMAL(10,2)) AS x", "Overflowing on 1e40"),
        (
            "SELECT CAST('[credentials]' AS INT) AS x",
            "Cannot cast string '[credentials]' to value of Int32 type",
        ),
    ],
)
def test_an_optimizer_error_names_datafusions_cause(tmp_path, query, cause) -> None:
    with Apiary("test", tmp_path / "root") as ap, pytest.raises(SqlError) as info:
        ap.sql(query)
    assert cause in str(info.value), str(info.value)

    proc = apiary("sql", query, "--storage", str(tmp_path / "root"))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and cause in errors[0], proc.stderr  # brackets printed literally


def test_error_text_with_brackets_is_printed_literally(capsys) -> None:
    message = "set access_key_id in the [credentials] table, not [bold]here[/bold]"
    with pytest.raises(SystemExit) as code, fail_cleanly():
        raise ConfigError(message)
    assert code.value.code == 1
    printed = " ".join(capsys.readouterr().err.split())  # as a terminal may wrap it
    assert f"error: ConfigError: {message}" in printed, printed


def test_shell_errors_print_brackets_literally(tmp_path) -> None:
    (tmp_path / "root").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "apiary", "shell", "--storage", str(tmp_path / "root")],
        input="SELECT CAST('[credentials]' AS INT);\n",
        capture_output=True,
        text=True,
        env=child_env({"COLUMNS": "200"}),
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr  # the piped statement failed
    assert "Cannot cast string '[credentials]'" in proc.stderr, proc.stderr
