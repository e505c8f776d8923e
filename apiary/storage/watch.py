"""Waking a poller when something appears under a folder of a local root.

Nodes find work by listing the bucket on a timer. On S3 nothing better exists, but on a local
root (several processes on one machine, the embedded default) the kernel can say when a file
appears: Linux's inotify, through libc with ctypes (no package offers it for this; it is four
calls). A poller then waits for the kernel or its timer, whichever comes first; the timer
stays, so a missed event (a network filesystem, an unknown kernel) only costs latency.

Only the presence of a change is reported, never what it is: the poller lists the folder as
it would have anyway, so nothing read from an event is trusted. A local put first writes a
staged file (``name#n``, hidden from listings) and renames it; the staged file's appearance
wakes nobody, since a listing would not show it yet. A poller that only acts on files of
some names (a worker: manifests) is woken by those alone: another node's answer landing woke
every worker, whose look then took CPU from the task running on its core.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from apiary.storage.local import STAGED
from apiary.storage.uri import Location

_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_ISDIR = 0x40000000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_MASK = _IN_CREATE | _IN_MOVED_TO | _IN_ONLYDIR
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
MAX_WATCHED = 1024  # folders watched at most (each live query has one)
# Seconds between a poller's looks at least, when the kernel notifies: the timer then only backs
# up a missed event and notices what makes no event (a dead node, a timeout, a cancel). Looks
# every few ms took CPU from the bee working on the same core.
BACKSTOP = 0.1


class Watch(Protocol):
    notifies: bool  # True when the kernel wakes the waiter; False: only time and pokes do

    def wait(self, timeout: float) -> bool:
        """Block until something appeared, :meth:`poke` was called, or ``timeout`` seconds
        passed; True unless the time simply ran out."""
        ...

    def poke(self) -> None:
        """Wake a :meth:`wait` now (from another thread)."""
        ...

    def close(self) -> None: ...


class Timer:
    """No notifications: ``wait`` sleeps its timeout unless poked."""

    notifies = False

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def poke(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._event.set()


def watch(
    location: Location,
    prefix: str,
    names: frozenset[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
) -> Watch:
    """A watch on ``prefix`` (one folder name at the root) and the folders made in it, woken
    by files of ``names`` only (None: any file, and any new folder), and never by what lands
    in a folder whose name ``ignore`` accepts as it is made; a :class:`Timer` where the
    kernel cannot tell (not a local root, not Linux, no inotify)."""
    if location.scheme != "file" or not sys.platform.startswith("linux") or "/" in prefix:
        return Timer()
    try:
        return Inotify(Path(location.path), prefix, names=names, ignore=ignore)
    except OSError:
        return Timer()


def watch_folder(location: Location, folder: str) -> Watch:
    """A watch on files appearing in ``folder`` (a path under the root that exists now: a
    query's own folder, watched by its coordinator while it waits for answers); a
    :class:`Timer` where the kernel cannot tell."""
    if location.scheme != "file" or not sys.platform.startswith("linux"):
        return Timer()
    try:
        return Inotify(Path(location.path), folder, tree=False)
    except OSError:
        return Timer()


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs `ldconfig -p` in a subprocess (~1 ms): once per process, not per watch.
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Inotify:
    """Files created or renamed into ``root/prefix/<folder>/``, and the folders themselves;
    without ``tree``, files in ``root/prefix`` alone (which must exist).

    The root is watched for ``prefix`` appearing (a local store removes emptied folders, so
    ``prefix`` comes and goes), ``prefix`` for new folders, and each of those for new files.
    A watch is added before the caller lists, so a file made meanwhile is either listed or
    reported.
    """

    notifies = True

    def __init__(
        self,
        root: Path,
        prefix: str,
        *,
        tree: bool = True,
        names: frozenset[str] | None = None,
        ignore: Callable[[str], bool] | None = None,
    ) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._fd = fd
        self._read_end, self._write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._root = root
        self._prefix = prefix
        self._names = names
        self._ignore = ignore
        self._folders: dict[int, Path] = {}  # watch descriptor -> folder
        self._lock = threading.Lock()
        try:
            if not tree:
                if not self._add(root / prefix):
                    raise OSError(f"cannot watch {root / prefix}")
            else:
                self._add(root)
                self._add_folder(root / prefix)
        except OSError:
            self.close()
            raise

    def _add(self, folder: Path) -> bool:
        if len(self._folders) >= MAX_WATCHED:
            return False
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
        if wd < 0:
            return False  # gone already, or not a folder: the caller's listing covers it
        self._folders[wd] = folder
        return True

    def _add_folder(self, top: Path) -> bool:
        """Watch ``top`` (the prefix folder) and the folders already in it; True if one of
        them already holds a file worth waking for."""
        if not self._add(top):
            return False
        found = False
        with contextlib.suppress(OSError):
            for entry in os.scandir(top):
                if entry.is_dir(follow_symlinks=False):
                    found = self._add_query_folder(Path(entry.path)) or found
        return found

    def _add_query_folder(self, folder: Path) -> bool:
        """Watch a folder made in the prefix; True if it is worth waking for: any new folder,
        or, with ``names``, one already holding such a file (written before the watch was
        added, so no event of its own tells). A folder ``ignore`` accepts is not watched."""
        if self._ignore is not None and self._ignore(folder.name):
            return False
        added = self._add(folder)
        if self._names is None:
            return True
        if not added:
            return False  # gone already, or too many watched: the timed look covers it
        with contextlib.suppress(OSError):
            return any(entry.name in self._names for entry in os.scandir(folder))
        return False

    def _wanted(self, name: str) -> bool:
        if self._names is not None:
            return name in self._names
        return not STAGED.fullmatch(name)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            try:
                ready, _, _ = select.select(
                    [self._fd, self._read_end], [], [], max(deadline - time.monotonic(), 0)
                )
            except (OSError, ValueError):  # closed meanwhile
                return True
            if not ready:
                return False
            with self._lock:
                poked = self._read_end in ready
                if poked:
                    with contextlib.suppress(OSError):
                        os.read(self._read_end, 4096)
                noticed = self._fd in ready and self._drain()
                if poked or noticed:
                    return True

    def _drain(self) -> bool:
        """Read every pending event; True if any was more than a staged upload appearing."""
        seen = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except (BlockingIOError, OSError):
                return seen
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                offset += _EVENT.size + length
                name = raw.split(b"\0", 1)[0].decode(errors="replace")
                folder = self._folders.get(wd)
                if mask & _IN_IGNORED:
                    self._folders.pop(wd, None)  # its folder was removed
                    continue
                if folder is None or not mask & _IN_ISDIR or not name or "/" in name:
                    seen = seen or self._wanted(name)
                elif folder == self._root:
                    if name == self._prefix:
                        seen = self._add_folder(folder / name) or seen
                elif folder == self._root / self._prefix:
                    seen = self._add_query_folder(folder / name) or seen

    def poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"x")

    def close(self) -> None:
        for fd in (getattr(self, "_fd", -1), getattr(self, "_read_end", -1)):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._write_end)
        self._fd = self._read_end = self._write_end = -1
