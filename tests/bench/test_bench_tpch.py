"""``apiary bench tpch`` on a tiny scale: every engine runs, ratios are computed, answers match."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from apiary.bench import tpch


def test_bench_tpch_times_every_engine_and_checks_answers() -> None:
    tpch.tpchgen_executable()  # a test dependency: fails loudly when missing
    assert tpch.duckdb_available(), "duckdb is a test dependency: pip install -e .[test]"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "apiary",
            "bench",
            "tpch",
            "--sf",
            "0.01",
            "--repeats",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    assert [r["query"] for r in results["queries"]] == list(range(1, 23))
    assert results["all_match_datafusion"] is True
    for row in results["queries"]:
        assert row["errors"] == {}
        for engine in ("apiary", "datafusion", "datafusion_tuned", "duckdb"):
            assert row[f"{engine}_s"] > 0
        assert row["apiary_over_datafusion_tuned"] == pytest.approx(
            row["apiary_s"] / row["datafusion_tuned_s"], rel=0.01
        )
    assert set(results["geomean"]) == {
        "apiary_over_datafusion",
        "apiary_over_datafusion_tuned",
        "apiary_over_duckdb",
    }
    assert all(value > 0 for value in results["geomean"].values())
