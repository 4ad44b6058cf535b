"""The fake maya.cmds stays honest: it only accepts what maya-stubs declares; plus units.py."""

from __future__ import annotations

import pytest
from fakemaya import fixture as _fakemaya

fake_maya = _fakemaya.fake_maya  # the pytest fixture


def test_unknown_flag_short_flag_and_unknown_command_are_rejected(fake_maya):
    from maya import cmds

    with pytest.raises(TypeError, match="badFlag"):
        cmds.polyCube(badFlag=1)
    with pytest.raises(TypeError, match="short flag"):
        cmds.polyCube(n="box")  # Maya accepts -n; our code must use long names only
    with pytest.raises(TypeError, match="noSuchCommand"):
        cmds.noSuchCommand()
    with pytest.raises(TypeError, match="positional"):
        cmds.connectAttr("a.b", "c.d", "e.f")
    assert fake_maya.calls["polyCube"] == 0  # rejected calls never reach the scene


def test_every_modelled_command_exists_in_the_stubs():
    from fakemaya.fixture import install

    install()
    from maya import _fake, _fake_commands

    assert set(_fake_commands.COMMANDS) <= set(_fake.signatures())
    assert len(_fake.signatures()) > 1000  # the real stub file was parsed


def test_scene_model_basics(fake_maya):
    from maya import cmds

    assert cmds.polyCube(name="box", constructionHistory=False) == ["box"]
    assert cmds.polyCube(name="box", constructionHistory=False) == ["box1"]
    assert cmds.polyCube()[0] == "pCube1"
    assert cmds.listRelatives("box1", shapes=True) == ["boxShape1"]
    with pytest.raises(ValueError):
        cmds.setAttr("box.noSuchAttr", 1)
    with pytest.raises(RuntimeError):
        cmds.setAttr("box.translate", 1, 2)  # compound needs three values
    cmds.addAttr("box", longName="note", dataType="string")
    with pytest.raises(RuntimeError):
        cmds.setAttr("box.note", "x")  # a string attribute needs type='string', as in Maya
    g = cmds.group("box", "box1", name="grp")
    assert cmds.listRelatives(g, children=True) == ["box", "box1"]
    cmds.delete(g)
    assert not cmds.objExists("box") and cmds.objExists("pCube1")
    cmds.undoInfo(closeChunk=True)
    assert fake_maya.undo_errors == 1


def test_units():
    from img2maya import units

    assert units.metres_to_unit_factor("cm") == 100.0
    assert units.metres_to_unit(2.0, "mm") == pytest.approx(2000.0)
    assert units.metres_to_unit(1.0, "in") == pytest.approx(39.37007874)
    assert units.metres_to_unit(0.3048, "ft") == pytest.approx(1.0)
    assert units.metres_to_unit(0.9144, "yard") == pytest.approx(1.0)
    assert units.metres_to_unit(1609.344, "mi") == pytest.approx(1.0)
    assert units.metres_to_unit(1500.0, "km") == pytest.approx(1.5)
    assert units.metres_to_unit(3.0, "meter") == 3.0
    assert units.mm_to_inches(36.0) == pytest.approx(1.417323, abs=1e-6)
    with pytest.raises(ValueError, match="unknown linear unit"):
        units.metres_to_unit_factor("parsec")
