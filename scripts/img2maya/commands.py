"""What the `img2maya` plug-in command and the img2maya menu do, kept out of the plug-in file so it is
importable (and testable) without Maya's API.

The plug-in command is undoable through Maya's documented route for commands implemented with other
commands: its doIt hands a Python call to an MDGModifier (`pythonCommandToExecute`), and the
modifier's undoIt/redoIt undo or redo everything that call did (the new build AND the deletion of the
previous build of the same photo). The call is `execute_pending(token)`: the work (a scene dict,
analysed once in doIt when `-image` is given) waits in `_PENDING` under that token, so a redo
rebuilds the same scene without running the networks again.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any

from maya import cmds

from .camera_input import CameraRequest, camera_request

MENU_NAME = "img2mayaMainMenu"
_PENDING: dict[str, dict[str, Any]] = {}
_RESULTS: dict[str, str] = {}
_TOKENS = itertools.count(1)
_CLIENT: Any = None  # one warm ServerClient for the session (models stay loaded between runs)


def analyze_photo(photo: str, recursion: int = 0, python: str | None = None,
                  on_progress: Callable[[str, float], Any] | None = None,
                  camera: CameraRequest | None = None) -> dict[str, Any]:
    """Run the inference server synchronously (blocking: batch sessions and the command) and return
    its scene@1 dict. The server process is started once and kept. `camera`: typed camera values
    (None: all automatic)."""
    global _CLIENT
    from . import client, protocol

    if _CLIENT is None or (python and _CLIENT.python != python):
        exe: Any = python
        if not exe:
            found = protocol.find_system_python()
            if not found:
                raise RuntimeError("img2maya: no system Python 3 found for the inference server; "
                                   "set IMG2MAYA_PYTHON or pass -python")
            exe = found[0]
        _CLIENT = client.ServerClient(exe)
    camera = camera if camera is not None else CameraRequest()
    result = _CLIENT.analyze(os.path.abspath(photo), recursion=recursion, options=camera.options(),
                             on_progress=on_progress, **camera.fields())
    scene = result.get("scene")
    if not isinstance(scene, dict):
        raise RuntimeError("img2maya: the server returned no scene")
    return scene


def prepare(image: str | None = None, scene: str | None = None, recursion: int = 0, rebuild: bool = True,
            root: str | None = None, python: str | None = None, field_of_view: float | None = None,
            focal_length: float | None = None, camera_height: float | None = None,
            ignore_exif: bool = False, look: str | None = None) -> str:
    """Validate the command's flags and do the slow, non-undoable part (analysis of a photo) now;
    returns the token for `execute_pending`. The camera flags (field of view in degrees or focal length
    in mm on the 35 mm film back, camera height in m, ignore EXIF) apply to -image only."""
    from . import api

    if bool(image) == bool(scene):
        raise ValueError("img2maya: give exactly one of -image (a photo) or -scene (a scene JSON file)")
    if not 0 <= recursion <= 5:
        raise ValueError("img2maya: -recursion must be between 0 and 5")
    if look is not None and look not in ("color", "projection"):
        raise ValueError(f"img2maya: -look must be color or projection, got {look!r}")
    try:
        camera = camera_request(field_of_view, focal_length, camera_height, ignore_exif)
    except ValueError as exc:
        raise ValueError(f"img2maya: {exc}") from None
    if scene and camera != CameraRequest():
        raise ValueError("img2maya: -fieldOfView, -focalLength, -cameraHeight and -ignoreExif apply to -image "
                         "only (a scene file's camera is already decided)")
    if scene:
        data: Mapping[str, Any] = api.load_scene(scene)
        photo = None
    else:
        assert image is not None
        if not os.path.isfile(image):
            raise ValueError(f"img2maya: photo not found: {image}")
        data = analyze_photo(image, recursion=recursion, python=python, on_progress=_print_progress,
                             camera=camera)
        photo = os.path.abspath(image)
    token = f"t{next(_TOKENS)}"
    _PENDING[token] = {"scene": data, "replace": rebuild, "root": root, "image": photo, "look": look}
    return token


def python_call(token: str) -> str:
    """The Python source the plug-in's MDGModifier executes (and undoes)."""
    return f"import img2maya.commands as _c; _c.execute_pending({token!r})"


def execute_pending(token: str) -> str:
    """Build the prepared work; run by the modifier on doIt and again on every redo."""
    from . import builder

    job = _PENDING[token]
    root = builder.build(job["scene"], root_name=job["root"], replace=job["replace"], image_path=job["image"],
                         look=job.get("look"))
    _RESULTS[token] = root
    return root


def result(token: str) -> str:
    """Root group built for `token` by the last execution."""
    return _RESULTS[token]


def forget(token: str) -> None:
    """Drop a finished command's data (the plug-in calls it when Maya destroys the command object)."""
    _PENDING.pop(token, None)
    _RESULTS.pop(token, None)


def _print_progress(stage: str, fraction: float) -> None:
    print(f"img2maya: {stage:<24} {int(round(100 * fraction)):3d}%")


# ----------------------------------------------------------------------------- menu

def _show_panel(*_: Any) -> None:
    from . import api

    api.show()


def _build_from_file(*_: Any) -> None:
    picked = cmds.fileDialog2(fileFilter="img2maya scene (*.json)", fileMode=1,
                              caption="Build from an img2maya scene file")
    if picked:
        from . import api

        root = api.build_scene(str(picked[0]))
        cmds.select(root)


def help_path() -> str:
    """docs/MAYA.md of this checkout (the module root is two folders above scripts/img2maya)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "docs", "MAYA.md")


def _help(*_: Any) -> None:
    cmds.showHelp(help_path(), absolute=True)


def install_menu() -> str | None:
    """Add the img2maya menu to Maya's main window (interactive sessions only; idempotent)."""
    if bool(cmds.about(batch=True)):
        return None
    from maya import mel

    remove_menu()
    main_window = str(mel.eval("$tmp = $gMainWindow"))  # "MayaWindow", but ask rather than assume
    menu = str(cmds.menu(MENU_NAME, parent=main_window, label="img2maya", tearOff=True))
    cmds.menuItem(label="Show panel", command=_show_panel, parent=menu)
    cmds.menuItem(label="Build from scene file...", command=_build_from_file, parent=menu)
    cmds.menuItem(divider=True, parent=menu)
    cmds.menuItem(label="Help", command=_help, parent=menu)
    return menu


def remove_menu() -> None:
    """Remove the img2maya menu if it exists (plug-in unload, uninstall)."""
    if not bool(cmds.about(batch=True)) and cmds.menu(MENU_NAME, exists=True):
        cmds.deleteUI(MENU_NAME, menu=True)
