"""The fleet's settings as the playbooks resolve them: the nodes' scoped key, the storage URL
under TLS, MinIO's endpoint and environment file, and the example vault refused elsewhere.

The nodes' MinIO policy is checked by what it allows, on moto with IAM enforcement on (MinIO
reads the same policy language): the node key works on its bucket, Apiary's own checks pass
with it, and everything else is denied.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from support.ansible_fleet import (
    ANSIBLE_DIR,
    Host,
    ansible_env,
    common_vars,
    run_playbook,
    stop_leftovers,
    write_inventory,
)

from apiary.testing.moto_server import DUMMY_KEY, MotoServer

pytestmark = [pytest.mark.ansible]

sys.path.insert(0, str(ANSIBLE_DIR / "roles" / "minio" / "module_utils"))
from apiary_node_policy import node_policy  # noqa: E402

EXAMPLE_INVENTORY = ANSIBLE_DIR / "inventory" / "example.yml"


def _resolve(tmp_path: Path, inventory: Path, host: str, names: list[str], *extra: str) -> dict:
    """The values of ``names`` for ``host``, as a play of site.yml sees them (group_vars/all
    and the minio role's variables loaded; no connection made)."""
    playbook = tmp_path / "resolve.yml"
    out = tmp_path / "resolved.json"
    lines = "\n".join(f'          {n}: "{{{{ {n} }}}}"' for n in names)
    playbook.write_text(
        f"- hosts: {host}\n"
        "  gather_facts: false\n"
        "  vars_files:\n"
        f"    - {ANSIBLE_DIR}/roles/minio/defaults/main.yml\n"
        f"    - {ANSIBLE_DIR}/group_vars/all/main.yml\n"
        f"    - {ANSIBLE_DIR}/group_vars/all/vault.yml\n"
        f"    - {ANSIBLE_DIR}/roles/minio/vars/main.yml\n"
        "  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        dest: {out}\n"
        '        content: "{{ values | to_json }}"\n'
        "      delegate_to: localhost\n"
        "      vars:\n"
        "        ansible_connection: local\n"
        '        ansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
        "        values:\n"
        f"{lines}\n"
    )
    run = run_playbook(str(playbook), inventory, *extra)
    assert run.returncode == 0, run.output[-4000:]
    return json.loads(out.read_text())


def test_nodes_get_their_own_key_not_the_root_credentials(tmp_path: Path) -> None:
    names = ["apiary_s3_access_key_id", "apiary_s3_secret_access_key", "minio_root_user",
             "minio_root_password", "minio_node_access_key", "minio_node_secret_key"]  # fmt: skip
    values = _resolve(tmp_path, EXAMPLE_INVENTORY, "pi-kitchen.local", names)
    assert values["apiary_s3_access_key_id"] == values["minio_node_access_key"] == "apiary-node"
    assert values["apiary_s3_secret_access_key"] == values["minio_node_secret_key"]
    assert values["apiary_s3_access_key_id"] != values["minio_root_user"]
    assert values["apiary_s3_secret_access_key"] != values["minio_root_password"]


def test_storage_url_follows_tls(tmp_path: Path) -> None:
    plain = _resolve(tmp_path, EXAMPLE_INVENTORY, "pi-kitchen.local", ["apiary_storage_url"])
    assert plain["apiary_storage_url"] == "s3://apiary/fleet?endpoint=http://pi-hub.local:9000"
    tls = _resolve(
        tmp_path, EXAMPLE_INVENTORY, "pi-kitchen.local", ["apiary_storage_url", "minio_endpoint"],
        "-e", '{"minio_tls_enabled": true}',
    )  # fmt: skip
    assert tls["apiary_storage_url"] == "s3://apiary/fleet?endpoint=https://pi-hub.local:9000"


@pytest.mark.parametrize(
    ("address", "tls", "endpoint"),
    [
        (":9000", False, "http://127.0.0.1:9000"),
        ("0.0.0.0:9100", False, "http://127.0.0.1:9100"),
        ("192.168.1.20:9000", False, "http://192.168.1.20:9000"),
        ("pi-hub.lan:9443", True, "https://pi-hub.lan:9443"),
        (":9443", True, "https://pi-hub.local:9443"),  # the certificate names the host
    ],
)
def test_minio_endpoint_from_its_listen_address(
    tmp_path: Path, address: str, tls: bool, endpoint: str
) -> None:
    extra = json.dumps({"minio_address": address, "minio_tls_enabled": tls})
    got = _resolve(tmp_path, EXAMPLE_INVENTORY, "pi-hub.local", ["minio_endpoint"], "-e", extra)
    assert got["minio_endpoint"] == endpoint


def test_minio_env_file_keeps_any_password_intact(tmp_path: Path) -> None:
    """systemd's EnvironmentFile and a POSIX shell unquote double quotes the same way."""
    password = 'p"a$s\\w`o rd #1 $HOME'
    env_file = tmp_path / "minio.env"
    playbook = tmp_path / "env.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  vars_files:\n"
        f"    - {ANSIBLE_DIR}/roles/minio/defaults/main.yml\n"
        f"    - {ANSIBLE_DIR}/roles/minio/vars/main.yml\n"
        "  tasks:\n"
        "    - ansible.builtin.template:\n"
        f"        src: {ANSIBLE_DIR}/roles/minio/templates/minio.env.j2\n"
        f"        dest: {env_file}\n"
        "        mode: '0600'\n"
    )
    extra = json.dumps(
        {
            "minio_root_user": "admin user",
            "minio_root_password": password,
            "minio_extra_env": {"MINIO_BROWSER": "off"},
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
        }
    )
    run = run_playbook(str(playbook), Path("localhost,"), "-e", extra)
    assert run.returncode == 0, run.output[-4000:]
    shown = subprocess.run(
        ["sh", "-c", f'. "{env_file}"; printf "%s\\n%s\\n%s" "$MINIO_ROOT_USER" '
         '"$MINIO_ROOT_PASSWORD" "$MINIO_BROWSER"'],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert shown.stdout.split("\n") == ["admin user", password, "off"]


def test_example_vault_is_refused_outside_the_example_inventory(tmp_path: Path) -> None:
    node, bucket = Host("node", tmp_path / "node"), Host("hub", tmp_path / "hub")
    inventory = write_inventory(tmp_path / "inventory.yml", [node], bucket)
    # Refused before anything is downloaded: nothing listens at this URL.
    variables = common_vars("0.1.0", "http://127.0.0.1:9")
    for name in ("minio_node_access_key", "minio_install_sdk", "minio_sdk_python"):
        variables.pop(name)  # the group_vars (example vault) values, as a real fleet would have
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    try:
        # A play whose every host fails ends the playbook: the bucket host's check stops it...
        first = run_playbook("site.yml", inventory, "-e", f"@{extra}")
        # ...and with MinIO off, the node's own check does.
        second = run_playbook("site.yml", inventory, "-e", f"@{extra}", "-e", "minio_enabled=false")
    finally:
        stop_leftovers([node])
    assert first.returncode != 0 and second.returncode != 0
    assert "hub: minio_root_password or minio_node_secret_key is the example" in first.stdout
    assert "node: apiary_s3_secret_access_key is the example vault's public value" in (
        second.stdout
    )
    assert node.pid() is None and not node.config.exists()


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """moto enforcing IAM from its 6th request: the first five create the node user, its key,
    its policy (node_policy, as the minio role gives it) and two buckets."""
    with (
        mock.patch.dict(os.environ, {"INITIAL_NO_AUTH_ACTION_COUNT": "5"}),
        MotoServer() as server,
    ):
        import boto3

        kw = {"endpoint_url": server.endpoint, "aws_access_key_id": DUMMY_KEY,
              "aws_secret_access_key": DUMMY_KEY, "region_name": "us-east-1"}  # fmt: skip
        iam, s3 = boto3.client("iam", **kw), boto3.client("s3", **kw)
        iam.create_user(UserName="apiary-node")
        key = iam.create_access_key(UserName="apiary-node")["AccessKey"]
        policy = node_policy(["apiary-own"])
        # moto authorises a multi-object delete (obstore's delete) as s3:DeleteObject on the
        # bucket's ARN; AWS and MinIO check s3:DeleteObject on each object's, as node_policy
        # grants. Only this moto quirk is added here, not to what MinIO gets.
        policy["Statement"].append(
            {
                "Effect": "Allow",
                "Action": ["s3:DeleteObject"],
                "Resource": ["arn:aws:s3:::apiary-own"],
            }
        )
        iam.put_user_policy(
            UserName="apiary-node", PolicyName="apiary-node", PolicyDocument=json.dumps(policy)
        )
        s3.create_bucket(Bucket="apiary-own")
        s3.create_bucket(Bucket="apiary-other")
        yield server, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _as_node(server: MotoServer, key: dict[str, str]):
    import boto3

    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"], region_name="us-east-1",
    )  # fmt: skip


