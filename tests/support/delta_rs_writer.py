"""A delta-rs writer process: appends commits to a Delta table, printing one JSON ack per commit.

Started by tests beside Apiary writers (support/writer_process.py) to show that both tools
append to one table at once and lose nothing. Rows follow the same (writer, commit, id) shape.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import deltalake
from writer_process import batch


def storage_options(uri: str) -> dict[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    return {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--writer", type=int, required=True)
    parser.add_argument("--commits", type=int, default=1)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()
    options = storage_options(args.uri)
    deltalake.DeltaTable(args.uri, storage_options=options)  # the table exists and opens
    print("READY", flush=True)
    if args.wait_go:
        sys.stdin.readline()
    for commit in range(args.commits):
        deltalake.write_deltalake(
            args.uri,
            batch(args.writer, commit, args.rows),
            mode="append",
            storage_options=options,
            commit_properties=deltalake.CommitProperties(max_commit_retries=1000),
        )
        print(json.dumps({"writer": args.writer, "commit": commit, "version": None}), flush=True)


if __name__ == "__main__":
    main()
