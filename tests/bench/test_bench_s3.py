"""The S3 benchmark's own claims hold on a small run: same answer, fewer requests and bytes."""

from __future__ import annotations

import pytest

from apiary.bench import s3


@pytest.mark.s3
def test_pruning_avoids_requests_and_bytes_with_the_same_answer(moto_server) -> None:
    result = s3.run(rows=40_000)
    assert result["results_match"] is True
    assert result["cells"] == 32
    apiary, raw = result["apiary"], result["datafusion_whole_folder"]
    assert apiary["cells_scanned"] == 1
    assert (apiary["pruned_by_partition"], apiary["pruned_by_stats"]) == (24, 7)
    assert apiary["cells_touched"] == 1 and raw["cells_touched"] == 32
    assert result["avoided"]["cell_requests"] > 0 and result["avoided"]["bytes"] > 0
