"""TPC-H data for tests: the generator must be there in CI, where a skip would hide a gap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apiary.bench.tpch import TpchgenMissingError, generate, tpchgen_executable


def require_tpchgen() -> None:
    try:
        tpchgen_executable()
    except TpchgenMissingError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"tpchgen-cli is required in CI: {exc}", pytrace=False)
        pytest.skip(str(exc))


def tpch_files(sf: float, folder: Path) -> dict[str, list[Path]]:
    """TPC-H at scale ``sf`` as Parquet files under ``folder``, one list per table."""
    require_tpchgen()
    return generate(sf, folder)
