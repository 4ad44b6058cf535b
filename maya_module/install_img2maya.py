"""Drag-and-drop installer: drop this file into a Maya viewport (Maya 2022-2026).

Maya calls `onMayaDroppedPythonFile(obj)` for a dropped .py file. It then:
1. writes `img2maya.mod` pointing at THIS checkout (absolute path) into the user's modules folder
   (`internalVar -userAppDir` + "modules", e.g. ~/Documents/maya/modules on Windows,
   ~/Library/Preferences/Autodesk/maya/modules on macOS, ~/maya/modules on Linux), so every later
   Maya session finds the module by itself;
2. makes it work now, without a restart: `loadModule -load`, scripts/ on sys.path, icons/ on
   XBMLANGPATH, loads the plug-in (autoload on) and creates the img2maya shelf.
Dropping it again on an installed Maya offers Reinstall or Uninstall (plug-in unloaded, shelf and
menu removed, .mod deleted).

The path and .mod logic are plain functions (no maya import) so tests can check them for Windows,
macOS and Linux style paths.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, cast

MODULE_NAME = "img2maya"


def _version() -> str:
    """The module's VERSION file (the one version source), beside maya_module/."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "VERSION")
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return "0+unknown"


MODULE_VERSION = _version()
PLUGIN_FILE = "img2maya_plugin.py"
SHELF_NAME = "img2maya"
ICON = "img2maya.png"


# ----------------------------------------------------------------------------- pure path logic

def to_maya_path(path: str) -> str:
    """Forward slashes: Maya accepts them on every platform, and a .mod line then never contains a
    backslash escape. A trailing slash is dropped."""
    out = path.replace("\\", "/")
    if len(out) > 1 and out.endswith("/") and not out.endswith(":/"):
        out = out.rstrip("/")
    return out


def module_root(this_file: str | None = None) -> str:
    """The checkout that holds this installer (maya_module/ is one level below the module root)."""
    here = os.path.abspath(this_file or __file__)
    return to_maya_path(os.path.dirname(os.path.dirname(here)))


def modules_dir(user_app_dir: str) -> str:
    """`<userAppDir>/modules` (internalVar ends userAppDir with a slash; tolerate either form)."""
    return to_maya_path(user_app_dir).rstrip("/") + "/modules"


def mod_file_path(user_app_dir: str) -> str:
    return modules_dir(user_app_dir) + "/" + MODULE_NAME + ".mod"


def mod_text(root: str) -> str:
    """The .mod file for a checkout at `root`: one block, no blank lines or comments inside it (Maya
    stops reading a block there). scripts/, plug-ins/ and icons/ are added by Maya automatically for
    a module root (PYTHONPATH + MAYA_SCRIPT_PATH, MAYA_PLUG_IN_PATH, XBMLANGPATH); shelves/ is not."""
    return "\n".join([
        f"+ {MODULE_NAME} {MODULE_VERSION} {to_maya_path(root)}",
        "MAYA_SHELF_PATH +:= shelves",
        "IMG2MAYA_ROOT :=",
    ]) + "\n"


def parse_mod(text: str) -> list[dict[str, Any]]:
    """Blocks of a .mod file: [{"name", "version", "path", "lines"}]. ValueError for a blank line or a
    comment inside a block, or a line before the first '+' line (what Maya would silently ignore)."""
    blocks: list[dict[str, Any]] = []
    ended = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if line.startswith("+ ") or line.startswith("- "):
            fields = line[2:].split(None, 2)
            words = fields
            if len(words) < 3:
                raise ValueError(f"line {number}: '+ name version path' expected")
            blocks.append({"name": words[0], "version": words[1], "path": words[2].strip(), "lines": []})
            ended = False
        elif not stripped or stripped.startswith("#") or stripped.startswith("//"):
            if blocks:
                ended = True
        else:
            if not blocks:
                raise ValueError(f"line {number}: outside a module block")
            if ended:
                raise ValueError(f"line {number}: after a blank line or comment inside the block: "
                                 "Maya ignores it")
            blocks[-1]["lines"].append(stripped)
    return blocks


