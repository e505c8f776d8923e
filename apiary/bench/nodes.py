"""Starting ``apiary node`` processes for the benchmarks, from an install or the frozen program."""

from __future__ import annotations

import importlib.util
import subprocess

from apiary.program import apiary_command


def start_node(storage: str, node_id: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        apiary_command("node", "--storage", storage, "--node-id", node_id),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def need_moto(what: str) -> None:
    if importlib.util.find_spec("moto") is None:
        raise ModuleNotFoundError(f"the {what} benchmark needs moto: pip install 'apiary[bench]'")
