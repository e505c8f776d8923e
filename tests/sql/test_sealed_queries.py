"""A join with no equality between its sides runs in a sealed child on every backend.

On S3 the child reaches the bucket with the credentials the SDK was given, sent through its
stdin: here they are nowhere in the environment, so the child can only have them from the pipe.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from apiary import Apiary
from apiary.testing.moto_server import DUMMY_KEY

QUERY = "SELECT count(*) AS n, sum(a.x) AS s FROM h.b.f a JOIN h.b.f b ON a.x + b.x = 1001"


def answer(ap: Apiary) -> list[dict[str, int]]:
    ap.create_hive("h")
    ap.create_box("h", "b")
    ap.create_frame("h", "b", "f", {"x": "int64"})
    for start in range(0, 3000, 1000):  # three cells
        ap.write_to_frame("h", "b", "f", pa.table({"x": pa.array(range(start, start + 1000))}))
    return ap.sql(QUERY).to_pylist()


def test_sealed_on_local_and_in_process_on_memory(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="apiary.bees")
    with Apiary("t", storage=str(tmp_path / "root")) as ap:
        local = answer(ap)
    assert "runs in a sealed child" in caplog.text
    caplog.clear()
    with Apiary("t", storage="memory://sealed-test") as ap:
        memory = answer(ap)  # in-memory tables have no plan bytes: run in-process
    assert "runs in a sealed child" not in caplog.text
    assert local == memory
    assert local[0]["n"] == 1002  # x + y = 1001 over 0..2999: x from 0 to 1001


def test_sealed_on_s3_with_credentials_only_from_the_sdk(s3_bucket, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="apiary.bees")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    credentials = {"access_key_id": DUMMY_KEY, "secret_access_key": DUMMY_KEY}
    with Apiary("t", storage=s3_bucket.uri, credentials=credentials) as ap:
        result = answer(ap)
    assert "runs in a sealed child" in caplog.text
    assert result[0]["n"] == 1002
    assert DUMMY_KEY not in caplog.text


def test_sealed_answers_equal_the_in_process_answers(tmp_path) -> None:
    with Apiary("t", storage=str(tmp_path / "root")) as ap:
        sealed = answer(ap)
        for bee in ap.pool.bees:
            bee.seal = False
        assert ap.sql(QUERY).to_pylist() == sealed