def write_atomic(path: str, text: str) -> None:
    """Write via a temp file + os.replace, so a crash never leaves half a .mod file."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    fd, tmp = tempfile.mkstemp(prefix=".img2maya-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def icon_search_entry(icons_dir: str, platform: str | None = None) -> str:
    """XBMLANGPATH entry for a folder: Linux needs the %B placeholder, Windows and macOS do not."""
    platform = platform or sys.platform
    return icons_dir + "/%B" if platform.startswith("linux") else icons_dir


# ----------------------------------------------------------------------------- in Maya

def install(root: str | None = None) -> str:
    """Install for this user and activate now; returns the .mod path."""
    from maya import cmds

    root = root or module_root()
    mod = mod_file_path(str(cmds.internalVar(userAppDir=True)))
    write_atomic(mod, mod_text(root))
    cmds.loadModule(load=mod)
    scripts = root + "/scripts"
    if scripts not in [to_maya_path(p) for p in sys.path]:
        sys.path.append(scripts)
    entry = icon_search_entry(root + "/icons")
    current = os.environ.get("XBMLANGPATH", "")
    if entry not in current.split(os.pathsep):
        os.environ["XBMLANGPATH"] = current + os.pathsep + entry if current else entry
    os.environ.setdefault("IMG2MAYA_ROOT", root)
    plugin = root + "/plug-ins/" + PLUGIN_FILE
    if not cmds.pluginInfo(plugin, query=True, loaded=True):
        cmds.loadPlugin(plugin, quiet=True)
    cmds.pluginInfo(plugin, edit=True, autoload=True)
    if not bool(cmds.about(batch=True)):
        create_shelf(root)
        cmds.confirmDialog(title="img2maya", message=f"img2maya is installed.\n\nModule file: {mod}",
                           button=["OK"])
    return mod


def create_shelf(root: str) -> str:
    """The img2maya shelf tab with its one button (recreated if it exists)."""
    from maya import cmds, mel

    top = str(mel.eval("$tmp = $gShelfTopLevel"))
    if cmds.shelfLayout(SHELF_NAME, exists=True):
        cmds.deleteUI(SHELF_NAME, layout=True)
    shelf = str(cmds.shelfLayout(SHELF_NAME, parent=top))
    cmds.shelfButton(parent=shelf, label="img2maya", annotation="img2maya: photo to 3D blocking scene",
                     image=root + "/icons/" + ICON, imageOverlayLabel="",
                     # a string (saved with the shelf), although maya-stubs types the flag as a callable
                     command=cast(Any, "import img2maya; img2maya.show()"), sourceType="python")
    return shelf


def uninstall() -> str:
    """Unload the plug-in, remove the shelf (and its saved copy in prefs) and the .mod file."""
    from maya import cmds

    plugin = os.path.splitext(PLUGIN_FILE)[0]
    if cmds.pluginInfo(plugin, query=True, loaded=True):
        cmds.unloadPlugin(plugin, force=True)
    if not bool(cmds.about(batch=True)) and cmds.shelfLayout(SHELF_NAME, exists=True):
        cmds.deleteUI(SHELF_NAME, layout=True)
    mod = mod_file_path(str(cmds.internalVar(userAppDir=True)))
    if os.path.isfile(mod):
        os.remove(mod)
    return mod


def onMayaDroppedPythonFile(obj: Any) -> None:
    """Maya's drag-and-drop hook for .py files."""
    from maya import cmds

    mod = mod_file_path(str(cmds.internalVar(userAppDir=True)))
    if os.path.isfile(mod):
        answer = cmds.confirmDialog(title="img2maya", message="img2maya is already installed.",
                                    button=["Reinstall", "Uninstall", "Cancel"], defaultButton="Reinstall",
                                    cancelButton="Cancel", dismissString="Cancel")
        if answer == "Uninstall":
            uninstall()
            return
        if answer != "Reinstall":
            return
    install()
