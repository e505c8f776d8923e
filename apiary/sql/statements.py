"""What kind of statement a person typed (pure logic).

Apiary's own commands (USE, SHOW, DESCRIBE), the row-changing statements (DELETE, UPDATE,
INSERT) and the blocked statements are recognised here by their leading keywords; everything else
is a query for DataFusion, optionally under EXPLAIN.

DELETE / UPDATE / INSERT are cut into their parts (target, WHERE text, SET assignments, the query
that feeds an INSERT) by a small splitter that skips quoted text and parentheses, because the
DataFusion bindings expose no SQL syntax tree. Each part is then planned by DataFusion on its own
(read-only), so a part the splitter cut wrongly fails to plan rather than doing something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from apiary.errors import SqlError

# Statement keyword -> the SDK call that does the job instead.
BLOCKED = {
    "MERGE": "upsert(hive, box, frame, data, on=[key columns])",
    "TRUNCATE": "delete_rows(hive, box, frame, 'TRUE'), or DELETE FROM frame",
    "CREATE": "create_hive / create_box / create_frame(hive, box, frame, schema)",
    "DROP": "drop_hive / drop_box / drop_frame",
    "COPY": "read_from_frame(...) to get Arrow, or `apiary load` to bring files in",
}
# SET / RESET of anything but a DataFusion option: where Apiary's own settings are made.
SETTINGS_HINT = "Apiary settings (apiary.toml / APIARY_* variables)"

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_QUALIFIED = rf'(?:{_NAME}\.){{0,2}}(?:{_NAME}|"[^"]+")'
# Comments, skipping quoted text: a '--' inside a string literal is data, not a comment.
_COMMENTS = re.compile(r"('(?:[^']|'')*'|\"[^\"]*\")|--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Use:
    hive: str | None = None
    box: str | None = None


@dataclass(frozen=True)
class Show:
    what: str  # "hives" | "boxes" | "frames"
    within: str | None = None  # "h" for boxes, "h.b" or "b" for frames


@dataclass(frozen=True)
class Describe:
    name: str  # as typed: "f", "b.f", "h.b.f", '"f@v3"'


@dataclass(frozen=True)
class Query:
    sql: str
    explain: bool = False
    analyze: bool = False


@dataclass(frozen=True)
class Delete:
    target: str  # as typed: "f", "b.f", "h.b.f"
    where: str | None = None  # None: every row


@dataclass(frozen=True)
class Update:
    target: str
    assignments: tuple[tuple[str, str], ...]  # (column, SQL expression)
    where: str | None = None


@dataclass(frozen=True)
class Insert:
    target: str
    columns: tuple[str, ...] | None  # INSERT INTO f (a, b) ...; None: every column, in order
    query: str  # SELECT ... / VALUES ... / WITH ...


@dataclass(frozen=True)
class AddColumn:
    """``ALTER TABLE f ADD COLUMN [IF NOT EXISTS] c type``."""

    name: str  # the frame as typed
    column: str
    type: str  # as typed; SQL names (BIGINT, VARCHAR, ...) are mapped by sql_type
    if_not_exists: bool = False


@dataclass(frozen=True)
class SetOption:
    """``SET datafusion.x = value`` for this session's queries; ``RESET datafusion.x``
    (``value`` None) takes the node's choice back."""

    name: str
    value: str | None


Statement = Use | Show | Describe | Query | Delete | Update | Insert | AddColumn | SetOption

_ALTER_ADD = re.compile(
    rf"ALTER\s+(?:TABLE|FRAME)\s+({_QUALIFIED})\s+ADD\s+(?:COLUMN\s+)?"
    rf"(IF\s+NOT\s+EXISTS\s+)?({_NAME})\s+(.+)",
    re.IGNORECASE | re.DOTALL,
)
# SQL type names -> the frame type names create_frame takes (anything else is passed on as is).
SQL_TYPES = {
    "tinyint": "int8",
    "smallint": "int16",
    "int": "int32",
    "integer": "int32",
    "bigint": "int64",
    "real": "float32",
    "float4": "float32",
    "float8": "float64",
    "double precision": "float64",
    "varchar": "string",
    "text": "string",
    "char": "string",
}
# A version suffix that is a point in time: "frame@2026-11-30T12:00:00Z" (a zone is required).
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")

