"""Tests of the test harness itself: moto server process, fixtures and FaultProxy.

They also pin what obstore (max_retries=0) raises for each fault, which the storage layer relies
on; if an obstore upgrade changes that, test_obstore_error_mapping says exactly what moved.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import obstore
import pytest
from botocore.exceptions import ClientError
from obstore.exceptions import AlreadyExistsError, BaseError, GenericError
from obstore.store import S3Store

from apiary.testing.fault_proxy import FaultProxy, ProxiedS3
from apiary.testing.moto_server import MotoServer, S3Target

pytestmark = pytest.mark.s3

LEDGER = "root/hive/box/frame/_ledger"


def make_store(target: S3Target) -> S3Store:
    # max_retries=0: every injected fault must reach the caller, as in apiary's storage layer.
    return S3Store(
        target.bucket,
        endpoint=target.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        region="us-east-1",
        client_options={"allow_http": True},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=5)},
    )


def moto_object(moto: MotoServer, bucket: str, key: str) -> bytes | None:
    """The object as moto holds it (bypassing the proxy), or None if absent."""
    try:
        return bytes(moto.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise


def put_create(store: S3Store, key: str, data: bytes) -> None:
    obstore.put(store, key, data, mode="create")


def in_thread(fn: Callable[[], Any]) -> Future[Any]:
    pool = ThreadPoolExecutor(max_workers=1)
    fut = pool.submit(fn)
    pool.shutdown(wait=False)
    return fut


# -- MotoServer and fixtures ---------------------------------------------------------------------


def test_moto_server_lifecycle_and_reset(moto_server: MotoServer) -> None:
    # Its own server: a reset on the session one would wipe other tests' buckets. (The session
    # fixture is requested only for its skip/fail-when-moto-is-missing behaviour.)
    server = MotoServer()
    server.start()
    try:
        assert server.endpoint == f"http://127.0.0.1:{server.port}"
        bucket = server.create_bucket()
        assert bucket.startswith("apiary-test-") and bucket == bucket.lower()
        server.client().put_object(Bucket=bucket, Key="k", Body=b"v")
        assert moto_object(server, bucket, "k") == b"v"
        server.reset()
        names = [b["Name"] for b in server.client().list_buckets()["Buckets"]]
        assert bucket not in names
    finally:
        server.stop()
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(server.endpoint, timeout=2)
    server.stop()  # idempotent


def test_s3_bucket_fixture(s3_bucket: S3Target, moto_server: MotoServer) -> None:
    assert s3_bucket.endpoint == moto_server.endpoint
    assert s3_bucket.uri == f"s3://{s3_bucket.bucket}/root?endpoint={moto_server.endpoint}"
    assert s3_bucket.env == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    for key, value in s3_bucket.env.items():
        assert os.environ[key] == value
    put_create(make_store(s3_bucket), "root/x", b"1")
    assert moto_object(moto_server, s3_bucket.bucket, "root/x") == b"1"


def test_fault_proxy_fixture_points_at_proxy(fault_proxy: ProxiedS3) -> None:
    target = fault_proxy.target
    assert target.endpoint == fault_proxy.proxy.endpoint
    assert os.environ["AWS_ENDPOINT_URL"] == fault_proxy.proxy.endpoint
    assert target.uri.endswith(f"?endpoint={fault_proxy.proxy.endpoint}")


# -- plain forwarding ----------------------------------------------------------------------------


def test_boto3_through_proxy(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    bucket = fault_proxy.target.bucket
    client = boto3_client(proxy.endpoint)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert moto_object(moto_server, bucket, "a/b.txt") == b"hello"
    assert client.head_object(Bucket=bucket, Key="a/b.txt")["ContentLength"] == 5
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    listed = client.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.txt"]
    # If-None-Match must reach moto untouched, or conditional puts silently overwrite.
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"other", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client.delete_object(Bucket=bucket, Key="a/b.txt")
    assert moto_object(moto_server, bucket, "a/b.txt") is None

    methods = [r.method for r in proxy.requests]
    assert methods == ["PUT", "HEAD", "GET", "GET", "PUT", "DELETE"]
    assert [r.status for r in proxy.requests] == [200, 200, 200, 200, 412, 204]
    assert "list-type=2" in proxy.requests[3].query
    assert proxy.count("PUT") == 2 and proxy.count("GET", "a/b.txt") == 1
    assert proxy.faults_fired == []


def test_obstore_put_and_create_conflict(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000001.json"
    put_create(store, key, b'{"commit": "a"}')
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b'{"commit": "a"}'
    with pytest.raises(AlreadyExistsError, match="412 Precondition Failed"):
        put_create(store, key, b'{"commit": "b"}')
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b'{"commit": "a"}'
    assert bytes(obstore.get(store, key).bytes()) == b'{"commit": "a"}'
    assert [r.status for r in proxy.matching("PUT")] == [200, 412]


def test_keep_alive_connections_are_reused(fault_proxy: ProxiedS3) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    for i in range(10):
        put_create(store, f"root/k{i}", b"x" * i)  # includes an empty body
        assert bytes(obstore.get(store, f"root/k{i}").bytes()) == b"x" * i
    assert len(obstore.list(store, "root/").collect()) == 10
    assert proxy.count() == 21
    assert proxy.connections_accepted < 5


def test_chunked_request_body_is_forwarded(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    bucket = fault_proxy.target.bucket
    port = int(fault_proxy.proxy.endpoint.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("PUT", f"/{bucket}/chunked")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for part in (b"ab", b"cdef"):
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    finally:
        conn.close()
    assert moto_object(moto_server, bucket, "chunked") == b"abcdef"


def test_unreachable_upstream_gives_502() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: refused
        with FaultProxy(dead) as proxy:
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{proxy.endpoint}/b/k", timeout=10)
            assert err.value.code == 502
            assert proxy.requests[0].status == 502


# -- faults --------------------------------------------------------------------------------------


def test_503_fails_exactly_times_requests(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000001.json"
    proxy.add_fault("PUT", r"_ledger/\d+\.json$", "status", status=503, times=2)
    for _ in range(2):
        with pytest.raises(GenericError, match="503 Service Unavailable") as err:
            put_create(store, key, b"v")
        assert "<Code>SlowDown</Code>" in str(err.value)
        # Not forwarded: a 503 from the proxy must never have been applied.
        assert moto_object(moto_server, fault_proxy.target.bucket, key) is None
    put_create(store, key, b"v")
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b"v"
    assert [r.status for r in proxy.requests] == [503, 503, 200]
    assert [r.upstream_status for r in proxy.requests] == [None, None, 200]
    assert proxy.faults_fired == [("status", "PUT", f"/{fault_proxy.target.bucket}/{key}")] * 2
    assert proxy.pending_faults() == 0


def test_rules_match_method_and_path_only(fault_proxy: ProxiedS3) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    proxy.add_fault("PUT", r"_ledger/\d+\.json$", "status", status=503, times=1)
    proxy.add_fault("GET", r"never-matches", "status", status=500, times=1)
    put_create(store, f"{LEDGER}/_checkpoint/000001.json", b"c")  # regex anchored at .json$
    put_create(store, "root/data/cell_1.parquet", b"p")
    assert bytes(obstore.get(store, "root/data/cell_1.parquet").bytes()) == b"p"
    assert proxy.faults_fired == []
    proxy.clear_faults()
    assert proxy.pending_faults() == 0
    put_create(store, f"{LEDGER}/000001.json", b"l")
    assert proxy.faults_fired == []


def test_lose_reply_applies_but_client_errors(
    fault_proxy: ProxiedS3, moto_server: MotoServer
) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000007.json"
    proxy.add_fault("PUT", r"_ledger/\d+\.json$", "lose_reply", times=1)
    with pytest.raises(GenericError, match="error sending request"):
        put_create(store, key, b'{"commit": "mine"}')
    # The ambiguity the storage layer must resolve by reading back:
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b'{"commit": "mine"}'
    with pytest.raises(AlreadyExistsError):
        put_create(store, key, b'{"commit": "mine"}')
    first = proxy.requests[0]
    assert (first.status, first.upstream_status, first.fault) == (None, 200, "lose_reply")


def test_lose_reply_seen_by_boto3(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    bucket = fault_proxy.target.bucket
    proxy.add_fault("PUT", r"/k$", "lose_reply", times=1)
    client = boto3_client(proxy.endpoint, attempts=1)
    with pytest.raises(Exception, match=r"(?i)connection|reset|closed|aborted") as err:
        client.put_object(Bucket=bucket, Key="k", Body=b"v")
    print(type(err.value), err.value)
    assert moto_object(moto_server, bucket, "k") == b"v"


def test_409_is_not_applied(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000001.json"
    proxy.add_fault("PUT", r"_ledger/", "status", status=409, times=1)
    # obstore maps 409 on a create to AlreadyExistsError, like a real 412 loss.
    with pytest.raises(AlreadyExistsError, match="409 Conflict") as err:
        put_create(store, key, b"v")
    assert "ConditionalRequestConflict" in str(err.value)
    assert moto_object(moto_server, fault_proxy.target.bucket, key) is None
    put_create(store, key, b"v")  # a retry wins: nobody else held the key
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b"v"


def test_hold_blocks_until_released(fault_proxy: ProxiedS3, moto_server: MotoServer) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000001.json"
    proxy.add_fault("PUT", r"_ledger/", "hold", times=1)
    assert not proxy.wait_held(timeout=0.05)
    fut = in_thread(lambda: put_create(store, key, b"v"))
    assert proxy.wait_held(timeout=10)
    assert not fut.done() and proxy.held_now == 1
    other = make_store(fault_proxy.target)  # other traffic still flows while one is held
    put_create(other, "root/other", b"o")
    assert moto_object(moto_server, fault_proxy.target.bucket, key) is None
    assert proxy.release_held() == 1
    with pytest.raises(GenericError, match="error sending request"):
        fut.result(timeout=10)
    assert moto_object(moto_server, fault_proxy.target.bucket, key) is None  # never forwarded
    held = proxy.matching("PUT", "_ledger")[0]
    assert (held.status, held.upstream_status, held.fault) == (None, None, "hold")


def test_hold_after_forward_is_applied_before_reply(
    fault_proxy: ProxiedS3, moto_server: MotoServer
) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = f"{LEDGER}/000001.json"
    proxy.add_fault("PUT", r"_ledger/", "hold_after_forward", times=1)
    fut = in_thread(lambda: put_create(store, key, b"v"))
    assert proxy.wait_held(timeout=10)
    assert moto_object(moto_server, fault_proxy.target.bucket, key) == b"v"
    assert not fut.done()
    proxy.release_held()
    with pytest.raises(GenericError, match="error sending request"):
        fut.result(timeout=10)


def test_stop_releases_held_requests(moto_server: MotoServer) -> None:
    bucket = moto_server.create_bucket()
    proxy = FaultProxy(moto_server.endpoint).start()
    store = make_store(S3Target.make(proxy.endpoint, bucket))
    proxy.add_fault("*", r".", "hold", times=1)
    fut = in_thread(lambda: put_create(store, "k", b"v"))
    assert proxy.wait_held(timeout=10)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(BaseError):
        fut.result(timeout=10)


def test_concurrent_requests_consume_times_exactly(fault_proxy: ProxiedS3) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    proxy.add_fault("PUT", r"/c\d+$", "status", status=503, times=3)
    barrier = threading.Barrier(8)

    def one(i: int) -> bool:
        barrier.wait(timeout=10)
        try:
            put_create(store, f"root/c{i}", b"v")
            return True
        except GenericError:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert results.count(False) == 3
    assert len(proxy.faults_fired) == 3


# -- what obstore raises: the storage layer's error mapping depends on this ---------------------

# (fault, exception class, fragments the message contains). Observed with obstore 0.12.1.
OBSTORE_ERRORS: list[tuple[str, type[BaseError], tuple[str, ...]]] = [
    ("412", AlreadyExistsError, ("already exists", "412 Precondition Failed")),
    ("409", AlreadyExistsError, ("already exists", "409 Conflict", "ConditionalRequestConflict")),
    ("503", GenericError, ("Generic S3 error", "503 Service Unavailable", "SlowDown")),
    ("lost_reply", GenericError, ("Generic S3 error", "HTTP error: error sending request")),
]


@pytest.mark.parametrize(("fault", "exc_class", "fragments"), OBSTORE_ERRORS)
def test_obstore_error_mapping(
    fault_proxy: ProxiedS3,
    fault: str,
    exc_class: type[BaseError],
    fragments: tuple[str, ...],
) -> None:
    proxy = fault_proxy.proxy
    store = make_store(fault_proxy.target)
    key = "root/_ledger/000001.json"
    if fault == "412":
        put_create(store, key, b"first")  # a real conflict from moto, not an injected one
    elif fault == "lost_reply":
        proxy.add_fault("PUT", r"_ledger/", "lose_reply")
    else:
        proxy.add_fault("PUT", r"_ledger/", "status", status=int(fault))
    with pytest.raises(BaseError) as err:
        put_create(store, key, b"second")
    print(f"\n{fault}: {type(err.value).__module__}.{type(err.value).__name__}: {err.value}")
    assert type(err.value) is exc_class
    for fragment in fragments:
        assert fragment in str(err.value)


def boto3_client(endpoint: str, attempts: int | None = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": attempts}) if attempts else None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=config,
    )
