"""The S3 policy Apiary nodes get: their bucket(s) and nothing else.

Pure data, shared by the ``minio_user`` module and the tests (which check it against moto's
IAM policy evaluation). What a node does on its bucket: list, read, create-if-absent writes
(PutObject with If-None-Match), delete (vacuum, heartbeats), multipart uploads of large cells.
No bucket creation or removal, no policy or user administration, no other bucket.
"""

from __future__ import annotations

BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]


def node_policy(buckets):
    """An IAM-style policy document (as MinIO and AWS read it) for ``buckets``."""
    if not buckets:
        raise ValueError("a node policy needs at least one bucket")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(BUCKET_ACTIONS),
                "Resource": [f"arn:aws:s3:::{b}" for b in buckets],
            },
            {
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets],
            },
        ],
    }
