"""``apiary_sha256_for``: the sha256 of one file from ``sha256sum`` output."""

from __future__ import annotations

import re

LINE = re.compile(r"^([0-9a-fA-F]{64})(?:\s+\*?(\S.*))?$")


def apiary_sha256_for(text: str, name: str) -> str:
    """The lowercase hex digest listed for ``name`` (a bare digest counts as that file's);
    "" when the text has none, so the role's assert can say what is wrong."""
    for line in str(text).splitlines():
        match = LINE.match(line.strip())
        if match and (match[2] is None or match[2].rsplit("/", 1)[-1] == name):
            return match[1].lower()
    return ""


class FilterModule:
    def filters(self) -> dict:
        return {"apiary_sha256_for": apiary_sha256_for}
