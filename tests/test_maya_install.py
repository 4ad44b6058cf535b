"""Module file, shelf, icons and the drag-and-drop installer (pure path logic + the fake Maya)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya
from PIL import Image

fake_maya = _fakemaya.fake_maya  # the pytest fixture
ROOT = Path(__file__).resolve().parents[1]


def _installer():
    spec = importlib.util.spec_from_file_location("install_img2maya", ROOT / "maya_module" / "install_img2maya.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("app_dir, root, mod_path, first_line", [
    ("C:/Users/Ann/Documents/maya/", "C:\\Users\\Ann\\src\\img2maya",
     "C:/Users/Ann/Documents/maya/modules/img2maya.mod", "+ img2maya 0.1.0 C:/Users/Ann/src/img2maya"),
    ("/Users/ann/Library/Preferences/Autodesk/maya/", "/Users/ann/dev/img2maya/",
     "/Users/ann/Library/Preferences/Autodesk/maya/modules/img2maya.mod", "+ img2maya 0.1.0 /Users/ann/dev/img2maya"),
    ("/home/ann/maya", "/home/ann/img2maya",
     "/home/ann/maya/modules/img2maya.mod", "+ img2maya 0.1.0 /home/ann/img2maya"),
    ("\\\\server\\home\\ann\\maya\\", "\\\\server\\tools\\img2maya",
     "//server/home/ann/maya/modules/img2maya.mod", "+ img2maya 0.1.0 //server/tools/img2maya"),
])
def test_mod_for_each_platform(app_dir, root, mod_path, first_line):
    inst = _installer()
    assert inst.mod_file_path(app_dir) == mod_path
    text = inst.mod_text(root)
    assert text.splitlines() == [first_line, "MAYA_SHELF_PATH +:= shelves", "IMG2MAYA_ROOT :="]
    (block,) = inst.parse_mod(text)
    assert block["name"] == "img2maya" and block["version"] == "0.1.0"
    assert "\\" not in text


def test_module_root_and_icon_path():
    inst = _installer()
    assert inst.module_root() == str(ROOT).replace("\\", "/")
    assert inst.icon_search_entry("/m/icons", "linux") == "/m/icons/%B"
    assert inst.icon_search_entry("C:/m/icons", "win32") == "C:/m/icons"
    assert inst.icon_search_entry("/m/icons", "darwin") == "/m/icons"


def test_shipped_mod_file_parses_and_is_relative():
    inst = _installer()
    text = (ROOT / "img2maya.mod").read_text()
    (block,) = inst.parse_mod(text)
    assert (block["name"], block["version"], block["path"]) == ("img2maya", "0.1.0", ".")
    assert block["lines"] == ["MAYA_SHELF_PATH +:= shelves", "IMG2MAYA_ROOT :="]
    for folder in ("scripts/img2maya", "plug-ins", "icons", "shelves"):
        assert (ROOT / folder).is_dir()
    with pytest.raises(ValueError, match="blank line"):
        inst.parse_mod("+ a 1 .\nX := 1\n\nY := 2\n")
    with pytest.raises(ValueError, match="outside"):
        inst.parse_mod("X := 1\n+ a 1 .\n")


def test_shelf_and_icons():
    mel = (ROOT / "shelves" / "shelf_img2maya.mel").read_text()
    assert "global proc shelf_img2maya ()" in mel
    assert '-image "img2maya.png"' in mel
    assert '-command "python(\\"import img2maya; img2maya.show()\\")"' in mel
    assert mel.count("{") == mel.count("}")
    assert Image.open(ROOT / "icons" / "img2maya.png").size == (32, 32)
    assert Image.open(ROOT / "icons" / "img2maya_64.png").size == (64, 64)


def test_write_atomic(tmp_path):
    inst = _installer()
    target = tmp_path / "maya" / "modules" / "img2maya.mod"
    inst.write_atomic(str(target), "x\n")
    inst.write_atomic(str(target), "+ img2maya 0.1.0 /a\n")
    assert target.read_text() == "+ img2maya 0.1.0 /a\n"
    assert os.listdir(target.parent) == ["img2maya.mod"]


def test_install_and_uninstall_on_the_fake(fake_maya, tmp_path, monkeypatch):
    inst = _installer()
    fake_maya.user_app_dir = str(tmp_path).replace("\\", "/") + "/"
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("XBMLANGPATH", "")
    mod = inst.install()
    assert Path(mod).read_text() == inst.mod_text(str(ROOT))
    assert fake_maya.modules == {"img2maya": mod}
    assert "img2maya_plugin" in fake_maya.plugins and fake_maya.autoload["img2maya_plugin"] is True
    from maya.api import OpenMaya

    assert "img2maya" in OpenMaya.REGISTERED_COMMANDS
    assert str(ROOT).replace("\\", "/") + "/scripts" in [p.replace("\\", "/") for p in sys.path]
    assert os.environ["XBMLANGPATH"].endswith("icons/%B" if sys.platform.startswith("linux") else "icons")
    inst.uninstall()
    assert not Path(mod).exists()
    assert not fake_maya.plugins and "img2maya" not in OpenMaya.REGISTERED_COMMANDS


def test_install_interactive_creates_shelf_and_menu(fake_maya, tmp_path, monkeypatch):
    inst = _installer()
    fake_maya.user_app_dir = str(tmp_path) + "/"
    fake_maya.batch = False
    fake_maya.ui["MayaWindow"] = "window"
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(inst, "create_shelf", inst.create_shelf)
    from maya import _fake_commands

    dialogs = []
    monkeypatch.setitem(_fake_commands.COMMANDS, "confirmDialog", lambda st, **kw: dialogs.append(kw) or "OK")
    inst.install()
    assert fake_maya.ui.get("img2maya") == "shelfLayout"
    assert fake_maya.ui.get("img2mayaMainMenu") == "menu"
    assert sum(1 for k in fake_maya.ui.values() if k == "menuItem") == 4  # panel, build, divider, help
    assert "$tmp = $gMainWindow" in fake_maya.mel_history
    assert sum(1 for k in fake_maya.ui.values() if k == "shelfButton") == 1
    assert "installed" in dialogs[0]["message"]
    inst.uninstall()
    assert "img2maya" not in fake_maya.ui and "img2mayaMainMenu" not in fake_maya.ui


def test_shelf_flags_exist_in_maya():
    """Every flag in the shelf file is a real shelfButton flag (long name) according to maya-stubs."""
    import re

    _fakemaya.install()
    from maya import _fake

    mel = (ROOT / "shelves" / "shelf_img2maya.mel").read_text()
    flags = re.findall(r"^\s+-(\w+)", mel, re.M)
    assert len(flags) > 10
    assert [f for f in flags if f not in _fake.signatures()["shelfButton"].flags] == []
