"""Turning DataFusion's errors into Apiary errors a person can act on."""

from __future__ import annotations

import difflib
import re

from apiary.catalog.models import RegistryState
from apiary.errors import (
    ApiaryError,
    EntityNotFoundError,
    MemoryExceededError,
    SqlError,
    StorageError,
)


def planning_error(
    exc: Exception, state: RegistryState, missing: list[tuple[str, str, str]]
) -> ApiaryError:
    text = clean(exc)
    if isinstance(exc, ApiaryError):
        return exc
    if missing:
        hive, box, name = missing[0]
        frames = state.hives[hive].boxes[box].frames
        close = difflib.get_close_matches(name, list(frames), n=3, cutoff=0.6)
        if close:
            hint = f"did you mean {' or '.join(f'{hive}.{box}.{c}' for c in close)}?"
        else:
            hint = f"frames in {hive}.{box}: {', '.join(sorted(frames)) or 'none yet'}"
        return EntityNotFoundError(f"frame {hive}.{box}.{name} does not exist; {hint}")
    match = re.search(r"table '([^']+)' not found", text)
    if match:
        return EntityNotFoundError(unknown_table_hint(match[1], state))
    return SqlError(text)


def unknown_table_hint(name: str, state: RegistryState) -> str:
    parts = name.split(".")
    if len(parts) == 3 and parts[0] not in state.hives:
        close = difflib.get_close_matches(parts[0], list(state.hives), n=3, cutoff=0.6)
        where = (
            f"did you mean hive {' or '.join(close)}?"
            if close
            else (f"hives: {', '.join(sorted(state.hives)) or 'none yet'}")
        )
        if parts[0] == "datafusion":  # an unqualified name with no USE in effect
            where = "name it hive.box.frame, or USE HIVE and USE BOX first"
        if parts[0] == "datafusion":
            return f"{parts[2]} not found; {where}"
        return f"hive {parts[0]} does not exist; {where}"
    if len(parts) == 3 and parts[1] not in state.hives[parts[0]].boxes:
        boxes = state.hives[parts[0]].boxes
        close = difflib.get_close_matches(parts[1], list(boxes), n=3, cutoff=0.6)
        where = (
            f"did you mean box {parts[0]}.{close[0]}?"
            if close
            else (f"boxes in {parts[0]}: {', '.join(sorted(boxes)) or 'none yet'}")
        )
        return f"box {parts[0]}.{parts[1]} does not exist; {where}"
    return f"{name} not found"


def execution_error(exc: Exception) -> ApiaryError:
    text = clean(exc)
    if "not found" in text.lower() or "no such file" in text.lower():
        return StorageError(
            f"a cell of the queried frames is missing from storage ({text}); it was deleted "
            "outside Apiary or vacuumed while still referenced. Restore it, or overwrite "
            "the frame."
        )
    if "Resources exhausted" in text:
        return MemoryExceededError(
            f"the query needed more memory than it may use ({text}); add a more selective "
            "WHERE clause, fewer GROUP BY keys, or give the node more memory"
        )
    return SqlError(text)


def clean(exc: Exception) -> str:
    """DataFusion's message without its prefixes, on one line, with its innermost cause.

    A failing optimizer rule says only "Optimizer rule 'x' failed" on its first line; what went
    wrong (a decimal overflow, a bad cast) follows in "caused by" sections.
    """
    text = str(exc).strip()
    for prefix in _PREFIXES:
        text = text.replace(prefix, "")
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0].strip()
    causes = re.split(r"\n\s*caused by\s*\n", text)
    cause = causes[-1].strip().splitlines()[0].strip() if len(causes) > 1 else ""
    if not cause or cause in first:
        return first
    return f"{cause} ({first})"


_PREFIXES = (
    "DataFusion error: ",
    "Error during planning: ",
    "SQL error: ",
    "Arrow error: ",
    "External error: ",
)
