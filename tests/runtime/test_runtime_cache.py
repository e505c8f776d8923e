"""The on-disk cell cache: LRU within its cap, atomic files, survives restarts."""

from __future__ import annotations

from apiary.runtime.cache import CellCache


def test_fetch_downloads_once_then_hits(tmp_path) -> None:
    calls: list[str] = []

    def download(key: str) -> bytes:
        calls.append(key)
        return key.encode() * 10

    cache = CellCache(tmp_path / "c", cap_bytes=1000)
    first = cache.fetch("h/b/f/cell_1.parquet", download)
    again = cache.fetch("h/b/f/cell_1.parquet", download)
    assert first == again and first.read_bytes() == b"h/b/f/cell_1.parquet" * 10
    assert calls == ["h/b/f/cell_1.parquet"] and (cache.hits, cache.misses) == (1, 1)
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_least_recently_used_cells_leave_first(tmp_path) -> None:
    cache = CellCache(tmp_path / "c", cap_bytes=250)
    for name in ("a", "b"):
        cache.fetch(name, lambda key: b"x" * 100)
    cache.fetch("a", lambda key: b"never called")  # a is now the most recent
    cache.fetch("c", lambda key: b"x" * 100)  # 300 > 250: b goes
    assert cache.keys == ["a", "c"] and cache.size == 200
    assert not cache.path("b").exists() and cache.path("a").exists()


def test_a_restarted_node_keeps_its_cache_and_forgets_missing_files(tmp_path) -> None:
    cache = CellCache(tmp_path / "c", cap_bytes=1000)
    for name in ("a", "b", "c"):
        cache.fetch(name, lambda key: b"y" * 10)
    cache.path("b").unlink()
    again = CellCache(tmp_path / "c", cap_bytes=1000)
    assert again.keys == ["a", "c"] and again.size == 20


def test_sdk_reads_from_s3_go_through_the_cache(s3_bucket) -> None:
    import pyarrow as pa

    from apiary import Apiary

    with Apiary("test", s3_bucket.uri) as ap:
        ap.create_hive("h")
        ap.create_box("h", "b")
        ap.create_frame("h", "b", "f", {"k": "string", "v": "int64"}, partition_by=["k"])
        ap.write_to_frame("h", "b", "f", pa.table({"k": ["a", "b"], "v": [1, 2]}))
        assert ap.read_from_frame("h", "b", "f").num_rows == 2
        gets = ap.storage.counters["get"]
        assert ap.read_from_frame("h", "b", "f").num_rows == 2
        # One GET only: the ledger's look for a newer version (it misses); both cells came
        # from local disk.
        assert ap.storage.counters["get"] - gets == 1
        assert ap.cache is not None and len(ap.cache.keys) == 2 and ap.cache.hits == 2
