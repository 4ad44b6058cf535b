"""A user's shapes table (docs/SHAPES.md), checked where it enters (CLI `--shapes`, the server's
`options.shapes_table`) before the engine reads it: bounded JSON (safejson), known keys only, every
field of the right type, so that a bad table is one UserError line and never a traceback, and a table
the engine would silently ignore (no `classes`, unknown keys) is refused.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import UserError
from .limits import SHAPES_MAX_BYTES, SHAPES_MAX_DEPTH
from .safejson import JsonInputError, load_file
from .userpaths import check_input_file

TOP_KEYS = ("schema", "description", "roles", "default", "skip", "families", "classes")
SCHEMA = "img2maya/shapes@1"
_FLAGS = ("slab", "depth_from_width", "trunk", "ref", "skip")
ROLE_KEYS = ("shape", "size", "standing", "slab", "depth_from_width")
CLASS_KEYS = ("name", "synonyms", "role", "shape", "size", "standing", *_FLAGS)
SIZE_MAX_M = 10_000.0  # a class size prior larger than 10 km is a typo


def check_shapes_table(path: str | os.PathLike[str]) -> None:
    """UserError (one line, naming the file and the place) unless `path` is a usable shapes table."""
    from .analysis.shapes import ROLES, SHAPES

    p = check_input_file(path, "shapes table")  # not found, a symlink loop, a folder, a pipe: one line
    try:
        data = load_file(p, "shapes table", max_bytes=SHAPES_MAX_BYTES, max_depth=SHAPES_MAX_DEPTH)
    except JsonInputError as exc:
        raise UserError(str(exc)) from None
    where = f"shapes table {p}"
    _keys(data, TOP_KEYS, where)
    if "classes" not in data:
        raise UserError(f"{where} has no 'classes' list (an empty list is fine when it changes only roles, "
                        f"skip or families)")
    if "schema" in data and data["schema"] != SCHEMA:
        raise UserError(f"{where}: 'schema' must be {SCHEMA!r}, got {_show(data['schema'])}")
    if "description" in data and not isinstance(data["description"], str):
        raise UserError(f"{where}: 'description' must be a string")
    roles = data.get("roles", {})
    _keys(roles, ROLES, f"{where}: roles", what="role")
    for role, spec in roles.items():
        _entry(spec, ROLE_KEYS, f"{where}: role {role!r}", SHAPES, ROLES)
    if "default" in data:
        _entry(data["default"], tuple(k for k in CLASS_KEYS if k not in ("name", "synonyms")),
               f"{where}: default", SHAPES, ROLES)
    _strings(data.get("skip", []), f"{where}: skip")
    families = data.get("families", [])
    if not isinstance(families, list):
        raise UserError(f"{where}: 'families' must be a list of {{\"match\": ..., \"use\": ...}}")
    for k, fam in enumerate(families):
        _keys(fam, ("match", "use"), f"{where}: families[{k}]")
        if not (isinstance(fam.get("match"), str) and isinstance(fam.get("use"), str)):
            raise UserError(f"{where}: families[{k}] needs 'match' and 'use' strings")
    classes = data["classes"]
    if not isinstance(classes, list):
        raise UserError(f"{where}: 'classes' must be a list of objects")
    for k, entry in enumerate(classes):
        here = f"{where}: classes[{k}]"
        _entry(entry, CLASS_KEYS, here, SHAPES, ROLES)
        if not (isinstance(entry.get("name"), str) and entry["name"].strip()):
            raise UserError(f"{here} needs a 'name' (a non-empty string)")
        _strings(entry.get("synonyms", []), f"{here} ({entry['name']!r}): synonyms")


def _entry(entry: Any, allowed: tuple[str, ...], where: str, shapes: tuple[str, ...],
           roles: tuple[str, ...]) -> None:
    _keys(entry, allowed, where)
    if "role" in entry and entry["role"] not in roles:
        raise UserError(f"{where}: unknown role {_show(entry['role'])} (known: {', '.join(roles)})")
    if "shape" in entry and entry["shape"] not in shapes:
        raise UserError(f"{where}: unknown shape {_show(entry['shape'])} (known: {', '.join(shapes)})")
    if "size" in entry:
        size = entry["size"]
        if not (isinstance(size, list) and len(size) == 3 and all(
                isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s)
                and 0 <= s <= SIZE_MAX_M for s in size)):
            raise UserError(f"{where}: 'size' must be [width, height, depth] in metres, each 0..{SIZE_MAX_M:g}, "
                            f"got {_show(size)}")
    if "standing" in entry and not (isinstance(entry["standing"], bool) or entry["standing"] == "auto"):
        raise UserError(f"{where}: 'standing' must be true, false or \"auto\", got {_show(entry['standing'])}")
    for flag in _FLAGS:
        if flag in entry and not isinstance(entry[flag], bool):
            raise UserError(f"{where}: {flag!r} must be true or false, got {_show(entry[flag])}")


def _keys(obj: Any, allowed: tuple[str, ...], where: str, what: str = "key") -> None:
    if not isinstance(obj, dict):
        raise UserError(f"{where} must be a JSON object, got {type(obj).__name__}")
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3
                                                              else "")
        raise UserError(f"{where}: unknown {what}{'s' * (len(unknown) > 1)} {shown} "
                        f"(known: {', '.join(allowed)})")


def _strings(values: Any, where: str) -> None:
    if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
        raise UserError(f"{where} must be a list of strings")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
