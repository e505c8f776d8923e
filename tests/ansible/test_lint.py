"""ansible-lint (production profile) passes on all playbooks and roles, and catches a bad one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.ansible_fleet import ANSIBLE_DIR, ansible_env, require_tool

pytestmark = pytest.mark.ansible


def _lint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("ansible-lint"), "--nocolor", *args],
        cwd=cwd,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_ansible_lint_passes_on_playbooks_and_roles() -> None:
    done = _lint(cwd=ANSIBLE_DIR)  # uses ansible/.ansible-lint (profile: production)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "Profile 'production' was required, and it passed" in output
    for path in ("site.yml", "decommission.yml", "roles/minio", "roles/apiary_node"):
        assert (ANSIBLE_DIR / path).exists()


def test_ansible_lint_fails_on_a_bad_playbook(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "- hosts: all\n"
        "  tasks:\n"
        "    - shell: curl -k https://example.org/apiary | sh\n"
        "    - get_url: url=https://example.org/minio dest=/usr/local/bin/minio\n"
    )
    done = _lint("--offline", "--profile", "production", str(bad), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    for rule in ("name[missing]", "fqcn[action-core]", "risky-file-permissions"):
        assert rule in output, output[-3000:]
