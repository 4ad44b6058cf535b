"""JSON from users, bounded: every request line, shapes table and scene file is read through here.

Why: Python's parser recurses once per nesting level (a 2 KB line of 1,100 `[` is a RecursionError
that killed the server), turns `1e999` into inf, and a 5,000-digit integer into a ValueError that is no
JSONDecodeError. Here the size is checked first, the nesting depth is measured without parsing (string
literals skipped, brackets counted), NaN/Infinity/overflowing numbers are refused, and every failure is
one `JsonInputError` line (a ValueError) naming what was read.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET_RUNS = re.compile(r"[\[{]+|[\]}]+")


class JsonInputError(ValueError):
    """JSON that is malformed, too big, too deep or holds a non-finite number; one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def nesting_depth(text: str) -> int:
    """The deepest nesting of `[`/`{` in JSON text, outside string literals (no parsing, no recursion)."""
    depth = deepest = 0
    for run in _BRACKET_RUNS.finditer(_STRINGS.sub('""', text)):
        token = run.group()
        if token[0] in "[{":
            depth += len(token)
            deepest = max(deepest, depth)
        else:
            depth -= len(token)
    return deepest


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON number")


def decode(text: str) -> Any:
    """json.loads refusing NaN, Infinity and numbers that overflow to inf (JsonInputError); a malformed
    text raises json.JSONDecodeError, an unusable one (a 5,000-digit integer) ValueError."""
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def loads(text: str | bytes, what: str, *, max_bytes: int, max_depth: int) -> Any:
    """Parse `text` (str or UTF-8 bytes); JsonInputError `<what>: <reason>` for anything wrong."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonInputError(f"{what} is {size} bytes, over the {max_bytes} byte limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JsonInputError(f"{what} is not UTF-8") from None
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonInputError(f"{what} is nested {depth} levels deep, over the limit of {max_depth}")
    try:
        return decode(text)
    except JsonInputError as exc:
        raise JsonInputError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise JsonInputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise JsonInputError(f"{what} is not usable JSON: {' '.join(str(exc).split())[:200]}") from None


def load_file(path: str | os.PathLike[str], what: str, *, max_bytes: int, max_depth: int) -> Any:
    """Read and parse a JSON file, bounded as `loads` (the size is checked before reading)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise JsonInputError(f"{what} {path} is {size} bytes, over the {max_bytes} byte limit")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise JsonInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return loads(data, f"{what} {path}", max_bytes=max_bytes, max_depth=max_depth)
