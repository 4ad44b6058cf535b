"""Remembered panel settings: the system-Python command, recent photos, the last recursion depth, the
chosen models and the typed camera values (field of view or focal length, camera height, ignore EXIF).

Inside Maya they live in Maya's preferences as optionVars (`img2maya_python`, `img2maya_recent`,
`img2maya_recursion`, `img2maya_seg_model`, `img2maya_depth_model`, `img2maya_instances_model`,
`img2maya_fov_deg`, `img2maya_focal_mm`, `img2maya_camera_height_m`, `img2maya_ignore_exif`; each value
is a JSON string, so lists and None survive), saved by Maya with the other preferences. Outside Maya
(tests, scripts) the same keys go to a JSON file in the user's config folder (`config_path()`).

Pure standard library, Python 3.7+.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

MAX_RECENT = 10
MAX_RECURSION = 5
OPTION_PREFIX = "img2maya_"
KEYS = ("python", "recent", "recursion", "seg_model", "depth_model", "instances_model", "fov_deg", "focal_mm",
        "camera_height_m", "ignore_exif")


def config_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The settings file outside Maya: $IMG2MAYA_SETTINGS, else `img2maya/settings.json` in the
    user's config folder (%APPDATA% on Windows, ~/Library/Application Support on macOS,
    $XDG_CONFIG_HOME or ~/.config elsewhere)."""
    src = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if src.get("IMG2MAYA_SETTINGS"):
        return str(src["IMG2MAYA_SETTINGS"])
    home = src.get("HOME") or src.get("USERPROFILE") or os.path.expanduser("~")
    if platform == "win32":
        base = src.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    elif platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = src.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "img2maya", "settings.json")


class JsonStore:
    """Key/value store in one JSON file (written atomically; a missing or corrupt file reads as empty)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or config_path()

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Any:
        return self._read().get(key)

    def set(self, key: str, value: Any) -> None:
        data = self._read()
        data[key] = value
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise


class OptionVarStore:
    """Key/value store in Maya optionVars (`img2maya_<key>`, JSON in a string value)."""

    def __init__(self, cmds: Any = None) -> None:
        if cmds is None:
            from maya import cmds as maya_cmds

            cmds = maya_cmds
        self.cmds = cmds

    def get(self, key: str) -> Any:
        name = OPTION_PREFIX + key
        if not self.cmds.optionVar(exists=name):
            return None
        raw = self.cmds.optionVar(query=name)
        try:
            return json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return raw

    def set(self, key: str, value: Any) -> None:
        self.cmds.optionVar(stringValue=(OPTION_PREFIX + key, json.dumps(value)))


def default_store() -> Any:
    """optionVars when maya.cmds is importable (inside Maya), else the JSON file."""
    try:
        from maya import cmds
    except ImportError:
        return JsonStore()
    return OptionVarStore(cmds)


def _norm(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


class Settings:
    """Typed access to the remembered settings over a store (`default_store()` when None)."""

    def __init__(self, store: Any = None) -> None:
        self.store = store if store is not None else default_store()

    def _str(self, key: str) -> str | None:
        value = self.store.get(key)
        return value if isinstance(value, str) and value else None

    @property
    def python(self) -> str | None:
        """The system-Python command the user chose (None: find one automatically)."""
        return self._str("python")

    @python.setter
    def python(self, value: str | None) -> None:
        self.store.set("python", (value or "").strip() or None)

    @property
    def recent_files(self) -> list[str]:
        """Recently used photos, most recent first (at most MAX_RECENT)."""
        value = self.store.get("recent")
        if not isinstance(value, list):
            return []
        return [str(p) for p in value if isinstance(p, str) and p][:MAX_RECENT]

    def add_recent(self, path: str) -> list[str]:
        """Put `path` first in the recent files (no duplicates); returns the new list."""
        path = os.path.abspath(path)
        items = [path] + [p for p in self.recent_files if _norm(p) != _norm(path)]
        items = items[:MAX_RECENT]
        self.store.set("recent", items)
        return items

    def clear_recent(self) -> None:
        self.store.set("recent", [])

    @property
    def recursion(self) -> int:
        """The last recursion depth (0..MAX_RECURSION, default 0)."""
        value = self.store.get("recursion")
        try:
            number = int(value) if value is not None else 0
        except (TypeError, ValueError):
            number = 0
        return max(0, min(MAX_RECURSION, number))

    @recursion.setter
    def recursion(self, value: int) -> None:
        self.store.set("recursion", max(0, min(MAX_RECURSION, int(value))))

    @property
    def seg_model(self) -> str | None:
        """The chosen segmentation model id (None: the server's default)."""
        return self._str("seg_model")

    @seg_model.setter
    def seg_model(self, value: str | None) -> None:
        self.store.set("seg_model", value or None)

    @property
    def depth_model(self) -> str | None:
        """The chosen depth model id ("none" = no depth network; None: the server's default)."""
        return self._str("depth_model")

    @depth_model.setter
    def depth_model(self, value: str | None) -> None:
        self.store.set("depth_model", value or None)

    @property
    def instances_model(self) -> str | None:
        """The chosen instance model id ("none" = no instances; None: the server's default)."""
        return self._str("instances_model")

    @instances_model.setter
    def instances_model(self, value: str | None) -> None:
        self.store.set("instances_model", value or None)

    # camera values typed in the panel (None: automatic); the panel checks them before storing
    def _positive(self, key: str) -> float | None:
        value = self.store.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        number = float(value)
        return number if math.isfinite(number) and number > 0 else None

    def _set_positive(self, key: str, value: float | None) -> None:
        self.store.set(key, None if value is None else float(value))

    @property
    def fov_deg(self) -> float | None:
        """The typed horizontal field of view in degrees (None: automatic)."""
        return self._positive("fov_deg")

    @fov_deg.setter
    def fov_deg(self, value: float | None) -> None:
        self._set_positive("fov_deg", value)

    @property
    def focal_mm(self) -> float | None:
        """The typed focal length in mm, 35 mm film back (None: automatic)."""
        return self._positive("focal_mm")

    @focal_mm.setter
    def focal_mm(self, value: float | None) -> None:
        self._set_positive("focal_mm", value)

    @property
    def camera_height_m(self) -> float | None:
        """The typed camera height in metres (None: automatic)."""
        return self._positive("camera_height_m")

    @camera_height_m.setter
    def camera_height_m(self, value: float | None) -> None:
        self._set_positive("camera_height_m", value)

    @property
    def ignore_exif(self) -> bool:
        """Ignore the photo's EXIF focal length (default off)."""
        return self.store.get("ignore_exif") is True

    @ignore_exif.setter
    def ignore_exif(self, value: bool) -> None:
        self.store.set("ignore_exif", bool(value))
