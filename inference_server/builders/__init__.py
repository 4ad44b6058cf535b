"""Builders: a scene@1 dict -> files (JSON, USD, glTF) and a preview render.

`export(scene, path)` is the single entry point of the CLI and the server: it validates the
scene, picks the format from the file suffix and writes atomically (a temporary file in the
destination folder, then os.replace), so a failure never leaves a half-written output.
Formats are documented in docs/EXPORTS.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..scene import atomic_write_bytes as write_bytes

SUFFIXES = (".json", ".usda", ".usdc", ".usdz", ".glb", ".gltf")


def export(scene: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Validate `scene` and write it to `path` in the format its suffix names.

    Raises UserError (one line) for an unknown suffix, an invalid scene or an unwritable path.
    """
    from .. import scene as scene_mod

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"unknown output format {target.suffix or '(no suffix)'!r} for {target}: "
                        f"use one of {', '.join(SUFFIXES)}")
    try:
        scene_mod.validate(scene)
    except scene_mod.SceneError as exc:
        raise UserError(str(exc)) from None
    try:
        if suffix == ".json":
            write_bytes(target, scene_mod.to_json(scene).encode("utf-8"))
        elif suffix in (".usda", ".usdc", ".usdz"):
            from .usd import export_usd

            export_usd(scene, target)
        else:
            from .gltf import export_gltf

            export_gltf(scene, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    except (OverflowError, ValueError) as exc:  # a valid scene's number beyond the format (int32 in USD)
        raise UserError(f"cannot write {target}: a value of the scene does not fit the {suffix[1:]} format "
                        f"({' '.join(str(exc).split())})") from None
