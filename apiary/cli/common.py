"""Options and error handling shared by every command."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from apiary.errors import ApiaryError

if TYPE_CHECKING:
    from apiary.sdk import Apiary

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def storage_options(fn: F) -> F:
    """``--storage`` and ``--name``: which storage root a command works on."""
    fn = click.option(
        "--name",
        default="default",
        show_default=True,
        envvar="APIARY_NAME",
        help="Apiary name; picks ~/.apiary/data/<name> when no --storage is given.",
    )(fn)
    return click.option(
        "--storage",
        envvar="APIARY_STORAGE",
        default=None,
        metavar="URI",
        help="Storage root: a directory, s3://bucket/prefix?endpoint=URL or memory://name.",
    )(fn)


def open_apiary(name: str, storage: str | None, *, create: bool) -> Apiary:
    """The client of a command (not a node): it stays out of the swarm, and only a command that
    makes data (``create``: demo, load) may create a local root that does not exist yet, so a
    mistyped ``--storage`` path is an error rather than a new, empty root."""
    from apiary.sdk import Apiary

    return Apiary(name, storage, join_swarm=False, create_root=create)


def frame_argument(fn: F) -> F:
    return click.argument("frame", metavar="HIVE.BOX.FRAME")(fn)


def split_frame(name: str) -> tuple[str, str, str]:
    parts = name.split(".")
    if len(parts) != 3:
        raise click.BadParameter(f"{name!r}: write the frame as hive.box.frame")
    return parts[0], parts[1], parts[2]


@contextlib.contextmanager
def fail_cleanly() -> Iterator[None]:
    """An ApiaryError ends the command with its message (no traceback) and exit status 1."""
    try:
        yield
    except ApiaryError as exc:
        # escape: a message's own brackets ("the [credentials] table") are not markup
        # soft_wrap: one line the terminal wraps, so a path or command in it copies whole
        err_console.print(
            f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