@pytest.mark.s3
def test_node_policy_allows_its_bucket_and_nothing_else(iam_s3) -> None:
    import botocore.exceptions

    server, key = iam_s3
    node = _as_node(server, key)
    node.put_object(Bucket="apiary-own", Key="fleet/x", Body=b"cell")
    assert node.get_object(Bucket="apiary-own", Key="fleet/x")["Body"].read() == b"cell"
    listed = node.list_objects_v2(Bucket="apiary-own", Prefix="fleet/")["Contents"]
    assert [o["Key"] for o in listed] == ["fleet/x"]
    node.delete_object(Bucket="apiary-own", Key="fleet/x")
    denied = {
        "other bucket": lambda: node.put_object(Bucket="apiary-other", Key="x", Body=b"x"),
        "list other": lambda: node.list_objects_v2(Bucket="apiary-other"),
        "create bucket": lambda: node.create_bucket(Bucket="apiary-third"),
        "delete bucket": lambda: node.delete_bucket(Bucket="apiary-own"),
    }
    for what, call in denied.items():
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            call()
        assert what


@pytest.mark.s3
def test_apiary_doctor_passes_with_the_node_key(iam_s3, tmp_path: Path) -> None:
    """Everything a node needs (conditional create-if-absent writes included) is allowed."""
    server, key = iam_s3
    env = {
        **ansible_env(),
        "AWS_ACCESS_KEY_ID": key["id"],
        "AWS_SECRET_ACCESS_KEY": key["secret"],
        "APIARY_HOME": str(tmp_path / "home"),
        "APIARY_CONFIG": str(tmp_path / "absent.toml"),
    }
    storage = f"s3://apiary-own/fleet?endpoint={server.endpoint}"
    for args in (["demo", "--rows", "100", "--batches", "1"], ["doctor", "--json"]):
        proc = subprocess.run(
            [sys.executable, "-m", "apiary", *args, "--storage", storage],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    results = {c["check"]: c["result"] for c in report["checks"]}
    assert results["conditional writes"] == "ok" and results["storage reachable"] == "ok"
