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
LOOKS = ("color", "projection")


def export(scene: dict[str, Any], path: str | os.PathLike[str], look: str = "color",
           photo: str | os.PathLike[str] | None = None) -> None:
    """Validate `scene` and write it to `path` in the format its suffix names.

    look: "color" (each object its mean colour) or "projection" (the photo projected through the camera,
    docs/EXPORTS.md); `photo` is the photo to project (default: the scene's source.image), re-read now.
    Raises UserError (one line) for an unknown suffix or look, an invalid scene, an unwritable path or,
    with the projection look, a photo that cannot be re-read (nothing is written then).
    """
    from .. import scene as scene_mod
    from .projection import check_look, photo_of

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"unknown output format {target.suffix or '(no suffix)'!r} for {target}: "
                        f"use one of {', '.join(SUFFIXES)}")
    look = check_look(look)
    try:
        scene_mod.validate(scene)
    except scene_mod.SceneError as exc:
        raise UserError(str(exc)) from None
    try:
        if suffix == ".json":
            if look == "projection":  # the Maya builder projects the photo itself: it must still be there
                if not os.path.isfile(photo_of(scene, photo)):
                    raise UserError(f"the projection look needs the photo, and {photo_of(scene, photo)} is not "
                                    "there any more (moved or deleted since the analysis?)")
                scene = {**scene, "look": {"mode": "projection"}}
            write_bytes(target, scene_mod.to_json(scene).encode("utf-8"))
        elif suffix in (".usda", ".usdc", ".usdz"):
            from .usd import export_usd

            export_usd(scene, target, look=look, photo=photo)
        else:
            from .gltf import export_gltf

            export_gltf(scene, target, look=look, photo=photo)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    except (OverflowError, ValueError) as exc:  # a valid scene's number beyond the format (int32 in USD)
        raise UserError(f"cannot write {target}: a value of the scene does not fit the {suffix[1:]} format "
                        f"({' '.join(str(exc).split())})") from None
