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


def _sg_of(state, shape):
    """The shading group whose members hold `shape` (exactly one)."""
    (sg,) = [n.name for n in state.nodes.values() if n.type == "shadingEngine" and shape in n.members]
    return sg


def _shader_of(sg):
    from maya import cmds

    (shader,) = cmds.listConnections(sg + ".surfaceShader", source=True, destination=False)
    return shader


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
    car_sg = _sg_of(fake_maya, "car_1_geoShape")
    assert sgs[car_sg].members.keys() == {"car_1_geoShape", "person_1_geoShape"}
    assert not fake_maya.nodes["initialShadingGroup"].members  # every primitive was reassigned
    colours = {tuple(o["color_linear"]) for o in _walk(scene["objects"])}
    colours |= {tuple(p["color_linear"]) for o in _walk(scene["objects"]) for p in o.get("parts", [])}
    lamberts = sorted(n.name for n in fake_maya.nodes.values() if n.type == "lambert" and n.name != "lambert1")
    assert len(lamberts) == len(sgs) - 1 == len(colours) == 7  # one network per distinct colour
    assert lamberts == sorted(["img2maya_example_mtl"] + [f"img2maya_example_mtl{i}" for i in range(1, 7)])
    assert sorted(sgs) == sorted(["initialShadingGroup", "img2maya_example_SG"]
                                 + [f"img2maya_example_SG{i}" for i in range(1, 7)])
    assert all(sg.set_flags.get("renderable") for sg in sgs.values())
    in_partition = {a.split(".")[0] for a, b in fake_maya.connections
                    if a.endswith(".partition") and b.startswith("renderPartition.sets[")}
    assert in_partition == set(sgs)  # `sets -renderable` joins renderPartition, as Maya documents
    assert not fake_maya.calls["duplicate"] and not fake_maya.calls["partition"]  # the plain network only
    for o in _walk(scene["objects"]):
        shader = _shader_of(_sg_of(fake_maya, o["name"] + "_geoShape"))
        assert cmds.nodeType(shader) == "lambert"
        assert _get(shader + ".color") == [pytest.approx(tuple(o["color_linear"]))]
        assert (shader + ".outColor", _sg_of(fake_maya, o["name"] + "_geoShape") + ".surfaceShader") \
            in fake_maya.connections
    owner = builder.owner_attr("image:example.jpg")
    assert all(cmds.getAttr(name + "." + owner) for name in lamberts)
    trunk = scene["objects"][5]["parts"][0]
    trunk_shader = _shader_of(_sg_of(fake_maya, "tree_1_trunk_geoShape"))
    assert _get(trunk_shader + ".color") == [pytest.approx(tuple(trunk["color_linear"]))]
    assert sorted(json.loads(_get("img2maya_example.img2maya_shaders"))) == lamberts


