"""Oriented boxes: known sizes and yaws recovered, boxes cover their segments, thickness priors."""

from __future__ import annotations

import numpy as np
import pytest
from test_analysis_synth import GTBox, render, street

from inference_server.analysis.boxes import Box, box_iou, rect_yaw
from inference_server.analysis.camera import Intrinsics, euler_xyz_to_matrix, project
from inference_server.analysis.engine import SceneOptions, build_scene

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}


def as_box(obj: dict) -> Box:
    return Box(center=tuple(obj["translate"]), yaw=obj["rotate"][1], size=tuple(obj["size"]))


def match(scene: dict, gt: GTBox) -> dict:
    objs = [o for o in scene["objects"] if o["role"] not in ("ground", "sky", "water")]
    return max(objs, key=lambda o: box_iou(as_box(o), gt.box))


def yaw_error(a: float, b: float) -> float:
    d = (a - b) % 90.0
    return min(d, 90.0 - d)


def test_box_iou_helper() -> None:
    a = Box((0, 1, 0), 0.0, (2, 2, 2))
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, Box((1, 1, 0), 0.0, (2, 2, 2))) == pytest.approx(1 / 3)
    assert box_iou(a, Box((0, 1, 0), 90.0, (2, 2, 2))) == pytest.approx(1.0)
    assert box_iou(a, Box((0, 1, 0), 45.0, (2, 2, 2))) == pytest.approx(8 * (np.sqrt(2) - 1) / (8 - 8 * (np.sqrt(2) - 1)))
    assert box_iou(a, Box((5, 1, 0), 0.0, (2, 2, 2))) == 0.0


def test_rect_yaw_of_an_l_shaped_footprint() -> None:
    """Two visible faces: the minimum-area rectangle is ambiguous, the edge fit is not."""
    t = np.linspace(0, 1, 200)
    for yaw in (-40.0, -20.0, 0.0, 12.0, 33.0):
        ps = np.radians(yaw)
        ax, az = np.array([np.cos(ps), -np.sin(ps)]), np.array([np.sin(ps), np.cos(ps)])
        pts = np.concatenate([np.outer(t * 4.0, ax), np.outer(t * 2.0, az)]) + [3.0, -10.0]
        assert yaw_error(rect_yaw(pts), yaw) < 0.1


def test_boxes_recover_known_sizes_and_yaws() -> None:
    s = street()
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    ious = []
    for gt in s.boxes:
        obj = match(scene, gt)
        ious.append(box_iou(as_box(obj), gt.box))
        assert yaw_error(obj["rotate"][1], gt.yaw) < 1.0
        assert obj["translate"][1] - obj["size"][1] / 2 == pytest.approx(0.0, abs=1e-6)  # stands on y = 0
    assert min(ious) > 0.7 and np.mean(ious) > 0.8
    car = match(scene, s.boxes[0])
    assert sorted(car["size"]) == pytest.approx(sorted(s.boxes[0].size), rel=0.05)
    assert car["thickness_source"] == "measured"


def _scene_camera(scene: dict) -> tuple[np.ndarray, np.ndarray, Intrinsics]:
    cam = scene["camera"]
    R = euler_xyz_to_matrix(*cam["rotate"])
    intr = Intrinsics(cam["focal_px"], cam["principal_px"][0], cam["principal_px"][1], cam["width"], cam["height"])
    return R, np.asarray(cam["translate"]), intr


@pytest.mark.parametrize("full", [None, (640, 480), (1000, 750)])
def test_projected_boxes_cover_their_segments(full: tuple[int, int] | None) -> None:
    s = street()
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC, full_size=full)
    R, T, intr = _scene_camera(scene)
    checked = 0
    for obj in scene["objects"]:
        if obj["shape"] == "plane":
            continue
        corners = as_box(obj).corners()
        uv = project((corners - T) @ R, intr)
        x0, y0, x1, y1 = obj["bbox_px"]
        scale = intr.width / 320
        tol = 0.3 * scale + 1.0  # tolerance of the growth search, plus the full-resolution rounding
        assert uv[:, 0].min() <= x0 + tol and uv[:, 1].min() <= y0 + tol
        assert uv[:, 0].max() >= x1 - tol and uv[:, 1].max() >= y1 - tol
        checked += 1
    assert checked == 4


