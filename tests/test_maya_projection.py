"""The projected look in the Maya builder, on the fake maya.cmds: one texture network per build (file,
place2dTexture, projection in perspective mode linked to the build's camera), a blendColors per Lambert
giving the mean colour outside the photo, ownership, regenerate, delete, undo chunk, the look from the scene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya

fake_maya = _fakemaya.fake_maya  # the pytest fixture

DATA = Path(__file__).resolve().parent / "data" / "example_scene.json"


@pytest.fixture
def scene(tmp_path) -> dict:
    photo = tmp_path / "example.jpg"
    photo.write_bytes(b"\xff\xd8 not decoded by the fake")
    s = json.loads(DATA.read_text())
    s["source"]["image"] = str(photo)
    return s


def _of_type(state, kind):
    return sorted(n.name for n in state.nodes.values() if n.type == kind)


def _source(state, plug):
    (src,) = [a for a, b in state.connections if b == plug]
    return src


def test_one_network_per_build_linked_to_the_camera(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    root = builder.build(scene, look="projection")
    assert _of_type(fake_maya, "file") == ["img2maya_example_photo"]
    assert _of_type(fake_maya, "place2dTexture") == ["img2maya_example_photo_place2d"]
    (proj,) = _of_type(fake_maya, "projection")
    tex = "img2maya_example_photo"
    assert cmds.getAttr(tex + ".fileTextureName") == scene["source"]["image"]
    assert _source(fake_maya, tex + ".uvCoord") == "img2maya_example_photo_place2d.outUV"
    assert _source(fake_maya, proj + ".image") == tex + ".outColor"
    assert _source(fake_maya, proj + ".linkedCamera") == "img2maya_example_camShape.message"
    assert cmds.getAttr(proj + ".projType") == 8
    assert cmds.getAttr(proj + ".fitType") == 1 and cmds.getAttr(proj + ".fitFill") == 1
    assert cmds.getAttr(proj + ".wrap") is False
    # every Lambert: colour = blend(projection, mean colour) by the projection's alpha
    lamberts = [n for n in _of_type(fake_maya, "lambert") if n != "lambert1"]
    blends = _of_type(fake_maya, "blendColors")
    assert len(lamberts) == len(blends) >= 5
    colours = set()
    for shader in lamberts:
        blend = _source(fake_maya, shader + ".color").split(".")[0]
        assert _source(fake_maya, blend + ".color1") == proj + ".outColor"
        assert _source(fake_maya, blend + ".blender") == proj + ".outAlpha"
        colours.add(tuple(round(c, 6) for c in cmds.getAttr(blend + ".color2")[0]))
    car = next(o for o in scene["objects"] if o["name"] == "car_1")
    assert tuple(round(c, 6) for c in car["color_linear"]) in colours
    listed = json.loads(cmds.getAttr(root + ".img2maya_shaders"))
    assert listed["look"] == "projection" and sorted(listed["shaders"]) == lamberts
    assert sorted(listed["shared"]) == sorted([tex, "img2maya_example_photo_place2d", proj])
    owner = builder.owner_attr(builder.photo_key(scene))
    for node in lamberts + blends + listed["shared"]:
        assert owner in fake_maya.nodes[node].dynamic  # tagged as this photo's build's
    assert fake_maya.undo_depth == 0 and fake_maya.undo_opened == fake_maya.undo_closed == 1


def test_regenerate_and_delete_leave_nothing(fake_maya, scene):
    from img2maya import builder

    builder.build(scene, look="projection")
    root = builder.build(scene, look="projection")  # regenerate: the previous network goes
    assert len(_of_type(fake_maya, "projection")) == len(_of_type(fake_maya, "file")) == 1
    builder.build(scene, look="color")  # regenerate with the other look: no texture node left
    for kind in ("projection", "file", "place2dTexture", "blendColors"):
        assert _of_type(fake_maya, kind) == [], kind
    root = builder.build(scene, look="projection")
    builder.delete_build(root)
    for kind in ("projection", "file", "place2dTexture", "blendColors"):
        assert _of_type(fake_maya, kind) == [], kind
    assert _of_type(fake_maya, "lambert") == ["lambert1"]


def test_a_lambert_the_user_reused_keeps_its_network(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    root = builder.build(scene, look="projection")
    mine = cmds.polyCube(name="my_box", constructionHistory=False)[0]
    sg = fake_maya.shading["car_1_geoShape"].name
    cmds.sets(mine, forceElement=sg)
    builder.delete_build(root)
    shader = _source(fake_maya, sg + ".surfaceShader").split(".")[0]
    blend = _source(fake_maya, shader + ".color").split(".")[0]
    assert _source(fake_maya, blend + ".color1").startswith("img2maya_example_projection")
    assert len(_of_type(fake_maya, "blendColors")) == 1  # the others went with their Lamberts


def test_the_look_comes_from_the_scene_and_needs_the_photo(fake_maya, scene, tmp_path):
    from img2maya import builder

    builder.build(dict(scene, look={"mode": "projection"}))
    assert len(_of_type(fake_maya, "projection")) == 1
    builder.build(dict(scene, look={"mode": "projection"}), look="color")  # the argument wins
    assert _of_type(fake_maya, "projection") == []
    gone = dict(scene, source=dict(scene["source"], image=str(tmp_path / "moved.jpg")))
    with pytest.raises(builder.BuildError, match="needs the photo"):
        builder.build(gone, look="projection")
    with pytest.raises(builder.BuildError, match="unknown look"):
        builder.build(scene, look="painted")
    assert fake_maya.undo_depth == 0


def test_error_mid_network_removes_the_partial_build(fake_maya, scene):
    from img2maya import builder

    fake_maya.fail_on["connectAttr"] = RuntimeError("boom")
    fake_maya.fail_after["connectAttr"] = 4
    with pytest.raises(RuntimeError, match="boom"):
        builder.build(scene, look="projection")
    for kind in ("projection", "file", "place2dTexture", "blendColors", "mesh"):
        assert _of_type(fake_maya, kind) == [], kind
    assert fake_maya.undo_depth == 0


def test_command_look_flag(fake_maya, scene, tmp_path):
    from maya import cmds
    from test_maya_plugin import PLUGIN, _run

    path = tmp_path / "scene.json"
    path.write_text(json.dumps(scene))
    cmds.loadPlugin(str(PLUGIN))
    try:
        _run(["-scene", str(path), "-look", "projection"])
        assert len(_of_type(fake_maya, "projection")) == 1
        _run(["-scene", str(path), "-lk", "color"])  # regenerate with the other look
        assert _of_type(fake_maya, "projection") == []
        with pytest.raises(ValueError, match="-look must be color or projection"):
            _run(["-scene", str(path), "-look", "paint"])
    finally:
        cmds.unloadPlugin("img2maya_plugin")


def test_panel_look_combo_rebuilds_without_a_request(qtbot, tmp_path):
    import test_panel as tp

    class Builds(tp.Builds):
        def __call__(self, scene, photo, look=None):
            self.calls.append((dict(scene), photo, look))
            return f"img2maya_root{len(self.calls)}"

    builds = Builds()
    settings = tp.Settings(tp.JsonStore(str(tmp_path / "settings.json")))
    p = tp.panel_mod.Img2MayaPanel(settings=settings, build_function=builds, autostart=False)
    qtbot.addWidget(p)
    assert [p.look_combo.itemData(i) for i in range(p.look_combo.count())] == ["color", "projection"]
    p.last_result = {"scene": {"schema": "img2maya/scene@1", "objects": []}}
    p.photo = "/p/photo.jpg"
    p.look_combo.setCurrentIndex(1)
    p._look_changed()
    assert builds.calls == [({"schema": "img2maya/scene@1", "objects": []}, "/p/photo.jpg", "projection")]
    assert p.sent == [] and "no network ran" in p.message  # nothing went to the server
    p.look_combo.setCurrentIndex(0)
    p._look_changed()
    assert builds.calls[-1][2] is None and len(builds.calls) == 2  # the plain two-argument call
