"""The ``apiary`` system user, added to the base image's account files as plain text.

``adduser`` cannot run without the image's own userland, so the four files are edited
directly. The id is chosen the way ``systemd-sysusers`` does — the highest number below 1000
free as both a uid and a gid — from the base's own files, so the same base always gives the
same id and files in the image can be owned by it at build time.
"""

from __future__ import annotations

from dataclasses import dataclass

USER = "apiary"
HOME = "/var/lib/apiary"
SHELL = "/usr/sbin/nologin"
GECOS = "Apiary node"
FIRST_SYSTEM_ID = 100  # Debian's FIRST_SYSTEM_UID / _GID
LAST_SYSTEM_ID = 999  # Debian's LAST_SYSTEM_UID / _GID


@dataclass(frozen=True)
class AccountFiles:
    passwd: str
    group: str
    shadow: str
    gshadow: str | None  # Debian has one; a minimal base may not


@dataclass(frozen=True)
class Added:
    files: AccountFiles
    uid: int
    gid: int
    created: bool  # False when the base already had the user


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _ids(text: str, column: int) -> set[int]:
    return {int(e[column]) for e in _entries(text) if len(e) > column and e[column].isdigit()}


def _append(text: str, line: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def free_system_id(passwd: str, group: str) -> int:
    taken = _ids(passwd, 2) | _ids(passwd, 3) | _ids(group, 2)
    for candidate in range(LAST_SYSTEM_ID, FIRST_SYSTEM_ID - 1, -1):
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free system id between {FIRST_SYSTEM_ID} and {LAST_SYSTEM_ID}")


def add_system_user(files: AccountFiles, *, epoch: int) -> Added:
    """The account files with user and group ``apiary`` added (locked, no login shell).

    A base that already has the user keeps it and its ids; a group of the same name without the
    user is an error, since its gid could belong to anything.
    """
    users = {e[0]: e for e in _entries(files.passwd)}
    groups = {e[0]: e for e in _entries(files.group)}
    if USER in users:
        entry = users[USER]
        return Added(files=files, uid=int(entry[2]), gid=int(entry[3]), created=False)
    if USER in groups:
        raise ValueError(f"the base image has a group {USER!r} but no such user")
    uid = gid = free_system_id(files.passwd, files.group)
    # Last password change in days since 1970, from the build's clock: reproducible.
    days = epoch // 86400
    return Added(
        files=AccountFiles(
            passwd=_append(files.passwd, f"{USER}:x:{uid}:{gid}:{GECOS}:{HOME}:{SHELL}"),
            group=_append(files.group, f"{USER}:x:{gid}:"),
            # "!*": locked, and no password was ever set; nobody logs in as the service.
            shadow=_append(files.shadow, f"{USER}:!*:{days}::::::"),
            gshadow=None if files.gshadow is None else _append(files.gshadow, f"{USER}:!::"),
        ),
        uid=uid,
        gid=gid,
        created=True,
    )
