"""The Maya side on the Pythons of Maya 2022-2024 (3.7, 3.9, 3.10): compile (the vendored Qt.py too),
import, build the example scene on the fake Maya, load the plug-in and, as these Pythons have no
PySide, check the shelf button's one-line report (tests/test_stock_maya.py adds PySide2 and the panel).
Uses interpreters found under ~/.pyenv/versions or listed in $IMG2MAYA_TEST_PYTHONS
(os.pathsep-separated); skips when there are none."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = r"""
import glob, importlib.util, py_compile, sys
sys.path[:0] = ["tests/fakemaya", "scripts"]
for f in glob.glob("scripts/img2maya/**/*.py", recursive=True) + ["plug-ins/img2maya_plugin.py",
                                                                  "maya_module/install_img2maya.py"]:
    py_compile.compile(f, doraise=True)  # the vendored Qt.py included
import contextlib, io
import img2maya
if not (importlib.util.find_spec("PySide2") or importlib.util.find_spec("PySide6")):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert img2maya.show() is None  # the shelf button without PySide: one line, no traceback
    assert out.getvalue().startswith("img2maya: the panel needs PySide6") and out.getvalue().count("\n") == 1
from maya import _fake
from maya.api import OpenMaya as om
_fake.reset()
root = img2maya.build_scene("tests/data/example_scene.json")
assert root == "img2maya_example", root
assert _fake.STATE.undo_depth == 0
spec = importlib.util.spec_from_file_location("plug", "plug-ins/img2maya_plugin.py")
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
plugin.initializePlugin(om.MObject())
plugin.uninitializePlugin(om.MObject())
import json
from img2maya import camera_input, camera_overlay  # the panel's camera line and overlay: no numpy, no Qt
scene = json.load(open("tests/data/example_scene.json"))
assert camera_overlay.describe(scene) == "FOV 60.0 deg, 31.2 mm (default 60 deg); pitch -5.0, roll 1.0 deg"
geo = camera_overlay.overlay(scene)
assert geo is not None and geo.horizon is not None and len(geo.vanishing[0].lines) == camera_overlay.FAN_LINES
assert camera_input.camera_request("", "50", "1.6", True).options() == {"camera_height_m": 1.6, "ignore_exif": True}
print("ok", sys.version_info[:2], _fake.STATE.total_calls())
"""


def _interpreters() -> list[str]:
    listed = [p for p in os.environ.get("IMG2MAYA_TEST_PYTHONS", "").split(os.pathsep) if p]
    found = listed or sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[789]*/bin/python3"))
                             + glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3")))
    return [p for p in found if os.path.isfile(p)]


@pytest.mark.parametrize("python", _interpreters() or [None])
def test_maya_side_runs_on_older_pythons(python):
    if python is None:
        pytest.skip("no Python 3.7-3.10 interpreter found (set IMG2MAYA_TEST_PYTHONS)")
    _fake_stubs = next(Path(p) for p in sys.path if (Path(p) / "maya-stubs" / "cmds" / "__init__.pyi").is_file())
    env = dict(os.environ, FAKEMAYA_STUBS=str(_fake_stubs / "maya-stubs" / "cmds" / "__init__.pyi"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([python, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")
