"""glTF / GLB export read back with trimesh and from the raw glTF JSON."""

from __future__ import annotations

import base64
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_builders_usd import all_shapes_scene

from inference_server.builders import export
from inference_server.builders.primitives import box_corners, primitives_of, rigid_matrix
from inference_server.scene import iter_objects


def _glb_json(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    magic, version, _length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2
    chunk_len, chunk_type = struct.unpack_from("<I4s", data, 12)
    assert chunk_type == b"JSON"
    return json.loads(data[20:20 + chunk_len])


@pytest.fixture(scope="module")
def glb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gltf") / "scene.glb"
    export(all_shapes_scene(), path)
    return path


def test_nodes_transforms_and_sizes(glb: Path) -> None:
    """Each object's mesh, placed by its node's world transform, fills the scene's box."""
    import trimesh

    loaded = trimesh.load(str(glb))
    scene = all_shapes_scene()
    for obj in iter_objects(scene["objects"]):
        for spec in [obj, *obj.get("parts", [])]:
            name = spec["name"]
            matrix, geom = loaded.graph.get(name)
            np.testing.assert_allclose(matrix, rigid_matrix(spec["translate"], spec["rotate"]), atol=1e-9)
            lo, hi = loaded.geometry[geom].bounds
            local = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            world = local @ matrix[:3, :3].T + matrix[:3, 3]
            expected = box_corners(spec["translate"], spec["rotate"], spec["size"])
            # tessellated spheres fall short of their box by up to 0.6 % of the radius
            tol = 0.01 * max(spec["size"]) if spec["shape"] == "sphere" else 1e-6
            np.testing.assert_allclose(world, expected, atol=tol)


def test_hierarchy_extras_and_colours(glb: Path) -> None:
    tree = _glb_json(glb)
    nodes = tree["nodes"]
    by_name = {n["name"]: n for n in nodes}
    children = {n["name"]: sorted(nodes[i]["name"] for i in n.get("children", [])) for n in nodes}
    assert children["capsule_1"] == ["lamp_1"]
    assert children["lamp_1"] == ["lamp 1 bulb!"]
    assert children["tree_1"] == ["tree_1_trunk"]
    assert children["building_1"] == ["building_1_1"]
    root = nodes[tree["scenes"][0]["nodes"][0]]
    assert root["name"] == "img2maya" and "img2maya_cam" in children["img2maya"]
    extras = by_name["road_1"]["extras"]["img2maya"]
    assert extras["label"] == "road" and extras["role"] == "ground" and extras["bbox_px"] == [0, 700, 1600, 1200]
    assert by_name["lamp 1 bulb!"]["extras"]["img2maya"]["part_of"] == "lamp_1"

    scene = all_shapes_scene()
    for obj in iter_objects(scene["objects"]):
        mesh = tree["meshes"][by_name[obj["name"]]["mesh"]]
        material = tree["materials"][mesh["primitives"][0]["material"]]
        assert material["pbrMetallicRoughness"]["baseColorFactor"] == [*obj["color_linear"], 1.0]
    colours = {tuple(linear) for o in iter_objects(scene["objects"]) for *_, linear in primitives_of(o)}
    assert len(colours) == 9 and len(tree["materials"]) == len(colours)  # shared by colour


def test_camera(glb: Path) -> None:
    import trimesh

    cam = all_shapes_scene()["camera"]
    tree = _glb_json(glb)
    (camera,) = tree["cameras"]
    persp = camera["perspective"]
    hfov = 2 * math.atan(math.tan(persp["yfov"] / 2) * persp["aspectRatio"])
    assert math.degrees(hfov) == pytest.approx(cam["fov_horizontal_deg"], abs=1e-3)
    assert persp["aspectRatio"] == pytest.approx(4 / 3)
    assert (persp["znear"], persp["zfar"]) == (0.1, 1000.0)
    loaded = trimesh.load(str(glb))
    np.testing.assert_allclose(loaded.camera_transform, rigid_matrix(cam["translate"], cam["rotate"]), atol=1e-9)


def test_gltf_text_has_embedded_buffer(tmp_path: Path) -> None:
    path = tmp_path / "scene.gltf"
    export(all_shapes_scene(), path)
    tree = json.loads(path.read_text())
    assert tree["buffers"][0]["uri"].startswith("data:application/octet-stream;base64,")
    payload = base64.b64decode(tree["buffers"][0]["uri"].split(",", 1)[1])
    assert len(payload) == tree["buffers"][0]["byteLength"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.gltf"]


def test_colours_that_round_alike_keep_their_own_material(tmp_path: Path) -> None:
    scene = all_shapes_scene()
    a, b = scene["objects"][2], scene["objects"][3]
    a["color_linear"], b["color_linear"] = [0.5, 0.25, 0.125], [0.5001, 0.25, 0.125]
    path = tmp_path / "scene.glb"
    export(scene, path)
    tree = _glb_json(path)
    by_name = {n["name"]: n for n in tree["nodes"]}
    factors = {}
    for obj in (a, b):
        material = tree["materials"][tree["meshes"][by_name[obj["name"]]["mesh"]]["primitives"][0]["material"]]
        factors[material["name"]] = material["pbrMetallicRoughness"]["baseColorFactor"]
    assert factors == {"mat_804020": [0.5, 0.25, 0.125, 1.0], "mat_804020_2": [0.5001, 0.25, 0.125, 1.0]}
