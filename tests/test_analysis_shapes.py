"""The roles/shapes table: ADE20K, COCO-Stuff and Cityscapes names, families, user tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference_server.analysis.camera import intrinsics_for
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.analysis.shapes import DEFAULT_TABLE_PATH, load_table
from inference_server.errors import UserError
from inference_server.scene import validate

T = load_table()


@pytest.mark.parametrize(("name", "role", "shape"), [
    # ADE20K-150 (full synonym strings as in objectInfo150)
    ("sky", "sky", "plane"), ("road, route", "ground", "plane"), ("floor, flooring", "ground", "plane"),
    ("windowpane, window", "object", "cube"), ("person, individual, someone, somebody, mortal, soul", "person", "cylinder"),
    ("tree", "vegetation", "sphere"), ("skyscraper", "building", "cube"),
    ("car, auto, automobile, machine, motorcar", "vehicle", "cube"),
    ("rug, carpet, carpeting", "ground", "plane"), ("wall", "wall", "cube"), ("ceiling", "ceiling", "cube"),
    ("toilet, can, commode, crapper, pot, potty, stool, throne", "furniture", "cube"),
    ("airplane, aeroplane, plane", "vehicle", "cube"), ("sea", "water", "plane"), ("mountain, mount", "other", "cone"),
    # COCO-Stuff
    ("sky-other", "sky", "plane"), ("grass", "ground", "plane"), ("building-other", "building", "cube"),
    ("wall-brick", "wall", "cube"), ("bush", "vegetation", "sphere"), ("floor-wood", "ground", "plane"),
    ("desk-stuff", "furniture", "cube"), ("water-other", "water", "plane"), ("clouds", "sky", "plane"),
    # Cityscapes
    ("vegetation", "vegetation", "sphere"), ("terrain", "ground", "plane"), ("traffic sign", "object", "cube"),
    ("rider", "person", "cylinder"), ("pole", "object", "cylinder"), ("sidewalk", "ground", "plane"),
    # unknown
    ("xylophone", "object", "cube"), ("Flux Capacitor", "object", "cube"),
])
def test_names_map_to_roles_and_shapes(name: str, role: str, shape: str) -> None:
    spec = T.lookup(name)
    assert (spec.role, spec.shape, spec.skip) == (role, shape, False)


def test_sky_is_never_a_cube_and_tree_has_a_trunk() -> None:
    for name in ("sky", "sky-other", "Sky", "clouds"):
        assert T.lookup(name).shape == "plane"
    assert T.lookup("tree").trunk and T.lookup("palm, palm tree").trunk
    assert not T.lookup("bush").trunk


def test_void_classes_are_skipped() -> None:
    for name in ("other", "unlabeled", "ego vehicle", "rectification border", "out of roi"):
        assert T.lookup(name).skip


def test_every_ade20k_name_maps(samples_dir: Path) -> None:
    lines = (samples_dir / "ade20k_objectInfo150.txt").read_text().splitlines()[1:]
    names = [ln.split("\t")[-1].strip() for ln in lines if ln.strip()]
    assert len(names) == 150
    matched = [n for n in names if T.lookup(n).matched is not None]
    assert len(matched) >= 125  # the rest fall back to a generic cube


def test_size_priors_in_the_shipped_table() -> None:
    assert T.lookup("car").size == (1.8, 1.5, 4.5)
    assert T.lookup("person").size[0] == 0.5 and T.lookup("person").size[2] == 0.4
    assert T.lookup("building").depth_from_width
    data = json.loads(DEFAULT_TABLE_PATH.read_text())
    assert all(len(c.get("size", [0, 0, 0])) == 3 for c in data["classes"])


def test_user_table_overrides_and_extends(tmp_path: Path) -> None:
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"classes": [{"name": "car", "role": "vehicle", "shape": "capsule", "size": [2, 1, 5]},
                                         {"name": "gazebo", "role": "building", "shape": "cone"}]}))
    t = load_table(str(p))
    assert t.lookup("car").shape == "capsule" and t.lookup("car").size == (2.0, 1.0, 5.0)
    assert t.lookup("gazebo").shape == "cone"
    assert t.lookup("road").role == "ground"  # shipped entries still there
    p.write_text(json.dumps({"classes": [{"name": "x", "shape": "teapot"}]}))
    with pytest.raises(UserError, match="teapot"):
        load_table(str(p))
    with pytest.raises(UserError):
        load_table(str(tmp_path / "missing.json"))


def test_scene_uses_the_table_shapes() -> None:
    names = ["sky", "road", "person", "tree", "gizmo"]
    labels = np.zeros((60, 80), np.int32)
    labels[30:] = 1
    labels[20:50, 10:16] = 2
    labels[10:45, 40:60] = 3
    labels[35:45, 65:75] = 4
    depth = np.where(labels == 0, np.inf, 8.0).astype(np.float32)
    scene = build_scene(np.full((60, 80, 3), 128, np.uint8), labels, names, depth, intrinsics_for(80, 60),
                        SceneOptions(), source={"image": "a", "width": 80, "height": 60, "sha256": "0" * 64})
    validate(scene)
    by = {o["label"]: o for o in scene["objects"]}
    assert by["sky"]["shape"] == "plane" and by["road"]["shape"] == "plane"
    assert by["road"]["translate"][1] == 0.0 and by["road"]["size"][1] == 0.0
    assert by["person"]["shape"] == "cylinder" and by["gizmo"]["shape"] == "cube"
    tree = by["tree"]
    assert tree["shape"] == "sphere" and tree["parts"][0]["shape"] == "cylinder"
    trunk = tree["parts"][0]
    assert trunk["translate"][1] - trunk["size"][1] / 2 <= tree["translate"][1] - tree["size"][1] / 2  # under the canopy
