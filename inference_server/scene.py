"""The scene description `img2maya/scene@1`: constants, validation, atomic save/load.

A scene is plain JSON-compatible data (dicts, lists, floats), so every builder, the Maya side
included, consumes it without numpy. The JSON Schema lives in `schema/scene-1.schema.json` and
is documented in docs/SCENE_SCHEMA.md.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import SCHEMA_ID, interrupts

SCHEMA_PATH = Path(__file__).with_name("schema") / "scene-1.schema.json"

Scene = dict[str, Any]
# Temporary files of atomic_path: `.<stem>.<8 hex>.part<suffix>`, and USD's own beside them
# (`.<stem>.<8 hex>.part.<6 chars>`: it writes our temp name through a temp of its own).
TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.part(\.[A-Za-z0-9_]+)?$")
STALE_TEMP_S = 3600.0  # a temporary file this old belongs to a run that died (no run takes an hour)


class SceneError(ValueError):
    """A scene that does not follow img2maya/scene@1."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The JSON Schema of scene@1 (parsed once)."""
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def validate(scene: Scene) -> None:
    """Raise SceneError with a one-line message when `scene` is not a valid scene@1."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    try:
        errors = sorted(validator.iter_errors(scene), key=lambda e: list(e.absolute_path))
    except RecursionError:
        raise SceneError("invalid scene: nested too deeply") from None
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise SceneError(f"invalid scene at {where}: {err.message}")
    names = [o["name"] for o in iter_objects(scene["objects"])]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SceneError(f"invalid scene: object names not unique: {', '.join(dup[:5])}")


def iter_objects(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Depth-first walk over an object tree (parents before their children)."""
    for obj in objects:
        yield obj
        yield from iter_objects(obj.get("children", []))


def to_json(scene: Scene) -> str:
    return json.dumps(scene, indent=1, sort_keys=False, allow_nan=False)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a fresh, empty temporary path beside `path`; on success it replaces `path` (os.replace),
    on any exception it is removed and `path` is left untouched: never a half-written output.

    The temporary file is created with mode 0o666 (not mkstemp's 0600), so the result gets the user's
    usual permissions after the umask. Its name keeps the target's suffix, because USD picks the file
    format from the suffix."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.part{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    interrupts.register_temp(tmp)
    try:
        yield str(tmp)
        with interrupts.held():  # never interrupted between the rename and forgetting the temp name
            os.replace(tmp, target)
            interrupts.forget_temp(tmp)
            interrupts.committed()
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        interrupts.forget_temp(tmp)


def remove_stale_temps(folder: str | os.PathLike[str], older_than_s: float = STALE_TEMP_S) -> list[str]:
    """Remove atomic_path's temporary files (and USD's beside them) left in `folder` by a run that was
    killed (SIGKILL, power loss) more than `older_than_s` ago; returns their names. Best effort."""
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not TEMP_RE.match(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_path)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def save(scene: Scene, path: str | os.PathLike[str]) -> None:
    """Validate and write a scene as JSON, atomically."""
    validate(scene)
    atomic_write_bytes(path, to_json(scene).encode("utf-8"))


def load(path: str | os.PathLike[str]) -> Scene:
    """Read (bounded in size and nesting: limits.SCENE_MAX_*) and validate a scene JSON file."""
    from .limits import SCENE_MAX_BYTES, SCENE_MAX_DEPTH
    from .safejson import JsonInputError, load_file

    try:
        scene = load_file(path, "scene", max_bytes=SCENE_MAX_BYTES, max_depth=SCENE_MAX_DEPTH)
    except JsonInputError as exc:
        raise SceneError(str(exc)) from None
    if not isinstance(scene, dict) or scene.get("schema") != SCHEMA_ID:
        raise SceneError(f"{path} is not an {SCHEMA_ID} scene")
    validate(scene)
    return scene
