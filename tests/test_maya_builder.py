"""The Maya builder on the fake maya.cmds (tests/fakemaya): names, transforms, camera, shaders,
attributes, undo, regenerate, call counts."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from fakemaya import fixture as _fakemaya

fake_maya = _fakemaya.fake_maya  # the pytest fixture

DATA = Path(__file__).resolve().parent / "data" / "example_scene.json"


@pytest.fixture
def scene() -> dict:
    return json.loads(DATA.read_text())


def _walk(objects):
    for o in objects:
        yield o
        yield from _walk(o.get("children", []))


def _get(plug):
    from maya import cmds

    return cmds.getAttr(plug)


def test_example_scene_nodes_and_hierarchy(fake_maya, scene):
    from img2maya import builder

    root = builder.build(scene)
    assert root == "img2maya_example"
    meshes = [n for n in fake_maya.nodes.values() if n.type == "mesh"]
    n_objects = sum(1 for _ in _walk(scene["objects"]))
    n_parts = sum(len(o.get("parts", [])) for o in _walk(scene["objects"]))
    assert len(meshes) == n_objects + n_parts == 8
    top = [c.name for c in fake_maya.nodes[root].children]
    assert top == ["img2maya_example_cam", "road_1_geo", "sky_1_geo", "building_1_grp", "car_1_geo",
                   "person_1_geo", "tree_1_grp"]
    assert [c.name for c in fake_maya.nodes["building_1_grp"].children] == ["building_1_geo", "building_1_1_geo"]
    assert [c.name for c in fake_maya.nodes["tree_1_grp"].children] == ["tree_1_geo", "tree_1_trunk_geo"]
    for grp in ("building_1_grp", "tree_1_grp"):  # groups are identity: children keep world transforms
        assert _get(grp + ".translate") == [(0.0, 0.0, 0.0)]
        assert _get(grp + ".scale") == [(1.0, 1.0, 1.0)]
    kinds = {n.parent.name: n.data["primitive"] for n in meshes}
    assert kinds == {"road_1_geo": "plane", "sky_1_geo": "plane", "building_1_geo": "cube",
                     "building_1_1_geo": "cube", "car_1_geo": "cube", "person_1_geo": "cylinder",
                     "tree_1_geo": "sphere", "tree_1_trunk_geo": "cylinder"}
    # primitives are one metre big in the current unit (cm): scale == size in metres
    car_shape = fake_maya.nodes["car_1_geoShape"]
    assert car_shape.data["width"] == car_shape.data["height"] == car_shape.data["depth"] == 100.0


def test_transforms_in_current_unit(fake_maya, scene):
    from img2maya import builder

    builder.build(scene)
    car = next(o for o in scene["objects"] if o["name"] == "car_1")
    (t,) = _get("car_1_geo.translate")
    assert t == pytest.approx([v * 100.0 for v in car["translate"]])  # metres -> cm
    assert _get("car_1_geo.rotate") == [pytest.approx(tuple(car["rotate"]))]
    assert _get("car_1_geo.scale") == [pytest.approx(tuple(car["size"]))]
    assert _get("sky_1_geo.rotate") == [pytest.approx((90.0, 0.0, 0.0))]
    assert _get("road_1_geo.scale") == [pytest.approx((30.0, 1.0, 40.0))]  # plane: no thickness scale
    child = scene["objects"][2]["children"][0]
    assert _get("building_1_1_geo.translate") == [pytest.approx(tuple(v * 100 for v in child["translate"]))]


def test_other_linear_unit(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    cmds.currentUnit(linear="m")
    builder.build(scene)
    assert _get("car_1_geo.translate") == [pytest.approx((2.5, 0.75, -12.0))]
    assert fake_maya.nodes["car_1_geoShape"].data["width"] == 1.0
    assert builder.build(scene, unit="mm", root_name="mm_build", replace=False) == "mm_build"
    assert _get("car_1_geo1.translate") == [pytest.approx((2500.0, 750.0, -12000.0))]


def test_camera_matches_the_photo(fake_maya, scene, tmp_path):
    from img2maya import builder

    photo = tmp_path / "example.jpg"
    photo.write_bytes(b"jpg")
    builder.build(scene, image_path=str(photo))
    cam = scene["camera"]
    shape = fake_maya.nodes["img2maya_example_camShape"]
    assert shape.attrs["focalLength"] == pytest.approx(cam["focal_length_mm"])
    assert shape.attrs["horizontalFilmAperture"] == pytest.approx(36.0 / 25.4)
    assert shape.attrs["verticalFilmAperture"] == pytest.approx(27.0 / 25.4)
    assert shape.attrs["filmFit"] == 1  # horizontal
    assert shape.attrs["nearClipPlane"] == pytest.approx(10.0)  # 0.1 m in cm
    assert shape.attrs["farClipPlane"] == pytest.approx(100000.0)
    hfov = 2 * math.degrees(math.atan(shape.attrs["horizontalFilmAperture"] * 25.4 / 2 / shape.attrs["focalLength"]))
    assert hfov == pytest.approx(cam["fov_horizontal_deg"], abs=1e-3)
    assert _get("img2maya_example_cam.translate") == [pytest.approx((0.0, 160.0, 0.0))]
    assert _get("img2maya_example_cam.rotate") == [pytest.approx((-5.0, 0.0, 1.0))]
    planes = [n for n in fake_maya.nodes.values() if n.type == "imagePlane"]
    assert len(planes) == 1
    assert planes[0].attrs["imageName"] == str(photo)
    assert planes[0].parent.parent.name == "img2maya_example_cam"
    assert (planes[0].attrs["sizeX"], planes[0].attrs["sizeY"]) == pytest.approx((36 / 25.4, 27 / 25.4))
    assert (planes[0].name + ".message", "img2maya_example_camShape.imagePlane[0]") in fake_maya.connections


def test_no_image_plane_without_a_photo_on_disk(fake_maya, scene):
    from img2maya import builder

    builder.build(scene)  # source.image "example.jpg" does not exist here
    assert not [n for n in fake_maya.nodes.values() if n.type == "imagePlane"]


def test_shaders_colours_and_sharing(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    scene["objects"][4]["color_linear"] = list(scene["objects"][3]["color_linear"])  # person = car colour
    builder.build(scene)
    sgs = {n.name: n for n in fake_maya.nodes.values() if n.type == "shadingEngine"}
    assert sgs["car_1_SG"].members.keys() == {"car_1_geoShape", "person_1_geoShape"}
    assert "person_1_SG" not in sgs
    assert not fake_maya.nodes["initialShadingGroup"].members  # every primitive was reassigned
    for o in _walk(scene["objects"]):
        geo_shape = o["name"] + "_geoShape"
        (sg,) = [s for s in sgs.values() if geo_shape in s.members]
        (shader,) = cmds.listConnections(sg.name + ".surfaceShader", source=True, destination=False)
        assert cmds.nodeType(shader) == "lambert"
        assert _get(shader + ".color") == [pytest.approx(tuple(o["color_linear"]))]
    owner = builder.owner_attr("image:example.jpg")
    assert all(cmds.getAttr(n.name + "." + owner) for n in fake_maya.nodes.values()
               if n.type == "lambert" and n.name != "lambert1")
    trunk = scene["objects"][5]["parts"][0]
    assert _get("tree_1_trunk_mtl.color") == [pytest.approx(tuple(trunk["color_linear"]))]


def test_extra_attributes(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    builder.build(scene)
    assert _get("car_1_geo.img2maya_label") == "car"
    assert _get("car_1_geo.img2maya_pixels") == scene["objects"][3]["pixels"]
    info = json.loads(_get("car_1_geo.img2maya_info"))
    assert info["role"] == "vehicle" and info["confidence"] == scene["objects"][3]["confidence"]
    assert info["depth_m"] == scene["objects"][3]["depth_m"] and info["name"] == "car_1"
    assert _get("building_1_1_geo.img2maya_label") == scene["objects"][2]["children"][0]["label"]
    assert not cmds.attributeQuery("img2maya_label", node="tree_1_trunk_geo", exists=True)  # a part
    assert _get("img2maya_example.img2maya_build") == "image:example.jpg"


def test_one_balanced_undo_chunk(fake_maya, scene):
    from img2maya import builder

    builder.build(scene)
    assert (fake_maya.undo_opened, fake_maya.undo_closed, fake_maya.undo_depth) == (1, 1, 0)


def test_error_mid_build_closes_the_chunk_and_cleans_up(fake_maya, scene):
    from img2maya import builder

    before = set(fake_maya.nodes)
    fake_maya.fail_on["connectAttr"] = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        builder.build(scene)
    assert (fake_maya.undo_opened, fake_maya.undo_closed, fake_maya.undo_depth) == (1, 1, 0)
    assert set(fake_maya.nodes) == before


def test_bad_scene_is_a_build_error(fake_maya, scene):
    from img2maya import builder

    with pytest.raises(builder.BuildError, match="scene@1"):
        builder.build({"objects": []})
    bad = copy.deepcopy(scene)
    bad["objects"][0]["shape"] = "torus"
    with pytest.raises(builder.BuildError, match="torus"):
        builder.build(bad)
    assert fake_maya.undo_depth == 0
    assert not [n for n in fake_maya.nodes.values() if n.type == "mesh"]


def test_regenerate_replaces_only_its_own_build(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    user = cmds.polyCube(name="my_box", constructionHistory=False)[0]
    user_mtl = cmds.shadingNode("lambert", asShader=True, name="my_mtl")
    first = builder.build(scene)
    # the user borrows one of the first build's shaders: it must survive the regenerate
    cmds.sets(user, forceElement="car_1_SG")
    other = copy.deepcopy(scene)
    other["source"]["image"] = "street.png"
    other_root = builder.build(other)
    street_nodes = {d.name for d in fake_maya.descendants(fake_maya.nodes[other_root])}
    second = builder.build(scene)
    assert first == second == "img2maya_example"
    assert other_root == "img2maya_street"
    roots = sorted(cmds.ls(assemblies=True))
    assert roots == sorted(["persp", "top", "front", "side", "my_box", "img2maya_street", "img2maya_example"])
    assert cmds.objExists(user_mtl) and cmds.objExists("car_1_SG") and cmds.objExists("car_1_mtl")
    assert cmds.sets("car_1_SG", query=True) == ["my_boxShape"]
    lamberts = [n for n in fake_maya.nodes.values() if n.type == "lambert"]
    assert len(lamberts) == 1 + 1 + 8 + 1 + 8  # lambert1, my_mtl, street, kept car_1_mtl, new build
    # the street build is untouched, the new build has fresh nodes
    assert {d.name for d in fake_maya.descendants(fake_maya.nodes[other_root])} == street_nodes
    assert _get("car_1_geo.img2maya_label") == "car"
    assert fake_maya.nodes["car_1_geo"].parent.name == "img2maya_example"


def test_replace_false_keeps_both(fake_maya, scene):
    from img2maya import builder

    a = builder.build(scene)
    b = builder.build(scene, replace=False)
    assert (a, b) == ("img2maya_example", "img2maya_example1")


def test_calls_per_object(fake_maya, scene):
    """<= 6 maya.cmds calls per primitive when colours are shared; all calls counted by the fake."""
    from img2maya import builder

    n = 200
    objs = []
    for i in range(n):
        o = copy.deepcopy(scene["objects"][3])
        o["name"] = f"car_{i}"
        o["color_linear"] = [0.1 * (i % 4), 0.2, 0.3]  # four distinct colours
        objs.append(o)
    big = dict(scene, objects=objs)
    builder.build(big)
    total = fake_maya.total_calls()
    per_object = total / n
    assert per_object <= 6.0, dict(fake_maya.calls)
    assert fake_maya.calls["polyCube"] == n and fake_maya.calls["xform"] == n + 1
    assert fake_maya.calls["shadingNode"] == 4 and fake_maya.calls["group"] == 1


def test_build_scene_api_from_file(fake_maya, scene, tmp_path):
    import img2maya

    (tmp_path / "example.jpg").write_bytes(b"x")
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(scene))
    root = img2maya.build_scene(str(path))
    assert root == "img2maya_example"
    planes = [n for n in fake_maya.nodes.values() if n.type == "imagePlane"]
    assert planes[0].attrs["imageName"] == str(tmp_path / "example.jpg")  # relative to the scene file
    with pytest.raises(ValueError, match="cannot read scene file"):
        img2maya.build_scene(str(tmp_path / "missing.json"))