def test_face_on_objects_take_their_thickness_from_priors() -> None:
    """Only the front face is visible: a car from behind gets its 4.5 m length, a building a depth
    equal to its width, and each box extends away from the camera behind its visible face."""
    names = ["sky", "road", "car", "building"]
    boxes = [GTBox(2, (0.0, -10.0), 0.0, (1.8, 1.5, 4.5), (0.3, 0.3, 0.8)),
             GTBox(3, (0.0, -40.0), 0.0, (14.0, 12.0, 14.0), (0.6, 0.6, 0.6))]
    s = render(boxes, names, pitch=0.0, roll=0.0, cam_height=1.2)
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    car = next(o for o in scene["objects"] if o["label"] == "car")
    bld = next(o for o in scene["objects"] if o["label"] == "building")
    assert car["thickness_source"] == "prior" and bld["thickness_source"] == "prior"
    assert car["size"] == pytest.approx([1.8, 1.5, 4.5], rel=0.05)
    assert bld["size"][2] == pytest.approx(bld["size"][0], rel=0.02)
    # the visible face is at z = -10 + 2.25; the box lies behind it
    assert car["translate"][2] + car["size"][2] / 2 == pytest.approx(-7.75, abs=0.05)
    assert box_iou(as_box(car), boxes[0].box) > 0.85
    assert box_iou(as_box(bld), boxes[1].box) > 0.85


def test_blurred_noisy_depth_keeps_boxes_usable() -> None:
    """Depth networks blur occlusion edges (flying pixels toward the background) and add noise:
    the fit uses the depth range of each segment's interior, so boxes do not stretch to the sky."""
    from scipy import ndimage

    s = street()
    finite = np.isfinite(s.depth)
    blurred = ndimage.gaussian_filter(np.where(finite, s.depth, 300.0), 1.5)
    noisy = blurred * (1 + np.random.default_rng(0).normal(0, 0.01, s.depth.shape))
    depth = np.where(finite, noisy, np.inf).astype(np.float32)
    scene = build_scene(s.rgb, s.labels, s.names, depth, s.intr, SceneOptions(), source=SRC)
    ious = [box_iou(as_box(match(scene, gt)), gt.box) for gt in s.boxes]
    assert np.mean(ious) > 0.5
    for o in scene["objects"]:
        if o["role"] not in ("sky", "ground"):
            assert max(o["size"]) < 20.0


def test_walls_are_thin_slabs_along_their_plane() -> None:
    names = ["sky", "floor", "wall", "person"]
    boxes = [GTBox(2, (0.0, -8.0), 25.0, (12.0, 2.7, 0.3), (0.9, 0.9, 0.85)),
             GTBox(3, (1.0, -5.0), 0.0, (0.5, 1.7, 0.4), (0.2, 0.2, 0.5))]
    s = render(boxes, names, pitch=-5.0, roll=0.0, cam_height=1.5)
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    wall = next(o for o in scene["objects"] if o["label"] == "wall")
    assert wall["shape"] == "cube" and wall["thickness_source"] == "prior"
    assert wall["size"][2] == pytest.approx(0.2, abs=0.05)  # slab thickness from the table
    assert yaw_error(wall["rotate"][1], 25.0) < 1.0 and wall["size"][0] > 8.0
    person = next(o for o in scene["objects"] if o["label"] == "person")
    assert person["shape"] == "cylinder"
    assert person["size"][1] == pytest.approx(1.7, abs=0.1)
    assert person["translate"][1] - person["size"][1] / 2 == pytest.approx(0.0, abs=1e-6)


def test_ceiling_is_a_horizontal_slab_at_its_height() -> None:
    names = ["sky", "floor", "ceiling", "wall"]
    boxes = [GTBox(2, (0.0, -6.0), 0.0, (10.0, 0.1, 10.0), (0.95, 0.95, 0.95), bottom=2.6),
             GTBox(3, (0.0, -11.0), 0.0, (10.0, 2.6, 0.2), (0.8, 0.7, 0.6))]
    s = render(boxes, names, pitch=5.0, roll=0.0, cam_height=1.4)
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    ceiling = next(o for o in scene["objects"] if o["label"] == "ceiling")
    assert ceiling["shape"] == "cube" and ceiling["size"][1] == pytest.approx(0.1)
    assert ceiling["translate"][1] - 0.05 == pytest.approx(2.6, abs=0.02)
    assert ceiling["size"][0] > 5 and ceiling["size"][2] > 3


