#!/usr/bin/python
# Ansible modules keep DOCUMENTATION/EXAMPLES/RETURN above the imports (ansible-doc reads them).
# ruff: noqa: E402
"""Create (or remove) an S3 bucket through the ``minio`` Python SDK."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_bucket
short_description: Create an S3 bucket on MinIO or any S3-compatible server
description:
  - Makes sure a bucket exists (or not), through the C(minio) Python SDK.
  - Reports C(changed) only when it created or removed the bucket.
options:
  name:
    description: Bucket name (DNS-valid).
    type: str
    required: true
  endpoint:
    description: Server URL, e.g. C(http://127.0.0.1:9000) or C(https://s3.example.org).
    type: str
    required: true
  access_key:
    description: Access key id.
    type: str
    required: true
  secret_key:
    description: Secret key (never logged).
    type: str
    required: true
  region:
    description: Region of a created bucket.
    type: str
    default: us-east-1
  validate_certs:
    description: Check the server's TLS certificate.
    type: bool
    default: true
  state:
    description: C(present) creates the bucket when missing; C(absent) removes an empty one.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - minio (the Python SDK) on the host that runs the task
author: Apiary
"""

EXAMPLES = r"""
- name: Create the swarm's bucket
  minio_bucket:
    name: apiary
    endpoint: http://127.0.0.1:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
"""

RETURN = r"""
bucket:
  description: The bucket name.
  type: str
  returned: always
"""

import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import urllib3
    from minio import Minio
    from minio.error import S3Error

    MINIO_IMPORT_ERROR = None
except ImportError:
    MINIO_IMPORT_ERROR = traceback.format_exc()


def _client(module):
    p = module.params
    url = urlsplit(p["endpoint"])
    if url.scheme not in ("http", "https") or not url.netloc:
        module.fail_json(msg=f"endpoint {p['endpoint']!r} must look like http(s)://host:port")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=30),
        retries=urllib3.Retry(total=2, backoff_factor=0.5),
        cert_reqs="CERT_REQUIRED" if p["validate_certs"] else "CERT_NONE",
    )
    return Minio(
        url.netloc,
        access_key=p["access_key"],
        secret_key=p["secret_key"],
        secure=url.scheme == "https",
        region=p["region"],
        http_client=http,
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "endpoint": {"type": "str", "required": True},
            "access_key": {"type": "str", "required": True, "no_log": True},
            "secret_key": {"type": "str", "required": True, "no_log": True},
            "region": {"type": "str", "default": "us-east-1"},
            "validate_certs": {"type": "bool", "default": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
        supports_check_mode=True,
    )
    if MINIO_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("minio"), exception=MINIO_IMPORT_ERROR)
    p = module.params
    client = _client(module)
    where = f"bucket {p['name']!r} on {p['endpoint']}"
    try:
        exists = client.bucket_exists(p["name"])
        wanted = p["state"] == "present"
        if exists == wanted:
            module.exit_json(changed=False, bucket=p["name"])
        if not module.check_mode:
            if wanted:
                client.make_bucket(p["name"], location=p["region"])
            else:
                client.remove_bucket(p["name"])
    except S3Error as exc:
        module.fail_json(msg=f"{where}: {exc.code}: {exc.message}")
    except Exception as exc:  # connection refused, TLS, DNS: say which server
        module.fail_json(msg=f"{where}: {type(exc).__name__}: {exc}")
    module.exit_json(changed=True, bucket=p["name"])


if __name__ == "__main__":
    main()
