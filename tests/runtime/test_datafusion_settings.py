"""DataFusion settings in a bee's context: Apiary's tuned defaults, and the node's overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from datafusion import SessionConfig

from apiary.errors import ConfigError, SqlError
from apiary.runtime.bees import TUNED, Bee, BeePool
from apiary.sdk import Apiary

PUSHDOWN = "datafusion.execution.parquet.pushdown_filters"
JOINS = "datafusion.optimizer.repartition_joins"
BATCH = "datafusion.execution.batch_size"
MiB = 1 << 20


def setting(bee: Bee, name: str, partitions: int = 1) -> str:
    """The value a context made by ``bee`` really has (read back from DataFusion)."""
    ctx = bee.context(SessionConfig().with_information_schema(True), partitions=partitions)
    rows = ctx.sql(f"SELECT value FROM information_schema.df_settings WHERE name = '{name}'")
    return rows.to_pylist()[0]["value"]


def test_bees_use_the_tuned_settings_and_keep_joins_unshuffled_on_few_partitions(
    tmp_path: Path,
) -> None:
    bee = Bee(0, 256 * MiB, tmp_path / "bee")
    assert TUNED[PUSHDOWN] == "false"  # see TUNED: off wins on most queries
    assert setting(bee, PUSHDOWN) == "false"
    assert setting(bee, "datafusion.execution.parquet.reorder_filters") == "true"
    assert setting(bee, JOINS, partitions=2) == "false"
    assert setting(bee, JOINS, partitions=4) == "true"  # DataFusion's own choice again


def test_each_core_gets_two_partitions_within_the_bees_memory(tmp_path: Path) -> None:
    target = "datafusion.execution.target_partitions"
    big = Bee(0, 1024 * MiB, tmp_path / "big")
    assert setting(big, target) == "2"  # a bee's own core: one computes while one reads
    assert setting(big, target, partitions=2) == "4"
    assert setting(big, JOINS, partitions=2) == "false"  # the join rule counts cores
    small = Bee(1, 100 * MiB, tmp_path / "small")  # room for one partition of PARTITION_MIN
    assert setting(small, target, partitions=2) == "1"


def test_apiary_toml_overrides_reach_every_query_context(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "apiary.toml"
    config.write_text(f'[datafusion]\n"{PUSHDOWN}" = true\n"{BATCH}" = 4096\n')
    monkeypatch.setenv("APIARY_CONFIG", str(config))
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        bee = ap.pool.bees[0]
        assert setting(bee, PUSHDOWN) == "true"
        assert setting(bee, BATCH) == "4096"
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"x": "int64"})
        ap.write_to_frame("h", "b", "f", pa.table({"x": [1, 5]}))
        assert ap.sql("SELECT sum(x) AS s FROM h.b.f WHERE x > 2").to_pylist() == [{"s": 5}]


def test_a_setting_datafusion_refuses_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"datafusion\.execution\.batch_size"):
        BeePool(1, 64 * MiB, tmp_path / "scratch", datafusion={BATCH: "lots"})
    with pytest.raises(ConfigError, match="datafusion.nowhere"):
        BeePool(1, 64 * MiB, tmp_path / "scratch", datafusion={"datafusion.nowhere": "1"})


# A self-join whose filter keeps 10 of the thousand rows the frame h.b.f gets from _thousand_rows.
JOINED = "SELECT count(*) AS n FROM h.b.f a JOIN h.b.f b ON a.k = b.k WHERE a.x >= 990"


def _thousand_rows(ap: Apiary) -> None:
    ap.create_hive("h")
    ap.create_box("h", "b")
    ap.create_frame("h", "b", "f", {"x": "int64", "k": "int64"})
    ap.write_to_frame("h", "b", "f", pa.table({"x": range(1000), "k": range(1000)}))


def _rows_pruned_in_scans(ap: Apiary, sql: str) -> int:
    """Rows the Parquet scans themselves dropped while decoding (pushdown), per EXPLAIN ANALYZE."""
    plan = ap.sql("EXPLAIN ANALYZE " + sql).to_pylist()
    text = next(r["plan"] for r in plan if r["plan_type"] == "Plan with Metrics")
    found = re.findall(r"pushdown_rows_pruned=([0-9.]+)", text)
    assert found, text
    return sum(int(float(n)) for n in found)


@pytest.mark.parametrize("pushdown", [True, False])
def test_kept_tables_scan_with_the_options_of_the_query_that_runs_them(
    tmp_path: Path, monkeypatch, pushdown: bool
) -> None:
    """Local frames are scanned through tables kept across queries (sources.LINKED), made
    outside the bee: they must evaluate filters inside the scan exactly when the bee's settings
    say so, on the first run and when kept."""
    if pushdown:  # a node that turns it on (apiary.toml)
        config = tmp_path / "apiary.toml"
        config.write_text(f'[datafusion]\n"{PUSHDOWN}" = true\n')
        monkeypatch.setenv("APIARY_CONFIG", str(config))
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        _thousand_rows(ap)
        for _ in range(2):  # made, then kept
            assert ap.sql(JOINED).to_pylist() == [{"n": 10}]
            pruned = _rows_pruned_in_scans(ap, JOINED)
            assert pruned >= 990 if pushdown else pruned == 0


def test_a_session_sets_and_resets_planner_and_parquet_options(tmp_path: Path) -> None:
    """SET datafusion.… in a session changes that session's queries (over the node's choice);
    RESET takes the node's back; runtime options and bad values are refused and change nothing."""
    with Apiary("t", str(tmp_path / "root"), join_swarm=False) as ap:
        _thousand_rows(ap)
        assert _rows_pruned_in_scans(ap, JOINED) == 0  # the node's default: off
        done = ap.sql(f"SET {PUSHDOWN} = true").to_pylist()
        assert done == [{"option": PUSHDOWN, "value": "true"}]
        assert ap.sql(JOINED).to_pylist() == [{"n": 10}]
        assert _rows_pruned_in_scans(ap, JOINED) >= 990
        with pytest.raises(ConfigError, match="only options starting with"):
            ap.sql("SET datafusion.runtime.temp_directory = '/tmp/elsewhere'")
        with pytest.raises(ConfigError, match="refuses the setting"):
            ap.sql(f"SET {BATCH.replace('execution', 'execution.parquet')} = 1")
        with pytest.raises(ConfigError, match="refuses the setting"):
            ap.sql(f"SET {PUSHDOWN} TO 'sometimes'")
        assert _rows_pruned_in_scans(ap, JOINED) >= 990  # still on: nothing was changed
        with pytest.raises(SqlError, match="apiary.toml"):
            ap.sql("SET timezone = 'UTC'")
        ap.sql(f"RESET {PUSHDOWN}")
        assert _rows_pruned_in_scans(ap, JOINED) == 0
        assert ap.sql(JOINED).to_pylist() == [{"n": 10}]
        # A served node's statement is a session of its own: SET would not last, so it is refused.
        served = ap.sql_session(None, None)
        with pytest.raises(SqlError, match="served node"):
            served.execute(f"SET {PUSHDOWN} = true")
        assert served.options == {}
