"""The img2maya panel inside Maya: the dock that holds the panel widget, and the names earlier versions
of this module exported.

The panel is split by concern:

- `img2maya.server_process`: the inference server as a QProcess (`ServerProcess`: start, send, stop,
  kill; its messages and its death as signals) and the System Python field's argv (`split_python`).
- `img2maya.panel_widget` (+ `img2maya.panel_layout`, its controls): `Img2MayaPanel`, a plain QWidget with
  every control and all the logic, no Maya needed (tests drive it offscreen).
- this module, the dock: `show()` (what `img2maya.api.show()` and the shelf button open) puts one
  `Img2MayaPanel` into a `MayaQWidgetDockableMixin` widget in a workspaceControl whose uiScript
  (`UI_SCRIPT`, through `img2maya.api.restore`, then `restore()` here) recreates it after a Maya restart
  (checksPlugins: only once img2maya's plug-in is loaded). Without the mixin it is a tool window
  parented to Maya's main window (OpenMayaUI.MQtUtil). One instance only; its server is shared across
  close/reopen (`shared_server()`) and stopped by `close()` (plug-in unload) or when Maya quits.

It keeps its name because saved Maya workspaces of earlier versions run
`import img2maya.panel as _p; _p.restore()`, and the plug-in closes `sys.modules["img2maya.panel"]` on
unload. Imports: api -> panel -> panel_widget -> (panel_layout, server_process); nothing here imports
img2maya.api.

Qt only through `img2maya.qt`: the Qt.py shipped in img2maya/vendor over Maya's PySide2 (2022-2024) or
PySide6 (2025+); without a usable Qt, importing this module raises img2maya.QtUnavailable (one line).
Python 3.7+.
"""

from __future__ import annotations

import importlib
from typing import Any

from .panel_layout import AUTO_TEXT, LOOKS, THUMB_SIZE
from .panel_widget import (
    CANCEL_TIMEOUT_MS,
    ERROR_STYLE,
    HORIZON_COLOR,
    IMAGE_EXTENSIONS,
    IMAGE_FILTER,
    OBJECT_NAME,
    REGENERATE_DELAY_MS,
    TITLE,
    VANISHING_COLORS,
    Img2MayaPanel,
    is_image,
)
from .panel_widget import _count_objects as _count_objects
from .qt import QtCompat, QtCore, QtWidgets  # typed Any: written against what PySide2 and 6 share
from .server_process import ServerProcess, join_python, split_python

__all__ = [
    # the dock
    "UI_SCRIPT", "WORKSPACE_CONTROL", "close", "instance", "maya_main_window", "restore", "shared_server",
    "show",
    # what earlier versions of this module defined (now in panel_widget, panel_layout, server_process)
    "AUTO_TEXT", "CANCEL_TIMEOUT_MS", "ERROR_STYLE", "HORIZON_COLOR", "IMAGE_EXTENSIONS", "IMAGE_FILTER",
    "LOOKS", "OBJECT_NAME", "REGENERATE_DELAY_MS", "THUMB_SIZE", "TITLE", "VANISHING_COLORS", "Img2MayaPanel",
    "ServerProcess", "is_image", "join_python", "split_python",
]

WORKSPACE_CONTROL = OBJECT_NAME + "WorkspaceControl"  # the name MayaQWidgetDockableMixin gives it
# Maya saves this with the workspaceControl and runs it at start-up; through img2maya.api so that a Maya
# without a usable Qt prints one line instead of a traceback (the older "import img2maya.panel as _p;
# _p.restore()" saved by earlier versions still works)
UI_SCRIPT = "import img2maya.api as _a; _a.restore()"

_INSTANCE: Any = None
_SERVER: Any = None


def shared_server() -> ServerProcess:
    """The session's server process, shared by every panel that show() opens: closing the panel and
    opening it again keeps the warm server. Stopped when the application quits (or by close())."""
    global _SERVER
    if _SERVER is None:
        _SERVER = ServerProcess(None)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(_SERVER.stop)
    return _SERVER


