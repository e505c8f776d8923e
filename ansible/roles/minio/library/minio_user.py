#!/usr/bin/python
# Ansible modules keep DOCUMENTATION/EXAMPLES/RETURN above the imports (ansible-doc reads them).
# ruff: noqa: E402
"""Create a MinIO user whose policy allows its bucket(s) only (the Apiary nodes' key)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_user
short_description: A MinIO user limited to some buckets, through the MinIO admin API
description:
  - Makes sure a MinIO user exists with the given secret key and an attached policy that
    allows listing, reading, writing and deleting objects in the given buckets and nothing else
    (the policy document is module_utils/apiary_node_policy.py).
  - Reports C(changed) only when it created or corrected the policy, the user, its secret key
    or the attachment. The secret key is checked by signing one request with it.
options:
  endpoint:
    description: Server URL, e.g. C(http://127.0.0.1:9000).
    type: str
    required: true
  access_key:
    description: The admin (root) access key.
    type: str
    required: true
  secret_key:
    description: The admin (root) secret key (never logged).
    type: str
    required: true
  user_access_key:
    description: The user's access key.
    type: str
    required: true
  user_secret_key:
    description: The user's secret key (8+ characters, never logged).
    type: str
    required: true
  buckets:
    description: Buckets the user may use.
    type: list
    elements: str
    required: true
  policy_name:
    description: Name of the policy created for the user.
    type: str
    default: apiary-node
  validate_certs:
    description: Check the server's TLS certificate.
    type: bool
    default: true
requirements:
  - minio (the Python SDK) on the host that runs the task
author: Apiary
"""

EXAMPLES = r"""
- name: The nodes' key, scoped to the swarm's bucket
  minio_user:
    endpoint: http://127.0.0.1:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    user_access_key: "{{ minio_node_access_key }}"
    user_secret_key: "{{ minio_node_secret_key }}"
    buckets: [apiary]
"""

RETURN = r"""
user:
  description: The user's access key.
  type: str
  returned: always
"""

import json
import traceback
from urllib.parse import urlsplit

from ansible.module_utils.apiary_node_policy import node_policy
from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import urllib3
    from minio import Minio, MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import MinioAdminException, S3Error

    MINIO_IMPORT_ERROR = None
except ImportError:
    MINIO_IMPORT_ERROR = traceback.format_exc()


def _http(p):
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=30),
        retries=urllib3.Retry(total=2, backoff_factor=0.5),
        cert_reqs="CERT_REQUIRED" if p["validate_certs"] else "CERT_NONE",
    )


def _secret_works(p, url):
    """Sign one request with the user's own key: the admin API never returns a secret."""
    client = Minio(
        url.netloc,
        access_key=p["user_access_key"],
        secret_key=p["user_secret_key"],
        secure=url.scheme == "https",
        http_client=_http(p),
    )
    try:
        client.bucket_exists(p["buckets"][0])
    except S3Error as exc:
        if exc.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
            return False
        raise
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoint": {"type": "str", "required": True},
            "access_key": {"type": "str", "required": True, "no_log": True},
            "secret_key": {"type": "str", "required": True, "no_log": True},
            "user_access_key": {"type": "str", "required": True},
            "user_secret_key": {"type": "str", "required": True, "no_log": True},
            "buckets": {"type": "list", "elements": "str", "required": True},
            "policy_name": {"type": "str", "default": "apiary-node"},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if MINIO_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("minio"), exception=MINIO_IMPORT_ERROR)
    p = module.params
    url = urlsplit(p["endpoint"])
    if url.scheme not in ("http", "https") or not url.netloc:
        module.fail_json(msg=f"endpoint {p['endpoint']!r} must look like http(s)://host:port")
    if p["user_access_key"] == p["access_key"]:
        module.fail_json(msg="the nodes' access key must differ from the MinIO root user")
    if len(p["user_secret_key"]) < 8:
        module.fail_json(msg="the nodes' secret key needs 8+ characters (MinIO refuses less)")
    admin = MinioAdmin(
        endpoint=url.netloc,
        credentials=StaticProvider(p["access_key"], p["secret_key"]),
        secure=url.scheme == "https",
        cert_check=p["validate_certs"],
    )
    wanted = node_policy(p["buckets"])
    changed = False
    where = f"user {p['user_access_key']!r} on {p['endpoint']}"
    try:
        try:
            current = json.loads(admin.policy_info(p["policy_name"]))
            current = current.get("Policy", current)  # newer servers wrap the document
        except MinioAdminException:
            current = None
        if current != wanted:
            changed = True
            if not module.check_mode:
                admin.policy_add(p["policy_name"], policy=wanted)
        try:
            info = json.loads(admin.user_info(p["user_access_key"]))
        except MinioAdminException:
            info = None
        if info is None or not _secret_works(p, url):
            changed = True  # missing, or its secret key changed in the vault: (re)set it
            if not module.check_mode:
                admin.user_add(p["user_access_key"], p["user_secret_key"])
        attached = str((info or {}).get("policyName", "")).split(",")
        if p["policy_name"] not in attached:
            changed = True
            if not module.check_mode:
                admin.policy_set(p["policy_name"], user=p["user_access_key"])
    except Exception as exc:  # connection refused, TLS, DNS, admin API errors: say which server
        module.fail_json(msg=f"{where}: {type(exc).__name__}: {exc}")
    module.exit_json(changed=changed, user=p["user_access_key"])


if __name__ == "__main__":
    main()
