"""benchmarks/synthetic_gt.py: the ground-truth renderer itself (geometry, depth, colours, files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from synthetic_gt import ROAD, SKY, make_scene, write_inputs

from inference_server.analysis.camera import backproject, euler_xyz_to_matrix
from inference_server.analysis.color import LINEAR_LUT, linear_to_srgb


def _world(s, mask: np.ndarray) -> np.ndarray:
    v, u = np.nonzero(mask)
    cam = backproject(u, v, s.depth[mask], s.intrinsics)
    return cam @ euler_xyz_to_matrix(*s.camera["rotate"]).T + np.asarray(s.camera["translate"])


def test_deterministic_and_camera_ranges() -> None:
    a, b = make_scene(3, 240, 160, 4), make_scene(3, 240, 160, 4)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.labels, b.labels)
    for seed in range(5):
        c = make_scene(seed, 120, 80, 3).camera
        assert 1.4 <= c["height_m"] <= 1.8 and -12 <= c["pitch_deg"] <= -3 and abs(c["roll_deg"]) <= 2
        assert c["translate"] == [0.0, c["height_m"], 0.0]


def test_ground_pixels_lie_on_the_plane_and_sky_has_no_depth() -> None:
    s = make_scene(1, 320, 214, 5)
    ground = s.instances == -1
    assert ground.sum() > 5000
    assert np.abs(_world(s, ground)[:, 1]).max() < 1e-3
    sky = s.instances == -2
    assert sky.any() and np.isnan(s.depth[sky]).all() and (s.labels[sky] == SKY).all()
    assert (s.labels[ground] == ROAD).all()
    assert np.isfinite(s.depth[~sky]).all()


def test_box_pixels_lie_on_their_box_surface() -> None:
    s = make_scene(2, 480, 320, 6)
    assert len(s.objects) >= 4
    for k, o in enumerate(s.objects):
        m = s.instances == k
        assert m.sum() == o.pixels > 0
        assert (s.labels[m] == s.names.index(o.label)).all()
        p = _world(s, m) - np.asarray(o.translate)
        yaw = np.radians(o.rotate[1])
        r = euler_xyz_to_matrix(0.0, o.rotate[1], 0.0)
        local = p @ r  # world -> box frame
        half = np.asarray(o.size) / 2
        assert (np.abs(local) <= half + 2e-3).all()
        # every point is on a face: some coordinate at +-half
        assert (np.abs(np.abs(local) - half).min(axis=1) < 2e-3).all()
        assert abs(o.translate[1] - o.size[1] / 2) < 1e-12  # standing on y = 0
        assert -90 <= np.degrees(yaw) <= 90


def test_gt_colour_is_the_linear_mean_of_rendered_pixels() -> None:
    s = make_scene(4, 240, 160, 4)
    for k, o in enumerate(s.objects):
        lin = LINEAR_LUT[s.rgb[s.instances == k]]
        assert np.allclose(o.color_linear, lin.mean(axis=0), atol=1e-12)
        assert np.allclose(o.color_srgb, linear_to_srgb(lin.mean(axis=0)), atol=1e-12)
        # shading makes faces differ: an object is not one flat colour
        assert lin.std(axis=0).max() > 0.005


def test_boxes_do_not_overlap() -> None:
    from iou3d import iou3d

    s = make_scene(5, 240, 160, 8)
    objs = [o.to_dict() for o in s.objects]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            assert iou3d(objs[i], objs[j]) == 0.0


def test_write_inputs_round_trip(tmp_path: Path) -> None:
    s = make_scene(0, 240, 160, 3)
    p = write_inputs(s, tmp_path)
    assert np.array_equal(np.asarray(Image.open(p["image"])), s.rgb)
    assert np.array_equal(np.asarray(Image.open(p["labels"])).astype(np.int32), s.labels)
    assert p["names"].read_text().splitlines() == s.names
    assert np.array_equal(np.load(p["depth"]), s.depth, equal_nan=True)
    gt = json.loads(p["gt"].read_text())
    assert gt["intrinsics"]["focal_px"] == s.intrinsics.focal_px
    assert len(gt["objects"]) == len(s.objects)
