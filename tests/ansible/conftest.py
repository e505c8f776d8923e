"""One three-node rollout per session: site.yml twice, against moto, with the frozen release."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from support.ansible_fleet import (
    Fleet,
    Host,
    QuietHandler,
    common_vars,
    run_playbook,
    serve_folder,
    stop_leftovers,
    write_inventory,
)
from support.frozen import FrozenRelease, frozen_release

from apiary.testing.moto_server import DUMMY_KEY, MotoServer, unique_bucket_name

pytestmark = pytest.mark.ansible


@pytest.fixture(scope="session")
def release() -> FrozenRelease:
    return frozen_release()


@pytest.fixture(scope="session")
def release_url(release: FrozenRelease) -> Iterator[str]:
    """The tarball and its .sha256 served over real HTTP from 127.0.0.1."""
    with serve_folder(release.tarball.parent) as url:
        yield url


@pytest.fixture(scope="session")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    release: FrozenRelease,
    release_url: str,
) -> Iterator[Fleet]:
    """site.yml run twice on bucket + node1..3; the nodes are stopped at the end."""
    root = tmp_path_factory.mktemp("fleet")
    bucket_name = unique_bucket_name("apiary-fleet")  # created by the minio role, not here
    secret = f"s3cr3t-{uuid.uuid4().hex}"  # moto accepts any key: this one must never leak
    nodes = [Host(f"node{i}", root / f"node{i}") for i in (1, 2, 3)]
    storage_url = f"s3://{bucket_name}/fleet?endpoint={moto_server.endpoint}"
    variables = {
        **common_vars(release.version, release_url),
        "apiary_storage_url": storage_url,
        "apiary_s3_access_key_id": DUMMY_KEY,
        "apiary_s3_secret_access_key": secret,
        # The bucket host: no MinIO server here, but the bucket is created through the
        # minio_bucket module (minio SDK) on moto, with the same vault-style credentials.
        "minio_install": False,
        "minio_endpoint": moto_server.endpoint,
        "minio_root_user": DUMMY_KEY,
        "minio_root_password": secret,
        "minio_buckets": [bucket_name],
    }
    extra = root / "vars.json"
    extra.write_text(json.dumps(variables, indent=2))
    # node3 copies the release from the controller's folder instead of downloading it.
    inventory = write_inventory(
        root / "inventory.yml",
        nodes,
        Host("bucket", root / "bucket"),
        node_vars={"node3": {"apiary_release_dir": str(release.tarball.parent)}},
    )
    fleet = Fleet(root, nodes, storage_url, secret, extra, inventory)
    try:
        for verbosity in ("-v", "-v"):
            before = len(QuietHandler.requests)
            fleet.runs.append(run_playbook("site.yml", inventory, "-e", f"@{extra}", verbosity))
            fleet.requests.append(QuietHandler.requests[before:])
        yield fleet
    finally:
        stop_leftovers(nodes)
