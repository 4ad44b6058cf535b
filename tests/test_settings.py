"""img2maya.settings: the JSON file outside Maya, optionVars inside (fake maya.cmds)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya
from img2maya import settings as settings_mod
from img2maya.settings import JsonStore, OptionVarStore, Settings

fake_maya = _fakemaya.fake_maya  # the pytest fixture


def test_config_path_per_platform() -> None:
    env = {"HOME": "/home/u"}
    assert settings_mod.config_path(env, "linux") == "/home/u/.config/img2maya/settings.json"
    assert settings_mod.config_path(dict(env, XDG_CONFIG_HOME="/x"), "linux") == "/x/img2maya/settings.json"
    assert settings_mod.config_path(env, "darwin") == \
        "/home/u/Library/Application Support/img2maya/settings.json"
    win = settings_mod.config_path({"USERPROFILE": "C:/Users/u", "APPDATA": "C:/Users/u/AppData/Roaming"},
                                   "win32")
    assert win.replace("\\", "/") == "C:/Users/u/AppData/Roaming/img2maya/settings.json"
    assert settings_mod.config_path(dict(env, IMG2MAYA_SETTINGS="/s.json"), "linux") == "/s.json"


def test_json_store_round_trip_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    s = Settings(JsonStore(str(path)))
    assert (s.python, s.recent_files, s.recursion, s.seg_model, s.depth_model) == (None, [], 0, None, None)
    s.python = "/usr/bin/python3"
    s.recursion = 3
    s.seg_model = "deeplabv3-mnv2-ade20k32"
    s.depth_model = "none"
    again = Settings(JsonStore(str(path)))  # a new session reads the file
    assert again.python == "/usr/bin/python3"
    assert again.recursion == 3
    assert (again.seg_model, again.depth_model) == ("deeplabv3-mnv2-ade20k32", "none")
    assert json.loads(path.read_text())["recursion"] == 3
    assert not list(path.parent.glob("*.part"))
    s.python = "  "
    assert again.python is None


def test_instances_model_round_trip(tmp_path: Path, fake_maya) -> None:
    path = tmp_path / "s.json"
    s = Settings(JsonStore(str(path)))
    assert s.instances_model is None  # the server's default
    s.instances_model = "yolov8n-seg-coco-int8"
    assert Settings(JsonStore(str(path))).instances_model == "yolov8n-seg-coco-int8"
    s.instances_model = "none"
    assert Settings(JsonStore(str(path))).instances_model == "none"
    s.instances_model = ""
    assert json.loads(path.read_text())["instances_model"] is None and s.instances_model is None
    assert "instances_model" in settings_mod.KEYS
    inside = Settings(OptionVarStore())  # Maya's optionVar
    inside.instances_model = "none"
    assert fake_maya.option_vars["img2maya_instances_model"] == '"none"'
    assert Settings(OptionVarStore()).instances_model == "none"


def test_camera_values_round_trip_and_bad_stored_values(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    s = Settings(JsonStore(str(path)))
    assert (s.fov_deg, s.focal_mm, s.camera_height_m, s.ignore_exif) == (None, None, None, False)
    s.fov_deg, s.focal_mm, s.camera_height_m, s.ignore_exif = 72.5, None, 1.4, True
    again = Settings(JsonStore(str(path)))
    assert (again.fov_deg, again.focal_mm, again.camera_height_m, again.ignore_exif) == (72.5, None, 1.4, True)
    s.fov_deg = None
    assert again.fov_deg is None
    for bad in ("60", True, -3, 0, [1], {"a": 1}):  # a hand-edited file: read as automatic
        path.write_text(json.dumps({"fov_deg": bad, "focal_mm": bad, "camera_height_m": bad, "ignore_exif": bad}))
        assert (again.fov_deg, again.focal_mm, again.camera_height_m) == (None, None, None)
        assert again.ignore_exif is (bad is True)
    path.write_text('{"fov_deg": NaN, "camera_height_m": Infinity}')  # Python's json reads these
    assert (again.fov_deg, again.camera_height_m) == (None, None)


def test_recent_files_keep_ten_most_recent_first_without_duplicates(tmp_path: Path) -> None:
    s = Settings(JsonStore(str(tmp_path / "s.json")))
    for i in range(12):
        s.add_recent(str(tmp_path / f"p{i}.jpg"))
    recent = s.add_recent(str(tmp_path / "p5.jpg"))
    assert len(recent) == settings_mod.MAX_RECENT == 10
    assert recent[0] == str(tmp_path / "p5.jpg")
    assert recent[1:4] == [str(tmp_path / f"p{i}.jpg") for i in (11, 10, 9)]
    assert recent.count(str(tmp_path / "p5.jpg")) == 1
    assert s.recent_files == recent
    s.clear_recent()
    assert s.recent_files == []


def test_recursion_is_clamped_and_bad_values_read_as_default(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    s = Settings(JsonStore(str(path)))
    s.recursion = 9
    assert s.recursion == 5
    s.recursion = -2
    assert s.recursion == 0
    path.write_text(json.dumps({"recursion": "lots", "recent": "notalist", "python": 3}))
    assert (s.recursion, s.recent_files, s.python) == (0, [], None)
    path.write_text("{corrupt")
    assert s.recursion == 0
    s.recursion = 2  # a corrupt file is replaced, not fatal
    assert s.recursion == 2


def test_option_vars_inside_maya(fake_maya) -> None:
    from maya import cmds

    store = settings_mod.default_store()
    assert isinstance(store, OptionVarStore)
    s = Settings(store)
    assert s.recursion == 0 and s.python is None
    s.recursion = 4
    s.python = "C:/Python311/python.exe"
    s.add_recent("/photos/a.jpg")
    s.depth_model = "none"
    assert fake_maya.option_vars["img2maya_recursion"] == "4"
    assert cmds.optionVar(query="img2maya_python") == json.dumps("C:/Python311/python.exe")
    again = Settings(OptionVarStore())
    assert again.recursion == 4 and again.python == "C:/Python311/python.exe"
    assert again.recent_files == [os.path.abspath("/photos/a.jpg")]
    assert again.depth_model == "none" and again.seg_model is None
    s.camera_height_m, s.ignore_exif, s.focal_mm = 1.4, True, 50
    assert fake_maya.option_vars["img2maya_camera_height_m"] == "1.4"
    assert fake_maya.option_vars["img2maya_ignore_exif"] == "true"
    assert (again.camera_height_m, again.ignore_exif, again.focal_mm, again.fov_deg) == (1.4, True, 50.0, None)


def test_default_store_without_maya_is_the_json_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "maya", None)  # `from maya import cmds` raises ImportError
    monkeypatch.setenv("IMG2MAYA_SETTINGS", str(tmp_path / "x.json"))
    store = settings_mod.default_store()
    assert isinstance(store, JsonStore) and store.path == str(tmp_path / "x.json")
