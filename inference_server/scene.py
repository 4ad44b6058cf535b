"""The scene description `img2maya/scene@1`: constants, validation, atomic save/load.

A scene is plain JSON-compatible data (dicts, lists, floats), so every builder, the Maya side
included, consumes it without numpy. The JSON Schema lives in `schema/scene-1.schema.json` and
is documented in docs/SCENE_SCHEMA.md.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import SCHEMA_ID

SCHEMA_PATH = Path(__file__).with_name("schema") / "scene-1.schema.json"

Scene = dict[str, Any]


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
    errors = sorted(validator.iter_errors(scene), key=lambda e: list(e.absolute_path))
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
    try:
        yield str(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_path)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def save(scene: Scene, path: str | os.PathLike[str]) -> None:
    """Validate and write a scene as JSON, atomically."""
    validate(scene)
    atomic_write_bytes(path, to_json(scene).encode("utf-8"))


def load(path: str | os.PathLike[str]) -> Scene:
    """Read and validate a scene JSON file."""
    try:
        with open(path, encoding="utf-8") as fh:
            scene = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise SceneError(f"cannot read scene {path}: {exc}") from None
    if not isinstance(scene, dict) or scene.get("schema") != SCHEMA_ID:
        raise SceneError(f"{path} is not an {SCHEMA_ID} scene")
    validate(scene)
    return scene