def test_priors_keep_their_proportions_for_big_objects() -> None:
    from inference_server.analysis.boxes import fit_box
    from inference_server.analysis.shapes import load_table

    spec = load_table().lookup("box")  # prior 0.5 x 0.4 x 0.4
    xs, ys = np.meshgrid(np.linspace(-2.5, 2.5, 60), np.linspace(0.0, 2.0, 30))
    face = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, -10.0)], axis=1)  # a 5 m face-on front
    box, source = fit_box(face, spec, np.array([0.0, 1.6, 0.0]))
    assert source == "prior"
    assert box.size[2] == pytest.approx(0.4 * 5.0 / 0.5, rel=0.05)
    assert box.center[2] == pytest.approx(-10.0 - box.size[2] / 2, abs=0.05)  # behind the visible face


def test_an_object_whose_feet_are_hidden_still_stands() -> None:
    names = ["sky", "road", "crate", "lamp"]
    boxes = [GTBox(2, (0.0, -8.0), 0.0, (3.0, 1.2, 1.0), (0.5, 0.4, 0.3)),  # occluder in front
             GTBox(3, (0.0, -11.0), 0.0, (1.5, 2.0, 1.5), (0.9, 0.9, 0.2))]  # its lower part is hidden
    s = render(boxes, names, pitch=-2.0, roll=0.0, cam_height=1.4)
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    lamp = next(o for o in scene["objects"] if o["label"] == "lamp")  # a "standing: auto" class
    assert lamp["translate"][1] - lamp["size"][1] / 2 == pytest.approx(0.0, abs=1e-6)
    assert lamp["size"][1] == pytest.approx(2.0, abs=0.1)


def test_an_object_cut_in_two_by_an_occluder_is_one_object() -> None:
    names = ["sky", "road", "car", "person"]
    boxes = [GTBox(2, (0.0, -14.0), 90.0, (1.8, 1.5, 4.5), (0.7, 0.2, 0.2)),  # side view: 4.5 m wide
             GTBox(3, (0.0, -8.0), 0.0, (0.5, 1.8, 0.4), (0.2, 0.2, 0.6))]  # a person in front
    s = render(boxes, names, pitch=-4.0, roll=0.0, cam_height=1.6)
    car_px = s.labels == 2
    from scipy import ndimage

    assert ndimage.label(car_px)[1] == 2  # the segment really is cut in two
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    cars = [o for o in scene["objects"] if o["label"] == "car"]
    assert len(cars) == 1 and cars[0]["pixels"] == int(car_px.sum())
    assert box_iou(as_box(cars[0]), boxes[0].box) > 0.8


def test_noisy_depth_is_filtered_and_noise_taken_out_of_the_extents() -> None:
    s = street()
    noisy = (s.depth * (1 + np.random.default_rng(3).normal(0, 0.02, s.depth.shape))).astype(np.float32)
    scene = build_scene(s.rgb, s.labels, s.names, noisy, s.intr, SceneOptions(), source=SRC)
    assert any("noisy depth" in w for w in scene["warnings"])
    ious = [box_iou(as_box(match(scene, gt)), gt.box) for gt in s.boxes]
    assert np.mean(ious) > 0.65
    assert scene["ground"]["camera_height_m"] == pytest.approx(1.6, abs=0.02)


@pytest.mark.parametrize("simd_sort", [False, True])
@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (800,), (45, 800), (3, 20001)])
def test_percentiles_are_numpys_bit_for_bit_by_sort_or_partition(monkeypatch: pytest.MonkeyPatch,
                                                                 simd_sort: bool, shape: tuple[int, ...]) -> None:
    from inference_server.analysis import boxes

    monkeypatch.setattr(boxes, "SIMD_SORT", simd_sort)  # the CPU decides which; the values must not move
    rng = np.random.default_rng(len(shape) * 1000 + shape[-1])
    a = rng.normal(size=shape) * 10.0
    a.flat[:: 97] = 1.5  # ties
    q = [1.0, 2.0, 50.0, 98.0, 99.0]
    want = np.moveaxis(np.percentile(a, q, axis=-1), 0, -1)
    assert np.array_equal(boxes.percentiles(a, q), want)