def test_extra_attributes(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    builder.build(scene)
    assert cmds.getAttr("car_1_geo.img2maya_label", asString=True) == builder.get_label("car_1_geo") == "car"
    assert _get("car_1_geo.img2maya_label") == 0  # an enum whose one field is the label
    info = json.loads(_get("car_1_geo.img2maya_info"))
    car = scene["objects"][3]
    assert info["label"] == "car" and info["pixels"] == car["pixels"] == 30000
    assert info["role"] == "vehicle" and info["confidence"] == car["confidence"]
    assert info["depth_m"] == car["depth_m"] and info["depth_m"]["median"] == 6.0 and info["name"] == "car_1"
    assert info["bbox_px"] == car["bbox_px"] and info["label_id"] == car["label_id"]
    assert builder.get_label("building_1_1_geo") == scene["objects"][2]["children"][0]["label"]
    labels = {o["name"]: o["label"] for o in _walk(scene["objects"])}
    assert {name: builder.get_label(name + "_geo") for name in labels} == labels
    assert not cmds.attributeQuery("img2maya_label", node="tree_1_trunk_geo", exists=True)  # a part
    assert not cmds.attributeQuery("img2maya_info", node="tree_1_trunk_geo", exists=True)
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
    car_sg = _sg_of(fake_maya, "car_1_geoShape")
    car_mtl = _shader_of(car_sg)
    cmds.sets(user, forceElement=car_sg)
    other = copy.deepcopy(scene)
    other["source"]["image"] = "street.png"
    other_root = builder.build(other)
    street_nodes = {d.name for d in fake_maya.descendants(fake_maya.nodes[other_root])}
    second = builder.build(scene)
    assert first == second == "img2maya_example"
    assert other_root == "img2maya_street"
    roots = sorted(cmds.ls(assemblies=True))
    assert roots == sorted(["persp", "top", "front", "side", "my_box", "img2maya_street", "img2maya_example"])
    assert cmds.objExists(user_mtl) and cmds.objExists(car_sg) and cmds.objExists(car_mtl)
    assert cmds.sets(car_sg, query=True) == ["my_boxShape"]
    assert _shader_of(car_sg) == car_mtl
    lamberts = [n for n in fake_maya.nodes.values() if n.type == "lambert"]
    assert len(lamberts) == 1 + 1 + 8 + 1 + 8  # lambert1, my_mtl, street, kept car_1 shader, new build
    assert len([n for n in fake_maya.nodes.values() if n.type == "shadingEngine"]) == 1 + 8 + 1 + 8
    # the street build is untouched, the new build has fresh nodes
    assert {d.name for d in fake_maya.descendants(fake_maya.nodes[other_root])} == street_nodes
    assert builder.get_label("car_1_geo") == "car"
    assert fake_maya.nodes["car_1_geo"].parent.name == "img2maya_example"
    assert _sg_of(fake_maya, "car_1_geoShape") != car_sg  # the new build has its own shaders


def test_regenerate_of_many_shaders_is_batched(fake_maya, scene):
    """Deleting a build with 200 shaders: a fixed number of calls, and nothing left over."""
    from img2maya import builder
    from maya import cmds

    objs = []
    for i in range(200):
        o = copy.deepcopy(scene["objects"][3])
        o.update(name=f"car_{i}", color_linear=[0.001 * i, 0.2, 0.3])
        objs.append(o)
    big = dict(scene, objects=objs)
    root = builder.build(big)
    fake_maya.calls.clear()
    builder.delete_build(root)
    assert fake_maya.total_calls() == 9, dict(fake_maya.calls)  # whatever the number of shaders
    assert fake_maya.calls["listConnections"] == 2 and fake_maya.calls["delete"] == 2
    assert not [n for n in fake_maya.nodes.values() if n.type == "lambert" and n.name != "lambert1"]
    assert [n.name for n in fake_maya.nodes.values() if n.type == "shadingEngine"] == ["initialShadingGroup"]
    assert sorted(cmds.ls(assemblies=True)) == ["front", "persp", "side", "top"]


def test_regenerate_keeps_a_user_node_that_took_a_shader_name(fake_maya, scene):
    from img2maya import builder
    from maya import cmds

    builder.build(scene)
    car_mtl = _shader_of(_sg_of(fake_maya, "car_1_geoShape"))
    cmds.delete(car_mtl)  # the user deletes a build shader and makes their own of that name
    mine = cmds.shadingNode("lambert", asShader=True, name=car_mtl)
    assert mine == car_mtl
    builder.build(scene)
    assert cmds.objExists(mine) and not cmds.attributeQuery(builder.owner_attr("image:example.jpg"),
                                                            node=mine, exists=True)
    lamberts = [n for n in fake_maya.nodes.values() if n.type == "lambert" and n.name != "lambert1"]
    assert len(lamberts) == 1 + 8  # the user's + the new build's


def test_replace_false_keeps_both(fake_maya, scene):
    from img2maya import builder

    a = builder.build(scene)
    b = builder.build(scene, replace=False)
    assert (a, b) == ("img2maya_example", "img2maya_example1")


@pytest.mark.parametrize("colours", [4, 200])
def test_plain_shading_network_per_colour(fake_maya, scene, colours):
    """Many objects sharing few colours, or all distinct: each object ends up in the shading group of
    its own colour, made the documented way (one shadingNode, sets, connectAttr, colour and one batched
    sets -forceElement per colour). The calls per object are a figure (bench_build.py), not a target."""
    from img2maya import builder
    from maya import cmds

    n = 200
    objs = []
    for i in range(n):
        o = copy.deepcopy(scene["objects"][3])
        o["name"] = f"car_{i}"
        o["label"] = ("car", "truck", "bus")[i % 3]
        o["pixels"] = 1000 + i
        o["color_linear"] = [0.001 * (i % colours), 0.2, 0.3]
        objs.append(o)
    big = dict(scene, objects=objs)
    root = builder.build(big)
    calls = fake_maya.calls
    assert calls["shadingNode"] == calls["connectAttr"] == colours  # one network per colour
    assert calls["sets"] == 2 * colours  # the shading group, then one forceElement for all its members
    assert not calls["duplicate"] and not calls["partition"]
    lamberts = [x.name for x in fake_maya.nodes.values() if x.type == "lambert" and x.name != "lambert1"]
    assert len(lamberts) == colours
    assert sorted(json.loads(_get(root + ".img2maya_shaders"))) == sorted(lamberts)
    groups = [x for x in fake_maya.nodes.values() if x.type == "shadingEngine" and x.name != "initialShadingGroup"]
    assert len(groups) == colours and all(sg.set_flags.get("renderable") for sg in groups)
    in_partition = {a.split(".")[0] for a, b in fake_maya.connections
                    if a.endswith(".partition") and b.startswith("renderPartition.sets[")}
    assert in_partition >= {sg.name for sg in groups}
    for i in range(n):
        sg = _sg_of(fake_maya, f"car_{i}_geoShape")
        shader = _shader_of(sg)
        assert _get(shader + ".color") == [pytest.approx((0.001 * (i % colours), 0.2, 0.3))]
        assert (shader + ".outColor", sg + ".surfaceShader") in fake_maya.connections
        if i in (0, 1, n // 2, n - 1):
            assert builder.get_label(f"car_{i}_geo") == ("car", "truck", "bus")[i % 3]
            assert json.loads(_get(f"car_{i}_geo.img2maya_info"))["pixels"] == 1000 + i
    assert len(cmds.sets(_sg_of(fake_maya, "car_0_geoShape"), query=True)) == n // colours
    assert not fake_maya.nodes["initialShadingGroup"].members


def test_error_while_making_shaders_cleans_up_everything(fake_maya, scene):
    from img2maya import builder

    before = set(fake_maya.nodes)
    connections = list(fake_maya.connections)
    # (command, calls that succeed first), 8 colours, 7 labels: the first and the fourth Lambert, the
    # third shading group, the second connection, the second assignment, the ownership tag (after 7
    # label enums and the info attribute, when every network exists)
    cases = [("shadingNode", 0), ("shadingNode", 3), ("sets", 4), ("connectAttr", 1), ("sets", 3),
             ("addAttr", 8)]
    for command, after in cases:
        fake_maya.calls.clear()
        fake_maya.fail_on = {command: RuntimeError("boom " + command)}
        fake_maya.fail_after = {command: after}
        with pytest.raises(RuntimeError, match="boom " + command):
            builder.build(scene, replace=False)
        assert fake_maya.calls[command] == after + 1, command  # it did fail there
        assert set(fake_maya.nodes) == before, command
        assert fake_maya.connections == connections, command
    assert (fake_maya.undo_opened, fake_maya.undo_closed, fake_maya.undo_depth) == (len(cases), len(cases), 0)


def test_label_with_enum_separators(fake_maya, scene):
    from img2maya import builder

    scene["objects"][3]["label"] = "car:red=1"
    scene["objects"][4]["label"] = ""
    builder.build(scene)
    assert builder.get_label("car_1_geo") == "car_red_1"
    assert builder.get_label("person_1_geo") == "unlabelled"
    assert json.loads(_get("car_1_geo.img2maya_info"))["label"] == "car:red=1"  # the JSON keeps it as is


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
