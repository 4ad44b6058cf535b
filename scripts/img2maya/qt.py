"""Qt for the panel: the Qt.py shipped in `img2maya/vendor/` over Maya's own PySide6 or PySide2.

Stock Maya brings PySide (PySide2 in 2022-2024, PySide6 in 2025+) but not Qt.py, so img2maya ships
Qt.py itself (unmodified, MIT, see vendor/README.md) and imports it as `img2maya.vendor.Qt`: every
install route works with nothing pip-installed into Maya, and a studio's own top-level `Qt` module
(another version) is neither shadowed nor used.

    from img2maya.qt import QtCompat, QtCore, QtGui, QtWidgets

When Qt cannot be loaded (a Python without PySide, a damaged Qt.py) importing this module raises
`img2maya.QtUnavailable`, an ImportError whose message is one line saying what is missing and how
to fix it; `img2maya.show()` prints that line instead of a traceback. Nothing else in img2maya
imports Qt, so the plug-in command and `img2maya.build_scene` keep working.
Python 3.7+.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from . import QtUnavailable

VENDORED = (__package__ or "img2maya") + ".vendor.Qt"
BINDINGS = ("PySide6", "PySide2")  # what Maya 2025+ / 2022-2024 bring


def vendored_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "Qt.py")


def _installed_bindings() -> list[str]:
    found = []
    for name in BINDINGS:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):
            pass
    return found


def unavailable_message(exc: BaseException) -> str:
    """The one line shown when Qt cannot be loaded: what is missing, and how to get it."""
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the exception says
    if len(reason) > 300:
        reason = reason[:297] + "..."
    bindings = _installed_bindings()
    if not bindings:
        return ("img2maya: the panel needs PySide6 (Maya 2025+) or PySide2 (Maya 2022-2024) and this Python "
                f"has neither ({reason}); run it in Maya's own Python or repair the Maya installation "
                "(PySide ships with Maya). The img2maya command and img2maya.build_scene() work without it.")
    return (f"img2maya: the panel cannot load Qt through {vendored_path()} with {'/'.join(bindings)} "
            f"installed ({reason}); reinstall img2maya so that scripts/img2maya/vendor/Qt.py is intact "
            "(a fresh clone or release), or repair Maya's PySide. The img2maya command and "
            "img2maya.build_scene() work without it.")


def load() -> Any:
    """The vendored Qt.py module with QtCore, QtGui, QtWidgets and QtCompat (or QtUnavailable)."""
    try:
        qt = importlib.import_module(VENDORED)
        for name in ("QtCore", "QtGui", "QtWidgets", "QtCompat"):
            getattr(qt, name)
    except Exception as exc:
        raise QtUnavailable(unavailable_message(exc)) from exc
    return qt


# Typed as Any: the panel runs on PySide2 and PySide6, written against what both share.
Qt: Any = load()
QtCore: Any = Qt.QtCore
QtGui: Any = Qt.QtGui
QtWidgets: Any = Qt.QtWidgets
QtCompat: Any = Qt.QtCompat
BINDING: str = str(Qt.__binding__)
