"""The engine never imports Textual: a Pi running `apiary node` must not load a UI toolkit."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENGINE = (
    "import apiary, apiary.sdk, apiary.sql.session, apiary.sql.history, apiary.runtime.bees, "
    "apiary.runtime.colony, apiary.swarm.heartbeat, apiary.swarm.worker, apiary.cli, "
    "apiary.cli.node, apiary.cli.sql, apiary.cli.tui"
)


@pytest.mark.parametrize("code", [ENGINE, "from apiary import Apiary; Apiary"])
def test_the_engine_never_imports_textual(code: str) -> None:
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
    assert "tui" not in loaded


def test_the_tui_data_layer_needs_no_textual_either() -> None:
    script = "import tui.data, sys; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