_SET = re.compile(
    r"SET\s+(datafusion(?:\.[A-Za-z0-9_]+)+)\s*(?:=|\s+TO\s+)\s*('(?:[^']|'')*'|[^\s']+)",
    re.IGNORECASE,
)
_RESET = re.compile(r"RESET\s+(datafusion(?:\.[A-Za-z0-9_]+)+)", re.IGNORECASE)
_USE = re.compile(rf"USE\s+(HIVE|DATABASE|BOX|SCHEMA)\s+({_NAME})", re.IGNORECASE)
_USE_PATH = re.compile(rf"USE\s+({_NAME})(?:\.({_NAME}))?", re.IGNORECASE)
_SHOW = re.compile(
    r"SHOW\s+(HIVES|DATABASES|BOXES|SCHEMAS|FRAMES|TABLES)"
    rf"(?:\s+(?:IN|FROM)\s+({_NAME}(?:\.{_NAME})?))?",
    re.IGNORECASE,
)
_DESCRIBE = re.compile(rf"(?:DESCRIBE|DESC)\s+(?:FRAME\s+|TABLE\s+)?({_QUALIFIED})", re.IGNORECASE)
_DELETE = re.compile(rf"DELETE\s+FROM\s+({_QUALIFIED})(.*)", re.IGNORECASE | re.DOTALL)
_UPDATE = re.compile(rf"UPDATE\s+({_QUALIFIED})\s+SET\s(.*)", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(rf"INSERT\s+INTO\s+({_QUALIFIED})(.*)", re.IGNORECASE | re.DOTALL)
_ASSIGNMENT = re.compile(rf'\s*({_NAME}|"[^"]+")\s*=(?!=)(.*)', re.DOTALL)
_COLUMN_LIST = re.compile(
    rf'\s*\(\s*((?:{_NAME}|"[^"]+")(?:\s*,\s*(?:{_NAME}|"[^"]+"))*)\s*\)(.*)', re.DOTALL
)
_QUERY_START = re.compile(r"(SELECT|VALUES|WITH)\b|\(", re.IGNORECASE)
_EXPLAIN = re.compile(r"EXPLAIN\s+(ANALYZE\s+)?(?:VERBOSE\s+)?(.*)", re.IGNORECASE | re.DOTALL)
_KINDS = {
    "hives": "hives",
    "databases": "hives",
    "boxes": "boxes",
    "schemas": "boxes",
    "frames": "frames",
    "tables": "frames",
}


def strip(sql: str) -> str:
    """The statement without comments, surrounding space or a trailing ';'."""
    text = _COMMENTS.sub(lambda m: m[1] or " ", sql).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def classify(sql: str) -> Statement:
    text = strip(sql)
    if not text:
        raise SqlError("empty statement; write a query such as SELECT * FROM hive.box.frame")
    first = text.split(None, 1)[0].upper()
    if first in BLOCKED:
        raise SqlError(
            f"{first} statements are not run through SQL in Apiary; "
            f"use the SDK instead: {BLOCKED[first]}"
        )
    if first in ("SET", "RESET"):
        return _set(text, first)
    if first == "DELETE":
        return _delete(text)
    if first == "UPDATE":
        return _update(text)
    if first == "INSERT":
        return _insert(text)
    if first == "USE":
        if m := _USE.fullmatch(text):
            kind = m[1].upper()
            return Use(hive=m[2]) if kind in ("HIVE", "DATABASE") else Use(box=m[2])
        if m := _USE_PATH.fullmatch(text):
            return Use(hive=m[1], box=m[2]) if m[2] else Use(box=m[1])
        raise SqlError("write USE HIVE name, USE BOX name or USE hive.box")
    if first == "SHOW":
        if m := _SHOW.fullmatch(text):
            return Show(_KINDS[m[1].lower()], m[2])
        raise SqlError("write SHOW HIVES, SHOW BOXES [IN hive] or SHOW FRAMES [IN hive.box]")
    if first in ("DESCRIBE", "DESC"):
        if m := _DESCRIBE.fullmatch(text):
            return Describe(m[1])
        raise SqlError("write DESCRIBE hive.box.frame (or a shorter name after USE)")
    if first == "ALTER":
        if m := _ALTER_ADD.fullmatch(text):
            return AddColumn(m[1], m[3], m[4].strip(), bool(m[2]))
        raise SqlError(
            "ALTER supports only ALTER TABLE frame ADD COLUMN [IF NOT EXISTS] name type (a "
            "nullable column; rows written before read it as null). Columns cannot be renamed "
            "or dropped (that needs Delta column mapping); widen a column with the SDK's "
            "widen_column(hive, box, frame, column, new_type)"
        )
    if first == "EXPLAIN":
        m = _EXPLAIN.fullmatch(text)
        assert m is not None
        return Query(m[2], explain=True, analyze=bool(m[1]))
    return Query(text)


def _set(text: str, first: str) -> SetOption:
    if m := _SET.fullmatch(text):
        value = m[2]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        return SetOption(m[1].lower(), value)
    if m := _RESET.fullmatch(text):
        return SetOption(m[1].lower(), None)
    words = text.split()
    if len(words) > 1 and words[1].lower().startswith("datafusion."):
        raise SqlError("write SET datafusion.name = value, or RESET datafusion.name")
    raise SqlError(
        f"{first} here changes only DataFusion options for this session's queries "
        f"(SET datafusion.execution.parquet.pushdown_filters = true); for the rest use "
        f"{SETTINGS_HINT}"
    )


def _delete(text: str) -> Delete:
    m = _DELETE.fullmatch(text)
    rest = m[2].strip() if m else ""
    where = _after_where(rest) if rest else None
    if m is None or (rest and where is None):
        raise SqlError("write DELETE FROM frame [WHERE condition]")
    return Delete(m[1], where)


def _update(text: str) -> Update:
    m = _UPDATE.fullmatch(text)
    if m is None:
        raise SqlError("write UPDATE frame SET column = expression, ... [WHERE condition]")
    at = _find_keyword(m[2], "WHERE")
    sets, where = (m[2], None) if at is None else (m[2][:at], m[2][at + len("WHERE") :].strip())
    assignments = []
    for part in _split_top(sets, ","):
        a = _ASSIGNMENT.fullmatch(part)
        if a is None or not a[2].strip():
            raise SqlError(f"UPDATE ... SET: {part.strip()[:80]!r} is not column = expression")
        assignments.append((a[1].strip('"'), a[2].strip()))
    if where == "":
        raise SqlError("UPDATE ... WHERE needs a condition")
    return Update(m[1], tuple(assignments), where)


def _insert(text: str) -> Insert:
    m = _INSERT.fullmatch(text)
    if m is None:
        raise SqlError("write INSERT INTO frame [(columns)] SELECT ... or VALUES (...)")
    rest, columns = m[2], None
    if (c := _COLUMN_LIST.fullmatch(rest)) and _QUERY_START.match(c[2].strip()):
        columns = tuple(name.strip().strip('"') for name in c[1].split(","))
        rest = c[2]
    query = rest.strip()
    if not _QUERY_START.match(query):
        raise SqlError("write INSERT INTO frame [(columns)] SELECT ... or VALUES (...)")
    return Insert(m[1], columns, query)


def _after_where(rest: str) -> str | None:
    m = re.match(r"WHERE\s(.*)", rest, re.IGNORECASE | re.DOTALL)
    return m[1].strip() if m and m[1].strip() else None


def _top_level(text: str) -> list[bool]:
    """For each character: is it outside quotes ('...', "...") and parentheses?"""
    flags, depth, quote = [], 0, ""
    for ch in text:
        if quote:
            flags.append(False)
            if ch == quote:
                quote = ""  # a doubled quote ('it''s') closes and reopens: same result
            continue
        if ch in "'\"":
            quote = ch
            flags.append(False)
            continue
        if ch == "(":
            depth += 1
        flags.append(depth == 0 and ch != ")")
        if ch == ")":
            depth = max(depth - 1, 0)
    return flags


def balanced(text: str) -> bool:
    """Is ``text`` one piece of SQL: quotes closed, parentheses paired (never closing one not
    open), and no ';' or comment outside quotes?

    A condition or SET expression is pasted into generated SQL inside parentheses, so one that
    is not (``x) OR (TRUE``, ``x --``) could change what the generated SQL means."""
    chars, open_quote = _unquoted(text)
    depth = 0
    for i, ch in chars:
        if ch == ";" or text[i : i + 2] in ("--", "/*"):
            return False
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0 and not open_quote


def closing(text: str, opening: int) -> int | None:
    """Where the parenthesis opened at ``opening`` closes, outside quotes; None if never."""
    depth = 0
    for i, ch in _unquoted(text, opening)[0]:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return i
    return None


def _unquoted(text: str, start: int = 0) -> tuple[list[tuple[int, str]], bool]:
    """The characters of ``text`` from ``start`` outside quotes ('...', "...") with their
    positions, and whether a quote is left open at the end."""
    chars, quote = [], ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote  # a doubled quote closes and reopens
        elif ch in "'\"":
            quote = ch
        else:
            chars.append((i, ch))
    return chars, bool(quote)


def _find_keyword(text: str, word: str) -> int | None:
    """Where ``word`` (a whole word, any case) first stands outside quotes and parentheses."""
    top = _top_level(text)
    for m in re.finditer(rf"\b{word}\b", text, re.IGNORECASE):
        if all(top[m.start() : m.end()]):
            return m.start()
    return None


def _split_top(text: str, sep: str) -> list[str]:
    top = _top_level(text)
    parts, start = [], 0
    for i, ch in enumerate(text):
        if ch == sep and top[i]:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def split_name(name: str) -> tuple[list[str], int | datetime | None]:
    """``'b."f@v3"'`` -> (["b", "f"], 3): the parts and the version suffix, if any."""
    parts = [part.strip('"') for part in re.findall(r'"[^"]+"|[^.]+', name)]
    version = None
    if "@" in parts[-1]:
        base, _, suffix = parts[-1].rpartition("@")
        version = parse_version(suffix, name)
        parts[-1] = base
    return parts, version


def parse_version(suffix: str, name: str) -> int | datetime:
    """``v3`` -> 3; ``2026-11-30T12:00:00Z`` -> that time (the version committed by then)."""
    if m := _STAMP.fullmatch(suffix):
        if not m[1]:
            raise SqlError(
                f"{name!r}: a time needs its zone, e.g. @{suffix}Z (UTC) or @{suffix}+01:00"
            )
        return datetime.fromisoformat(suffix.replace("Z", "+00:00"))
    digits = suffix[1:] if suffix[:1] in ("v", "V") else suffix
    if not digits.isdigit():
        raise SqlError(
            f"{name!r}: a version suffix is @v<number> or a time with its zone, e.g. "
            '"readings@v3" or "readings@2026-11-30T12:00:00Z"'
        )
    return int(digits)


def sql_type(text: str) -> str:
    """A frame type name for an SQL column type (``BIGINT`` -> ``int64``)."""
    key = " ".join(text.lower().split())
    return SQL_TYPES.get(key, text)


def split_version(table: str) -> tuple[str, int | datetime | None]:
    """``"f@v3"`` -> ("f", 3); ``"f"`` -> ("f", None)."""
    if "@" not in table:
        return table, None
    base, _, suffix = table.rpartition("@")
    return base, parse_version(suffix, table)
