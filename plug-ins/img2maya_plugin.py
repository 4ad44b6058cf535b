"""img2maya Maya plug-in (Python API 2.0): the undoable `img2maya` command and the img2maya menu.

    img2maya -scene "/path/scene.json";                 // build from a scene file
    img2maya -image "/path/photo.jpg" -recursion 1;     // run the inference server, then build
    img2maya -image "/path/photo.jpg" -fov 72 -cameraHeight 1.4 -ignoreExif true;
    cmds.img2maya(scene="/path/scene.json", rebuild=False, root="my_build")

Flags: -image/-i, -scene/-s, -recursion/-r (0..5), -rebuild/-rb (bool, default on: replace the
previous build of the same photo), -root/-rt (root group name), -python/-py (system Python for the
server); with -image the camera: -fieldOfView/-fov (horizontal, degrees, 1..179 exclusive) or
-focalLength/-fl (mm, 36 mm film back), -cameraHeight/-ch (m, (0, 1000]), -ignoreExif/-ie (bool);
-look/-lk (color or projection: the photo projected through the camera). Returns the root group.
Works in batch (mayapy) too; the menu is added in interactive sessions only. The file is named
img2maya_plugin.py, not img2maya.py: Maya imports a Python plug-in as a module named after its file,
which would shadow the `img2maya` package (and mypy would see two modules named img2maya).

Undo: see img2maya.commands (an MDGModifier executes the build, so Maya can undo and redo it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import maya.api.OpenMaya as om

COMMAND = "img2maya"
VENDOR = "img2maya"


_FLAGS = (  # short, long, argument type
    ("-i", "-image", om.MSyntax.kString),
    ("-s", "-scene", om.MSyntax.kString),
    ("-r", "-recursion", om.MSyntax.kLong),
    ("-rb", "-rebuild", om.MSyntax.kBoolean),
    ("-rt", "-root", om.MSyntax.kString),
    ("-py", "-python", om.MSyntax.kString),
    ("-fov", "-fieldOfView", om.MSyntax.kDouble),
    ("-fl", "-focalLength", om.MSyntax.kDouble),
    ("-ch", "-cameraHeight", om.MSyntax.kDouble),
    ("-ie", "-ignoreExif", om.MSyntax.kBoolean),
    ("-lk", "-look", om.MSyntax.kString),
)


def maya_useNewAPI() -> None:
    """Tells Maya this plug-in uses the Python API 2.0 (maya.api.OpenMaya)."""


def _ensure_scripts_on_path() -> None:
    """Loaded through img2maya.mod, scripts/ is already on sys.path; loaded by hand it may not be."""
    scripts = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
    if os.path.isdir(os.path.join(scripts, "img2maya")) and scripts not in sys.path:
        sys.path.append(scripts)


class Img2MayaCommand(om.MPxCommand):
    """`img2maya`: build a scene (from a file, or a photo through the inference server), undoably."""

    def __init__(self) -> None:
        om.MPxCommand.__init__(self)
        self._modifier: Any = None
        self._token: str | None = None

    def __del__(self) -> None:
        if self._token is not None:
            try:
                from img2maya import commands

                commands.forget(self._token)
            except Exception:  # noqa: BLE001 - interpreter shutdown: nothing to clean
                pass

    @staticmethod
    def creator() -> Img2MayaCommand:
        return Img2MayaCommand()

    @staticmethod
    def create_syntax() -> Any:
        syntax = om.MSyntax()
        for short, long, kind in _FLAGS:
            syntax.addFlag(short, long, kind)
        return syntax

    def isUndoable(self) -> bool:
        return True

    def doIt(self, args: Any) -> None:
        from img2maya import commands

        db = om.MArgDatabase(Img2MayaCommand.create_syntax(), args)

        def text(flag: str) -> str | None:
            return str(db.flagArgumentString(flag, 0)) if db.isFlagSet(flag) else None

        def number(flag: str) -> float | None:
            return float(db.flagArgumentDouble(flag, 0)) if db.isFlagSet(flag) else None

        try:
            self._token = commands.prepare(
                image=text("-image"), scene=text("-scene"),
                recursion=int(db.flagArgumentInt("-recursion", 0)) if db.isFlagSet("-recursion") else 0,
                rebuild=bool(db.flagArgumentBool("-rebuild", 0)) if db.isFlagSet("-rebuild") else True,
                root=text("-root"), python=text("-python"), field_of_view=number("-fieldOfView"),
                focal_length=number("-focalLength"), camera_height=number("-cameraHeight"),
                ignore_exif=bool(db.flagArgumentBool("-ignoreExif", 0)) if db.isFlagSet("-ignoreExif") else False,
                look=text("-look"))
        except (ValueError, RuntimeError) as exc:
            om.MGlobal.displayError(str(exc))
            raise
        self._modifier = om.MDGModifier()
        self._modifier.pythonCommandToExecute(commands.python_call(self._token))
        self.redoIt()

    def redoIt(self) -> None:
        from img2maya import commands

        self._modifier.doIt()
        assert self._token is not None
        self.clearResult()
        self.setResult(commands.result(self._token))

    def undoIt(self) -> None:
        self._modifier.undoIt()


def initializePlugin(plugin_obj: Any) -> None:
    _ensure_scripts_on_path()
    from img2maya import __version__  # the package reads VERSION (the one version source)

    plugin = om.MFnPlugin(plugin_obj, VENDOR, __version__, "Any")
    plugin.registerCommand(COMMAND, Img2MayaCommand.creator, Img2MayaCommand.create_syntax)
    from img2maya import commands

    commands.install_menu()


def uninitializePlugin(plugin_obj: Any) -> None:
    plugin = om.MFnPlugin(plugin_obj)
    plugin.deregisterCommand(COMMAND)
    from img2maya import commands

    commands.remove_menu()
    panel = sys.modules.get("img2maya.panel")  # only if it was ever opened: batch never imports Qt
    if panel is not None:
        panel.close()  # the dock goes, and so does its server subprocess
