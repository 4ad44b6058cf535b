"""The roles/shapes table: which primitive, role and size prior each label name gets.

The shipped table (inference_server/data/shapes.json, documented in docs/SHAPES.md) knows the
ADE20K-150, COCO-Stuff and Cityscapes names. Users can pass their own JSON with the same layout;
missing role defaults are filled from the shipped table, so a user table may list only classes.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UserError

DEFAULT_TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "shapes.json"
ROLES = ("ground", "sky", "wall", "ceiling", "object", "vegetation", "water", "person", "vehicle",
         "building", "furniture", "other")
SHAPES = ("cube", "plane", "cylinder", "sphere", "cone", "capsule")


@dataclass(frozen=True)
class ShapeSpec:
    """How one label becomes geometry.

    size: prior full extents [width, height, depth] in metres (depth = the axis along the view for
    a face-on object). standing: True (bottom on the ground), False, or "auto" (snapped to the
    ground when its lowest points are close to it). slab: thin along its depth axis (walls,
    windows, signs) whatever the measured depth says. depth_from_width: the prior depth is the
    measured width (buildings, trees). ref: trusted height, used to fix the scale of relative
    depth when no ground is visible.
    """

    label: str
    matched: str | None
    role: str
    shape: str
    standing: bool | str = "auto"
    size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    slab: bool = False
    depth_from_width: bool = False
    trunk: bool = False
    ref: bool = False
    skip: bool = False

    @property
    def flat(self) -> bool:
        """Ground and water become one horizontal plane per class at y = 0."""
        return self.role in ("ground", "water")


def normalize(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


class ShapeTable:
    """Lookup of label names (with synonyms and family rules) to ShapeSpec."""

    def __init__(self, data: dict[str, Any], base: dict[str, Any] | None = None) -> None:
        roles = dict((base or {}).get("roles", {}))
        roles.update(data.get("roles", {}))
        for role in roles:
            if role not in ROLES:
                raise UserError(f"shapes table: unknown role {role!r} (known: {', '.join(ROLES)})")
        self.roles = roles
        self.default = dict(data.get("default", (base or {}).get("default", {"role": "object"})))
        self.skip = {normalize(s) for s in data.get("skip", (base or {}).get("skip", []))}
        self.families = list(data.get("families", [])) + list((base or {}).get("families", []))
        self.index: dict[str, dict[str, Any]] = {}
        # A user's classes win over the shipped ones with the same name.
        for entries in ((base or {}).get("classes", []), data.get("classes", [])):
            for entry in entries:
                self._check(entry)
                for nm in [entry["name"], *entry.get("synonyms", [])]:
                    self.index[normalize(nm)] = entry

    def _check(self, entry: dict[str, Any]) -> None:
        if "name" not in entry:
            raise UserError("shapes table: every class needs a 'name'")
        if entry.get("role", "object") not in ROLES:
            raise UserError(f"shapes table: class {entry['name']!r} has unknown role {entry.get('role')!r}")
        if "shape" in entry and entry["shape"] not in SHAPES:
            raise UserError(f"shapes table: class {entry['name']!r} has unknown shape {entry['shape']!r}")
        size = entry.get("size")
        if size is not None and (len(size) != 3 or any(float(s) < 0 for s in size)):
            raise UserError(f"shapes table: class {entry['name']!r} needs size [width, height, depth] >= 0")

    def _find(self, name: str) -> dict[str, Any] | None:
        full = normalize(name)
        pieces = [full] + [p.strip() for p in re.split(r"[;,]", full) if p.strip()]
        pieces = list(dict.fromkeys(pieces))
        for p in pieces:
            if p in self.index:
                return self.index[p]
        for p in pieces:
            for fam in self.families:
                if fnmatch.fnmatchcase(p, normalize(fam["match"])):
                    target = normalize(fam["use"].replace("{stem}", p.rsplit("-", 1)[0]))
                    if target in self.index:
                        return self.index[target]
        for p in pieces:
            candidates = [p.split("-", 1)[0], p.replace("-", " ")]
            words = p.replace("-", " ").split()
            if len(words) > 1:
                candidates += [words[-1], words[0]]
            for c in candidates:
                if c in self.index:
                    return self.index[c]
        return None

    def lookup(self, name: str) -> ShapeSpec:
        """The spec of a label name: exact name or synonym, then family rules, then word rules."""
        full = normalize(name)
        first = re.split(r"[;,]", full)[0].strip()
        if full in self.skip or first in self.skip or not full:
            return ShapeSpec(label=name, matched=None, role="other", shape="cube", skip=True)
        entry = self._find(name)
        matched = entry["name"] if entry else None
        entry = entry or self.default
        role = entry.get("role", "object")
        rd = self.roles.get(role, {})
        shape = entry.get("shape", rd.get("shape", "cube"))
        size = entry.get("size", rd.get("size", [1.0, 1.0, 1.0]))
        return ShapeSpec(
            label=name,
            matched=matched,
            role=role,
            shape=shape,
            standing=entry.get("standing", rd.get("standing", "auto")),
            size=(float(size[0]), float(size[1]), float(size[2])),
            slab=bool(entry.get("slab", rd.get("slab", False))),
            # a class with its own size prior means that depth; the role's "as deep as wide" does not apply
            depth_from_width=bool(entry.get("depth_from_width",
                                            False if "size" in entry else rd.get("depth_from_width", False))),
            trunk=bool(entry.get("trunk", False)),
            ref=bool(entry.get("ref", False)),
            skip=bool(entry.get("skip", False)),
        )


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    with open(DEFAULT_TABLE_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def load_table(path: str | None = None) -> ShapeTable:
    """The shipped table, or a user table layered over it (user entries win)."""
    if path is None:
        return ShapeTable(_shipped())
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read shapes table {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"shapes table {path} must be a JSON object with 'classes'")
    return ShapeTable(data, base=_shipped())
