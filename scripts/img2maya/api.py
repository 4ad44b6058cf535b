"""The scripting API (what the shelf, the menu, the panel and users' scripts call).

    import img2maya
    root = img2maya.build_scene("/path/scene.json")   # or a scene dict
    img2maya.show()                                   # the dockable panel
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from typing import Any, Union

# typing.Mapping, not collections.abc's: the alias is evaluated at import, and Maya 2022's Python 3.7
# cannot subscript collections.abc classes.
SceneLike = Union[str, "os.PathLike[str]", "typing.Mapping[str, Any]"]


def load_scene(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a scene@1 JSON file; a relative source.image is resolved against the file's folder so the
    image plane finds the photo wherever Maya's working folder is."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            scene = json.load(fh)
    except (OSError, ValueError) as exc:
        from .builder import BuildError

        raise BuildError(f"cannot read scene file {path}: {exc}") from None
    source = scene.get("source") if isinstance(scene, dict) else None
    if isinstance(source, dict) and source.get("image") and not os.path.isabs(str(source["image"])):
        candidate = os.path.join(os.path.dirname(os.path.abspath(path)), str(source["image"]))
        if os.path.isfile(candidate):
            source["image"] = candidate
    return scene


def build_scene(scene_or_path: SceneLike, root_name: str | None = None, replace: bool = True,
                image_path: str | None = None) -> str:
    """Build a scene (dict or path of a scene@1 JSON file) in Maya in one undo step; returns the root
    group. With replace=True the previous build of the same photo (and only it) is replaced."""
    from . import builder

    if isinstance(scene_or_path, Mapping):
        scene: Mapping[str, Any] = scene_or_path
    else:
        scene = load_scene(scene_or_path)
    return builder.build(scene, root_name=root_name, replace=replace, image_path=image_path)


def show() -> Any:
    """Open (or raise) the img2maya panel. The panel is imported lazily: Qt is only loaded when asked."""
    try:
        from . import panel  # type: ignore[attr-defined, unused-ignore]
    except ImportError as exc:
        if getattr(exc, "name", None) not in ("img2maya.panel", None):
            raise  # the panel exists but one of its own imports failed: show the real error
        raise ImportError("img2maya: the panel (scripts/img2maya/panel.py) is not installed in this "
                          "checkout; use img2maya.build_scene(path) or the `img2maya` command") from exc
    return panel.show()
