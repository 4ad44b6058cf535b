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
                image_path: str | None = None, look: str | None = None) -> str:
    """Build a scene (dict or path of a scene@1 JSON file) in Maya in one undo step; returns the root
    group. With replace=True the previous build of the same photo (and only it) is replaced. look:
    "color" or "projection" (the photo projected through the camera); default: the scene's own."""
    from . import builder

    if isinstance(scene_or_path, Mapping):
        scene: Mapping[str, Any] = scene_or_path
    else:
        scene = load_scene(scene_or_path)
    return builder.build(scene, root_name=root_name, replace=replace, image_path=image_path, look=look)


def _panel() -> Any:
    """img2maya.panel, or None after printing the one line that says why Qt cannot be loaded."""
    from . import QtUnavailable

    try:
        from . import panel
    except QtUnavailable as exc:
        print(str(exc))  # the Script Editor shows one line; the command and build_scene still work
        return None
    return panel


def show() -> Any:
    """Open (or raise) the img2maya panel; returns its dock widget. Qt is only loaded when asked. Where
    it cannot be (no PySide, a damaged Qt.py) this prints one line saying what is missing and how to
    fix it, and returns None."""
    panel = _panel()
    return panel.show() if panel is not None else None


def restore() -> Any:
    """The panel's workspaceControl uiScript (Maya runs it at start-up to refill a docked panel): the
    same one-line report as show() when Qt cannot be loaded."""
    panel = _panel()
    return panel.restore() if panel is not None else None
