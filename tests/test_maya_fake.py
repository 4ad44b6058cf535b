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


def test_duplicate_upstream_nodes_copies_a_shading_network(fake_maya):
    """duplicate -upstreamNodes on a shading group: a new group and a new Lambert, connected like the
    originals, attribute values (dynamic ones included) copied, downstream connections not."""
    from maya import cmds

    mtl = cmds.shadingNode("lambert", asShader=True, name="net_mtl")
    sg = cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name="net_SG")
    cmds.connectAttr(mtl + ".outColor", sg + ".surfaceShader")
    cmds.setAttr(mtl + ".color", 0.1, 0.2, 0.3, type="double3")
    cmds.addAttr(mtl, longName="tag", attributeType="long", defaultValue=7)
    other = cmds.shadingNode("lambert", asShader=True, name="downstream")
    cmds.connectAttr(mtl + ".outColorR", other + ".colorR")  # downstream of the Lambert: not copied
    new = cmds.duplicate(sg, upstreamNodes=True)
    assert new == ["net_SG1", "net_mtl1"]  # the given node first, then what fed it; renumbered names
    assert ("net_mtl1.outColor", "net_SG1.surfaceShader") in fake_maya.connections
    assert ("net_mtl.outColor", "net_SG.surfaceShader") in fake_maya.connections
    assert not [c for c in fake_maya.connections if c[0].startswith("net_mtl1.outColorR")]
    assert cmds.getAttr("net_mtl1.color") == [(0.1, 0.2, 0.3)] and cmds.getAttr("net_mtl1.tag") == 7
    assert fake_maya.nodes["net_SG1"].type == "shadingEngine" and fake_maya.nodes["net_SG1"].set_flags["renderable"]
    # several at once, roots only: each gets its own copy of its own Lambert
    roots = cmds.duplicate("net_SG", "net_SG1", upstreamNodes=True, returnRootsOnly=True)
    assert roots == ["net_SG2", "net_SG3"]
    pairs = cmds.listConnections("net_SG2.surfaceShader", "net_SG3.surfaceShader", source=True,
                                 destination=False, connections=True)
    assert pairs == ["net_SG2.surfaceShader", "net_mtl2", "net_SG3.surfaceShader", "net_mtl3"]
    assert cmds.ls("net_SG2", "net_mtl2", "net_mtl3", type="shadingEngine") == ["net_SG2"]
    # without -upstreamNodes only the node itself, unconnected
    assert cmds.duplicate(mtl) == ["net_mtl4"]
    assert not cmds.listConnections("net_mtl4")
    assert cmds.duplicate(mtl, name="named") == ["named"]


def test_duplicate_refuses_what_it_does_not_model(fake_maya):
    from maya import cmds

    box = cmds.polyCube(name="box", constructionHistory=False)[0]
    with pytest.raises(NotImplementedError, match="DAG"):
        cmds.duplicate(box)
    sg = cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name="used_SG")
    cmds.sets(box, forceElement=sg)
    with pytest.raises(NotImplementedError, match="members"):
        cmds.duplicate(sg, upstreamNodes=True)  # in Maya this would copy the box as well
    with pytest.raises(NotImplementedError, match="name"):
        cmds.duplicate("lambert1", sg, name="x")
    with pytest.raises(TypeError, match="short flag"):
        cmds.duplicate(sg, un=True)  # short flag


def test_enum_attribute(fake_maya):
    from maya import cmds

    a = cmds.polyCube(name="a", constructionHistory=False)[0]
    b = cmds.polyCube(name="b", constructionHistory=False)[0]
    cmds.addAttr(a, b, longName="kind", attributeType="enum", enumName="car")
    assert cmds.getAttr("a.kind") == 0 and cmds.getAttr("b.kind", asString=True) == "car"
    cmds.addAttr(a, longName="mode", attributeType="enum", enumName="off:on=4:auto", defaultValue=5)
    assert cmds.getAttr("a.mode") == 5 and cmds.getAttr("a.mode", asString=True) == "auto"
    cmds.setAttr("a.mode", 4)
    assert cmds.getAttr("a.mode", asString=True) == "on"
    with pytest.raises(RuntimeError, match="not a field"):
        cmds.setAttr("a.mode", 1)
    with pytest.raises(RuntimeError, match="enumName"):
        cmds.addAttr(b, longName="bad", attributeType="long", enumName="x")
    with pytest.raises(RuntimeError, match="not a field"):
        cmds.addAttr(b, longName="bad", attributeType="enum", enumName="x", defaultValue=3)


def test_set_membership_is_seen_as_connections(fake_maya):
    """As in Maya, a member's instObjGroups feeds the set's dagSetMembers: listConnections finds the
    members of several shading groups in one call (transforms unless shapes=True)."""
    from maya import cmds

    a = cmds.polyCube(name="a", constructionHistory=False)[0]
    b = cmds.polyCube(name="b", constructionHistory=False)[0]
    sg1 = cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name="one_SG")
    sg2 = cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name="two_SG")
    sg3 = cmds.sets(renderable=True, noSurfaceShader=True, empty=True, name="three_SG")
    cmds.sets(a, b, forceElement=sg1)
    cmds.sets(b, forceElement=sg3)
    plugs = [sg + ".dagSetMembers" for sg in (sg1, sg2, sg3)]
    assert cmds.listConnections(*plugs, source=True, destination=False, connections=True) == [
        "one_SG.dagSetMembers[0]", "a", "three_SG.dagSetMembers[0]", "b"]
    assert cmds.listConnections(sg3 + ".dagSetMembers", source=True, destination=False, shapes=True) == ["bShape"]
    assert cmds.listConnections(sg3 + ".dagSetMembers", destination=False, plugs=True) == ["bShape.instObjGroups[0]"]
    assert not cmds.listConnections(sg2 + ".dagSetMembers", source=True, destination=False)
    assert "three_SG" in cmds.listConnections("bShape", source=False, destination=True)
    cmds.delete(b)
    assert not cmds.listConnections(sg3 + ".dagSetMembers", source=True, destination=False)
    assert cmds.ls("a.translateX", "gone.translateX", "a.noSuchAttr", "a_SG.message", objectsOnly=True) == ["a"]
    assert cmds.listConnections(*plugs, source=True, destination=False, type="mesh") == ["a"]
