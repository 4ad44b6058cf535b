"""Preview ray caster: silhouettes against camera.project, depths of every shape, colours, PNG."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import Delaunay
from test_builders_usd import all_shapes_scene, example_scene

from inference_server.analysis.camera import euler_xyz_to_matrix, project
from inference_server.builders.preview import (
    BACKGROUND,
    object_id_buffer,
    preview_intrinsics,
    raycast,
    render_preview,
    save_preview_png,
)
from inference_server.builders.primitives import box_corners
from inference_server.scene import iter_objects, validate


def _scene(objects: list[dict[str, Any]], *, translate: list[float], rotate: list[float],
           width: int = 400, height: int = 300, focal: float = 350.0,
           principal: tuple[float, float] | None = None) -> dict[str, Any]:
    scene = copy.deepcopy(example_scene())
    cam = scene["camera"]
    cam.update(translate=translate, rotate=rotate, width=width, height=height, focal_px=focal,
               principal_px=list(principal or (width / 2, height / 2)))
    scene["objects"] = objects
    validate(scene)
    return scene


def _box(name: str, shape: str, translate: list[float], rotate: list[float], size: list[float],
         role: str = "object") -> dict[str, Any]:
    return {"name": name, "label": name, "role": role, "shape": shape, "translate": translate, "rotate": rotate,
            "size": size, "color_srgb": [0.8, 0.4, 0.2], "color_linear": [0.6, 0.13, 0.03], "pixels": 1,
            "bbox_px": [0, 0, 1, 1], "children": []}


@pytest.mark.parametrize("out_width", [400, 200])
def test_box_silhouette_matches_projected_corners(out_width: int) -> None:
    box = _box("box_1", "cube", [0.4, 1.0, -5.0], [10.0, 30.0, -5.0], [1.2, 0.8, 1.0])
    scene = _scene([box], translate=[0.3, 1.2, 0.5], rotate=[-8.0, 5.0, 2.0], principal=(180.0, 160.0))
    cam = scene["camera"]
    intr = preview_intrinsics(scene, out_width)
    assert (intr.width, intr.height) == (out_width, out_width * 3 // 4)
    rot = euler_xyz_to_matrix(*cam["rotate"])
    corners_cam = (box_corners(box["translate"], box["rotate"], box["size"]) - cam["translate"]) @ rot
    hull = Delaunay(project(corners_cam, intr))  # a box's silhouette is the hull of its corners
    vv, uu = np.mgrid[0:intr.height, 0:intr.width]
    expected = hull.find_simplex(np.stack([uu.ravel() + 0.5, vv.ravel() + 0.5], axis=1)) >= 0
    got = object_id_buffer(scene, out_width).ravel() == 0
    assert expected.sum() > 1000 * (out_width / 400) ** 2
    assert np.count_nonzero(got != expected) <= 2  # only pixel centres lying on an edge may differ


FACING = (0.0, 0.0, 1.0)
CONE_SIDE = tuple(np.array([0.0, 0.25, 1.0]) / np.linalg.norm([0.0, 0.25, 1.0]))  # slope 1:4 (radius 0.5, height 2)


@pytest.mark.parametrize(("shape", "size", "rotate", "depth", "normal"), [
    ("cube", [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], 4.5, FACING),
    ("sphere", [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], 4.5, FACING),
    ("cylinder", [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], 4.5, FACING),
    ("cone", [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], 4.75, CONE_SIDE),  # radius 0.25 half-way up
    ("capsule", [1.0, 3.0, 1.0], [0.0, 0.0, 0.0], 4.5, FACING),
    ("plane", [1.0, 0.0, 1.0], [90.0, 0.0, 0.0], 5.0, FACING),  # turned to face the camera
    ("cylinder", [1.0, 2.0, 1.0], [90.0, 0.0, 0.0], 4.0, FACING),  # cap towards the camera
    ("cone", [1.0, 2.0, 1.0], [90.0, 0.0, 0.0], 4.0, None),  # apex towards the camera (no normal there)
    ("cone", [1.0, 2.0, 1.0], [-90.0, 0.0, 0.0], 4.0, FACING),  # base towards the camera
    ("capsule", [1.0, 3.0, 1.0], [90.0, 0.0, 0.0], 3.5, FACING),  # round end towards the camera
])
def test_depth_on_the_optical_axis(shape: str, size: list[float], rotate: list[float], depth: float,
                                   normal: tuple[float, float, float] | None) -> None:
    scene = _scene([_box("thing", shape, [0.0, 0.0, -5.0], rotate, size)], translate=[0.0, 0.0, 0.0],
                   rotate=[0.0, 0.0, 0.0], width=101, height=101, focal=100.0)
    hits = raycast(scene, 101)
    assert hits.object_id[50, 50] == 0
    assert hits.depth[50, 50] == pytest.approx(depth, abs=1e-9)
    if normal is not None:
        np.testing.assert_allclose(hits.normal[50, 50], normal, atol=1e-9)
    assert hits.object_id[0, 0] == -1


def test_nearer_object_wins_and_camera_inside_a_room() -> None:
    room = _box("room", "cube", [0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [10.0, 3.0, 10.0], role="wall")
    table = _box("table", "cube", [0.0, 0.5, -2.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    scene = _scene([room, table], translate=[0.0, 1.0, 0.0], rotate=[-10.0, 0.0, 0.0])
    hits = raycast(scene, 200)
    centre = hits.object_id[75, 100]
    assert centre == 1  # the table in front of the far wall
    assert (hits.object_id >= 0).all()  # the room's inside is seen everywhere else
    assert hits.depth[0, 0] < 5.5 / np.cos(np.radians(20))


def test_render_colours() -> None:
    sky = _box("sky", "plane", [0.0, 0.0, -50.0], [90.0, 0.0, 0.0], [20.0, 0.0, 20.0], role="sky")
    sky["color_srgb"] = [0.2, 0.4, 0.6]
    scene = _scene([sky], translate=[0.0, 0.0, 0.0], rotate=[0.0, 0.0, 0.0], width=160, height=120, focal=40.0)
    img = render_preview(scene, 160)
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    assert tuple(img[60, 80]) == (51, 102, 153)  # sky: flat colour
    assert tuple(img[0, 0]) == tuple(np.rint(BACKGROUND * 255).astype(int))  # the sky plane ends: background
    box = _box("box", "cube", [0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    img = render_preview(_scene([box], translate=[0.0, 0.0, 0.0], rotate=[0.0, 0.0, 0.0]), 100)
    front = img[37, 50] / 255.0  # front face, normal +Z: ambient + diffuse * light.z
    assert front == pytest.approx(np.array(box["color_srgb"]) * (0.35 + 0.65 * 0.6 / np.linalg.norm([0.4, 1, 0.6])),
                                  abs=1 / 255)


def test_example_scene_and_png(tmp_path: Path) -> None:
    scene = all_shapes_scene()
    ids = object_id_buffer(scene, 400)
    names = [o["name"] for o in iter_objects(scene["objects"])]
    seen = {names[i] for i in np.unique(ids) if i >= 0}
    assert {"road_1", "sky_1", "building_1", "car_1", "person_1", "tree_1", "cone_1", "capsule_1"} <= seen
    photo = tmp_path / "photo.png"
    Image.new("RGB", (1600, 1200), (255, 0, 0)).save(photo)
    out = tmp_path / "preview.png"
    save_preview_png(scene, out, photo_path=str(photo), width=400)
    with Image.open(out) as im:
        assert im.size == (800, 300)
        assert im.getpixel((10, 10)) == (255, 0, 0)
        assert np.array_equal(np.asarray(im)[:, 400:], render_preview(scene, 400))


def test_batched_rays_give_the_same_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference_server.builders import preview

    scene = all_shapes_scene()
    whole = raycast(scene, 160)
    monkeypatch.setattr(preview, "_CHUNK", 777)
    batched = raycast(scene, 160)
    assert np.array_equal(whole.object_id, batched.object_id)
    assert np.array_equal(whole.depth, batched.depth)


def test_importing_builders_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = ("import sys, inference_server.builders, inference_server.builders.preview; "
            "print(sorted(m for m in ('pxr', 'trimesh', 'torch', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
