"""The sensors benchmark on a small fleet: every engine gives the same answers, pruning shows."""

from __future__ import annotations

from support.processes import run_apiary

from apiary.bench import sensors


def test_a_small_fleet_answers_alike_on_every_engine_and_prunes_by_day_and_time() -> None:
    result = sensors.run(devices=50, days=4, interval=300, groups=2, repeats=1, hours=6)
    assert result["rows"] == 50 * 4 * 24 * 12
    assert result["commits"] == 4 * (24 // 6) * 2
    assert result["cells_written"] == result["commits"]
    assert result["cells"] == 4  # compacted: one cell per day
    by_name = {r["query"]: r for r in result["queries"]}
    assert all(r["same_answers"] for r in result["queries"]), result["queries"]
    assert by_name["one day per device"]["cells_scanned"] == 1
    assert by_name["last hour of one device"]["cells_scanned"] == 1
    assert by_name["full-table aggregate"]["cells_scanned"] == 4
    assert set(result["speedup_over"]) >= {"datafusion"}
    assert result["process"]["private_mb"] > 50 and result["process"]["threads"] > 1


def test_the_command_prints_the_table() -> None:
    done = run_apiary("bench", "sensors", "--devices", "10", "--days", "2", "--interval", "600",
                      "--repeats", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "full-table aggregate" in done.stdout and "cells scanned" in done.stdout
    assert "MB private memory" in done.stdout