def _mixin() -> Any:
    """MayaQWidgetDockableMixin, or None outside Maya (or in a Maya without it)."""
    try:
        return importlib.import_module("maya.app.general.mayaMixin").MayaQWidgetDockableMixin
    except (ImportError, AttributeError):
        return None


def maya_main_window() -> Any:
    """Maya's main window as a QWidget (None outside Maya)."""
    try:
        from maya import OpenMayaUI
    except ImportError:
        return None
    ptr = OpenMayaUI.MQtUtil.mainWindow()
    if ptr is None:
        return None
    return QtCompat.wrapInstance(int(ptr), QtWidgets.QWidget)


def _make_dock_class(mixin: Any) -> Any:
    bases = (mixin, QtWidgets.QWidget) if mixin is not None else (QtWidgets.QWidget,)

    def __init__(self: Any, parent: Any = None) -> None:
        base: Any = cls
        super(base, self).__init__(parent=parent)
        self.setObjectName(OBJECT_NAME)
        self.setWindowTitle(TITLE)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.panel = Img2MayaPanel(self, server=shared_server())
        layout.addWidget(self.panel)

    cls = type("Img2MayaDock", bases, {"__init__": __init__})
    return cls


def _alive(widget: Any) -> bool:
    if widget is None:
        return False
    try:
        return bool(QtCompat.isValid(widget))
    except Exception:  # noqa: BLE001
        return False


def show(**kwargs: Any) -> Any:
    """Open (or raise) the one panel instance; returns the dock widget (its `.panel` is the
    Img2MayaPanel). In Maya: docked in a workspaceControl that Maya restores after a restart."""
    global _INSTANCE
    if _alive(_INSTANCE):
        _raise(_INSTANCE)
        return _INSTANCE
    mixin = _mixin()
    if mixin is not None:
        _delete_stale_control()
        dock = _make_dock_class(mixin)(parent=maya_main_window())
        dock.show(dockable=True, uiScript=UI_SCRIPT, checksPlugins=True, retain=False, **kwargs)
    else:
        dock = _make_dock_class(None)(parent=maya_main_window())
        dock.setWindowFlags(dock.windowFlags() | QtCore.Qt.WindowType.Window)
        dock.show()
    _INSTANCE = dock
    return dock


def restore() -> Any:
    """The workspaceControl's uiScript: Maya calls it at start-up (or when the closed control is
    shown again) to put a new panel into the restored control."""
    global _INSTANCE
    from maya import OpenMayaUI

    mixin = _mixin()
    parent_ptr = OpenMayaUI.MQtUtil.getCurrentParent()
    dock = _make_dock_class(mixin)()
    _INSTANCE = dock
    own_ptr = OpenMayaUI.MQtUtil.findControl(dock.objectName())
    if parent_ptr is not None and own_ptr is not None:
        OpenMayaUI.MQtUtil.addWidgetToMayaLayout(int(own_ptr), int(parent_ptr))
    return dock


def _raise(dock: Any) -> None:
    try:
        from maya import cmds

        if cmds.workspaceControl(WORKSPACE_CONTROL, exists=True):
            cmds.workspaceControl(WORKSPACE_CONTROL, edit=True, restore=True)
            return
    except ImportError:
        pass
    dock.show()
    dock.raise_()
    dock.activateWindow()


def _delete_stale_control() -> None:
    """A workspaceControl left from an earlier session or a deleted instance would make the mixin
    create a second one (`...WorkspaceControl1`)."""
    try:
        from maya import cmds
    except ImportError:
        return
    if cmds.workspaceControl(WORKSPACE_CONTROL, exists=True):
        cmds.deleteUI(WORKSPACE_CONTROL, control=True)


def instance() -> Any:
    """The open panel's dock widget, or None."""
    return _INSTANCE if _alive(_INSTANCE) else None


def close() -> None:
    """Close the panel and stop its server (plug-in unload)."""
    global _INSTANCE, _SERVER
    dock, _INSTANCE = _INSTANCE, None
    server, _SERVER = _SERVER, None
    if server is not None:
        server.stop()
    if _alive(dock):
        dock.close()
        dock.deleteLater()
    _delete_stale_control()
