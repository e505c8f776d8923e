"""``assert_same_result``: two query results hold the same answer (see ``apiary.bench.compare``).

The rule lives in the package so ``apiary bench tpch`` checks its results exactly as the tests do.
"""

from __future__ import annotations

import pyarrow as pa

from apiary.bench.compare import result_difference


def assert_same_result(a: pa.Table, b: pa.Table, ordered: bool) -> None:
    """Same column names, row count and values (floats to 1e-9 relative, decimals exact).

    Row order is compared only when ``ordered`` (the query has ORDER BY).
    """
    difference = result_difference(a, b, ordered)
    if difference is not None:
        raise AssertionError(difference)
