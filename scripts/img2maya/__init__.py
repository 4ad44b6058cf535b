"""img2maya inside Maya: builder, panel and scripting API (no numpy; Qt through the Qt.py shipped in
img2maya/vendor, see img2maya.qt).

Importing this package imports no Maya module: `build_scene` and `show` load the builder and the panel
when called, so `import img2maya` also works in plain Python (tests, the installer's path logic).
"""

from __future__ import annotations

from typing import Any


def _version() -> str:
    """The module's VERSION file (the one version source, at the module root two levels up)."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "VERSION")
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return "0+unknown"


__version__ = _version()

__all__ = ["QtUnavailable", "__version__", "build_scene", "load_scene", "show"]


class QtUnavailable(ImportError):
    """The panel cannot load Qt (no PySide in this Python, a damaged Qt.py); the message is one line
    saying what is missing and how to fix it. Raised by importing img2maya.qt or img2maya.panel."""


def build_scene(*args: Any, **kwargs: Any) -> str:
    """See img2maya.api.build_scene."""
    from .api import build_scene as _build_scene

    return _build_scene(*args, **kwargs)


def load_scene(*args: Any, **kwargs: Any) -> Any:
    """See img2maya.api.load_scene."""
    from .api import load_scene as _load_scene

    return _load_scene(*args, **kwargs)


def show() -> Any:
    """See img2maya.api.show (what the shelf button runs)."""
    from .api import show as _show

    return _show()
