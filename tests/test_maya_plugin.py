"""The img2maya plug-in on the fake Maya: registration, the command's flags, undo plumbing; the fake
OpenMaya only uses names that exist in maya-stubs; mypy over the Maya side."""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya

fake_maya = _fakemaya.fake_maya  # the pytest fixture
ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plug-ins" / "img2maya_plugin.py"
SCENE = ROOT / "tests" / "data" / "example_scene.json"


def _run(args):
    """Run the registered command as Maya would: creator(), then doIt(MArgList)."""
    from maya.api import OpenMaya as om

    creator, syntax = om.REGISTERED_COMMANDS["img2maya"]
    cmd = creator()
    arglist = om.MArgList()
    for a in args:
        arglist.addArg(a)
    cmd.doIt(arglist)
    return cmd, om.MPxCommand._result


def test_fake_openmaya_matches_the_stubs():
    _fakemaya.install()
    from maya._fake import stub_path
    from maya.api import OpenMaya as fake

    stub = Path(stub_path()).parents[1] / "api" / "OpenMaya.pyi"
    tree = ast.parse(stub.read_text())
    defs = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def members(name):  # a class's members, inherited ones included
        node = defs[name]
        own = {getattr(b, "name", None) or getattr(getattr(b, "target", None), "id", None) for b in node.body}
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in defs:
                own |= members(base.id)
        return own

    classes = {name: members(name) for name in defs}
    for name in ("MObject", "MGlobal", "MFnPlugin", "MSyntax", "MArgList", "MArgDatabase", "MPxCommand",
                 "MDGModifier"):
        assert name in classes, name
        own = {m for m in vars(getattr(fake, name)) if not m.startswith("_")} - {"flags", "items"}
        assert own <= classes[name], (name, own - classes[name])


def test_fake_openmayaui_matches_the_stubs():
    _fakemaya.install()
    from maya import OpenMayaUI
    from maya._fake import stub_path

    stub = Path(stub_path()).parents[1] / "OpenMayaUI.pyi"
    tree = ast.parse(stub.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "MQtUtil"]
    names = {getattr(b, "name", None) for b in cls.body}
    assert {m for m in vars(OpenMayaUI.MQtUtil) if not m.startswith("_")} <= names


def test_plugin_loads_registers_and_unloads(fake_maya):
    from maya import cmds
    from maya.api import OpenMaya as om

    assert cmds.loadPlugin(str(PLUGIN)) == ["img2maya_plugin"]
    assert "img2maya" in om.REGISTERED_COMMANDS
    assert "img2mayaMainMenu" not in fake_maya.ui  # batch: no menu
    cmds.unloadPlugin("img2maya_plugin")
    assert "img2maya" not in om.REGISTERED_COMMANDS


def test_command_builds_from_a_scene_file_undoably(fake_maya):
    from maya import cmds

    cmds.loadPlugin(str(PLUGIN))
    try:
        cmd, root = _run(["-scene", str(SCENE), "-rt", "my_build"])
        assert root == "my_build" and cmds.objExists("my_build")
        assert cmd._modifier.python_commands == [f"import img2maya.commands as _c; _c.execute_pending({cmd._token!r})"]
        assert (fake_maya.undo_opened, fake_maya.undo_depth) == (1, 0)
        cmd.undoIt()
        assert cmd._modifier.undone == 1
        cmds.delete("my_build")  # what Maya's undo of the modifier does; the fake does not model it
        cmd.redoIt()  # redo rebuilds the same scene without re-analysing
        assert cmds.objExists("my_build") and fake_maya.undo_opened == 2
        _, again = _run(["-s", str(SCENE), "-rebuild", False])
        assert again == "img2maya_example"
    finally:
        cmds.unloadPlugin("img2maya_plugin")


def test_command_with_a_photo_uses_the_server(fake_maya, tmp_path, monkeypatch):
    from img2maya import commands
    from img2maya.camera_input import CameraRequest
    from maya import cmds

    photo = tmp_path / "street.jpg"
    photo.write_bytes(b"x")
    scene = json.loads(SCENE.read_text())
    calls = []

    def fake_analyze(path, recursion=0, python=None, on_progress=None, camera=None):
        calls.append((path, recursion, python))
        assert camera == CameraRequest()  # no camera flag: all automatic
        return scene

    monkeypatch.setattr(commands, "analyze_photo", fake_analyze)
    cmds.loadPlugin(str(PLUGIN))
    try:
        _, root = _run(["-i", str(photo), "-r", 2, "-py", "/usr/bin/python3"])
    finally:
        cmds.unloadPlugin("img2maya_plugin")
    assert calls == [(str(photo), 2, "/usr/bin/python3")]
    assert root == "img2maya_example"
    planes = [n for n in fake_maya.nodes.values() if n.type == "imagePlane"]
    assert planes[0].attrs["imageName"] == str(photo)


def test_command_camera_flags_reach_the_server(fake_maya, tmp_path, monkeypatch):
    from img2maya import commands
    from img2maya.camera_input import CameraRequest
    from maya import cmds

    photo = tmp_path / "street.jpg"
    photo.write_bytes(b"x")
    scene = json.loads(SCENE.read_text())
    cameras = []

    def fake_analyze(path, recursion=0, python=None, on_progress=None, camera=None):
        cameras.append(camera)
        return scene

    monkeypatch.setattr(commands, "analyze_photo", fake_analyze)
    cmds.loadPlugin(str(PLUGIN))
    try:
        _run(["-image", str(photo), "-fieldOfView", 72.5, "-cameraHeight", 1.4, "-ignoreExif", True])
        _run(["-i", str(photo), "-fl", "50", "-ch", 2, "-ie", False])  # MEL hands strings and integers too
        _run(["-i", str(photo)])
    finally:
        cmds.unloadPlugin("img2maya_plugin")
    assert cameras[0] == CameraRequest(fov_deg=72.5, camera_height_m=1.4, ignore_exif=True)
    assert cameras[0].fields() == {"fov_deg": 72.5}
    assert cameras[0].options() == {"camera_height_m": 1.4, "ignore_exif": True}
    assert cameras[1] == CameraRequest(focal_mm=50.0, camera_height_m=2.0)
    assert cameras[2] == CameraRequest()


def test_analyze_photo_sends_the_camera_fields(monkeypatch, tmp_path):
    _fakemaya.install()
    from img2maya import camera_input, client, commands

    calls = []

    class FakeClient:
        python = "/usr/bin/python3"

        def __init__(self, exe):
            pass

        def analyze(self, photo, recursion=0, options=None, on_progress=None, **fields):
            calls.append((photo, recursion, options, fields))
            return {"scene": {"schema": "img2maya/scene@1"}}

    monkeypatch.setattr(client, "ServerClient", FakeClient)
    monkeypatch.setattr(commands, "_CLIENT", None)
    camera = camera_input.camera_request("", "35", "1.7", True)
    commands.analyze_photo(str(tmp_path / "p.jpg"), 1, python="/usr/bin/python3", camera=camera)
    commands.analyze_photo(str(tmp_path / "p.jpg"), 0, python="/usr/bin/python3")
    (_, r1, options1, fields1), (_, _, options2, fields2) = calls
    assert r1 == 1 and options1 == {"camera_height_m": 1.7, "ignore_exif": True}
    assert fields1["fov_deg"] == pytest.approx(math.degrees(2 * math.atan(18 / 35)))
    assert options2 == {} and fields2 == {}
    monkeypatch.setattr(commands, "_CLIENT", None)


@pytest.mark.parametrize("flags, message", [
    (["-fov", 179], "img2maya: field of view must be between 1 and 179 degrees (exclusive), got 179"),
    (["-fov", 0.5], "got 0.5"),
    (["-fl", 0], "img2maya: focal length must be a positive number of mm, got 0"),
    (["-fl", -35.0], "got -35"),
    (["-ch", 0], "img2maya: camera height must be more than 0 and at most 1000 m, got 0"),
    (["-ch", -1.0], "got -1"),
    (["-ch", float("inf")], "got inf"),
    (["-ch", float("nan")], "got nan"),
    (["-fov", 60, "-fl", 35], "not both"),
])
def test_command_camera_flag_errors(fake_maya, tmp_path, monkeypatch, flags, message):
    from img2maya import commands
    from maya import cmds
    from maya.api import OpenMaya as om

    photo = tmp_path / "street.jpg"
    photo.write_bytes(b"x")
    monkeypatch.setattr(commands, "analyze_photo", lambda *a, **k: pytest.fail("the server was asked"))
    cmds.loadPlugin(str(PLUGIN))
    try:
        om.MESSAGES.clear()
        with pytest.raises(ValueError) as info:
            _run(["-i", str(photo), *flags])
        assert message in str(info.value) and "\n" not in str(info.value)
        assert om.MESSAGES == [("error", str(info.value))]
        with pytest.raises(ValueError, match="apply to -image only"):  # a scene file's camera is decided
            _run(["-s", str(SCENE), "-fov", 60])
        with pytest.raises(RuntimeError, match="invalid argument for flag -fov"):  # not a number: Maya's parser
            _run(["-i", str(photo), "-fov", "wide"])
    finally:
        cmds.unloadPlugin("img2maya_plugin")


def test_command_flag_errors(fake_maya, tmp_path):
    from maya import cmds

    cmds.loadPlugin(str(PLUGIN))
    try:
        with pytest.raises(ValueError, match="exactly one"):
            _run([])
        with pytest.raises(ValueError, match="recursion"):
            _run(["-s", str(SCENE), "-r", 9])
        with pytest.raises(ValueError, match="photo not found"):
            _run(["-i", str(tmp_path / "nope.jpg")])
        with pytest.raises(RuntimeError, match="invalid flag"):
            _run(["-sc", str(SCENE)])
    finally:
        cmds.unloadPlugin("img2maya_plugin")


def test_unloading_the_plugin_closes_an_open_panel(fake_maya, monkeypatch):
    import types

    from maya import cmds

    closed = []
    fake_panel = types.ModuleType("img2maya.panel")
    fake_panel.close = lambda: closed.append(True)  # type: ignore[attr-defined]
    cmds.loadPlugin(str(PLUGIN))
    monkeypatch.delitem(sys.modules, "img2maya.panel", raising=False)
    cmds.unloadPlugin("img2maya_plugin")  # never opened: nothing imported, nothing closed
    assert closed == [] and "img2maya.panel" not in sys.modules
    cmds.loadPlugin(str(PLUGIN))
    monkeypatch.setitem(sys.modules, "img2maya.panel", fake_panel)
    cmds.unloadPlugin("img2maya_plugin")
    assert closed == [True]


def test_mypy_passes_over_the_maya_side():
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed")
    # The Maya side only (the project config, its files named): `make test` runs mypy over the whole
    # project in its lint step; checking the engine here again would cost a cold run ~13 s more.
    maya_side = ["scripts/img2maya", "plug-ins", "maya_module"]
    out = subprocess.run([mypy, *maya_side], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
