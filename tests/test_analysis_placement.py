"""analysis/placement.py: distance from the footprint, extents from the silhouette, thickness from priors
for network (relative) depth; metric depth untouched."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from inference_server.analysis import placement
from inference_server.analysis.boxes import Box, cover_bbox, projected_bounds
from inference_server.analysis.camera import Intrinsics
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.analysis.ground import pose_from_angles
from inference_server.analysis.shapes import load_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from synthetic_gt import make_scene

INTR = Intrinsics(500.0, 320.0, 240.0, 640, 480)
POSE = pose_from_angles(0.0, 0.0, 1.6)  # level camera 1.6 m above the ground, looking down -Z
TABLE = load_table()
CAR = TABLE.lookup("car")
TRUE_CAR = Box(center=(0.0, 0.75, -(10.0 + 2.25)), yaw=0.0, size=(1.8, 1.5, 4.5))  # near face at z = 10 m


def _bbox(box: Box) -> np.ndarray:
    b = projected_bounds(box, POSE, INTR)
    assert b is not None
    return b


def _place(fitted: Box, z_net: float, *, spec=CAR, bbox=None, contact: bool = True, limited: bool = False):
    bbox = _bbox(TRUE_CAR) if bbox is None else bbox
    contact_row = int(math.ceil(bbox[3])) - 1 if contact else -1
    return placement.place(fitted, "measured", spec, bbox, (bbox[0] + bbox[2]) / 2.0, z_net, contact_row=contact_row,
                           limited=limited, pose=POSE, intr=INTR, has_ground=True)


def _near_z(box: Box) -> float:
    return float((-POSE.to_cam(box.corners())[:, 2]).min())


def test_ground_contact_lowest_row_adjoining_ground() -> None:
    inst = np.full((10, 6), -1, dtype=np.int32)
    inst[6:, :] = 0  # ground
    inst[3:6, 1:3] = 1  # stands on the ground: its row 5 adjoins it
    inst[1:3, 1:3] = 2  # sits on instance 1, never touches the ground
    inst[2:4, 4:6] = 3  # floats above unlabelled pixels
    rows = placement.ground_contact(inst, np.array([True, False, False, False]))
    assert rows.tolist() == [-1, 5, -1, -1]


def test_ground_pixels_from_class_ids() -> None:
    labels = np.array([[-1, 0, 1], [1, 1, 0]], dtype=np.int32)
    assert placement.ground_pixels(labels, np.array([False, True])).tolist() == [[False, False, True], [True, True, False]]
    assert not placement.ground_pixels(np.full((2, 3), -1, dtype=np.int32), np.zeros(0, dtype=bool)).any()  # no names


def test_footprint_wins_over_a_wrong_network_depth_and_the_silhouette_gives_the_size() -> None:
    smeared = Box(center=(0.0, 1.0, -25.0), yaw=20.0, size=(8.0, 2.0, 30.0))  # network noise taken as size
    seed, source, rec = _place(smeared, z_net=20.0)
    assert rec is not None and rec["distance_from"] == "footprint"
    assert rec["footprint_z_m"] == pytest.approx(10.0, rel=0.02) and rec["network_z_m"] == 20.0
    assert source == "prior" and rec["thickness_m"] == pytest.approx(4.5)  # 30 m is implausible for a car
    box = cover_bbox(seed, _bbox(TRUE_CAR), POSE, INTR, keep_bottom=True)
    assert box.bottom == pytest.approx(0.0, abs=1e-6)
    assert _near_z(box) == pytest.approx(10.0, rel=0.03)
    assert box.size[0] == pytest.approx(1.8, rel=0.06) and box.size[1] == pytest.approx(1.5, rel=0.06)
    assert box.size[2] == pytest.approx(4.5)
    assert math.remainder(box.yaw, 180.0) == pytest.approx(0.0, abs=1e-6)  # faces the camera


def test_agreeing_network_depth_is_blended_and_plausible_thickness_kept() -> None:
    fitted = Box(center=(0.0, 0.75, -12.5), yaw=0.0, size=(1.9, 1.5, 5.0))
    seed, source, rec = _place(fitted, z_net=11.0)
    assert rec["distance_from"] == "footprint+depth"
    assert rec["z_m"] == pytest.approx(math.exp(0.75 * math.log(rec["footprint_z_m"]) + 0.25 * math.log(11.0)), rel=1e-3)
    assert 10.0 < rec["z_m"] < 11.0
    assert source == "measured" and rec["thickness_m"] == pytest.approx(5.0)  # within 1.5 x the prior's 4.5 m
    assert 5.0 <= seed.size[2] < 5.3  # the front face comes forward to the footprint to cover the bottom


def test_hidden_foot_keeps_network_depth_capped_by_the_ground() -> None:
    fitted = Box(center=(0.0, 0.75, -20.0), yaw=0.0, size=(1.8, 1.5, 4.5))
    _, _, far = _place(fitted, z_net=20.0, limited=True)  # feet hidden: the real foot is lower, so nearer
    assert far["distance_from"] == "depth, capped by the ground" and far["z_m"] == pytest.approx(10.0, rel=0.02)
    _, _, near = _place(fitted, z_net=8.0, limited=True)
    assert near["distance_from"] == "depth" and near["z_m"] == pytest.approx(8.0)
    _, _, apart = _place(fitted, z_net=8.0, contact=False)  # lowest rows adjoin no ground
    assert apart["distance_from"] == "depth"


def test_objects_off_the_ground_keep_network_depth_with_prior_thickness() -> None:
    sign = TABLE.lookup("signboard")
    sign_box = Box(center=(1.0, 6.0, -15.0), yaw=80.0, size=(0.7, 12.0, 0.05))  # depth noise along rays, clamped at y = 0
    bbox = _bbox(Box(center=(1.0, 3.0, -15.0), yaw=0.0, size=(0.7, 0.7, 0.05)))
    seed, source, rec = _place(sign_box, z_net=15.0, spec=sign, bbox=bbox)
    assert rec["distance_from"] == "depth" and "footprint_z_m" not in rec
    assert source == "prior" and seed.size[2] == pytest.approx(0.05)
    box = cover_bbox(seed, bbox, POSE, INTR, keep_bottom=False, frozen=(2,))
    assert box.size[0] == pytest.approx(0.7, rel=0.1) and box.size[1] == pytest.approx(0.7, rel=0.1)
    assert box.center[1] == pytest.approx(3.0, abs=0.1)


def test_class_without_prior_thickness_capped_and_ceilings_untouched() -> None:
    thing = TABLE.lookup("zorblax machine")
    assert thing.matched is None
    fitted = Box(center=(0.0, 0.5, -30.0), yaw=0.0, size=(1.0, 1.0, 40.0))
    seed, source, rec = _place(fitted, z_net=20.0, spec=thing)
    assert source == "prior" and seed.size[2] <= 0.25 * rec["z_m"] + 1e-9
    ceiling = TABLE.lookup("ceiling")
    box, src, rec2 = _place(fitted, z_net=20.0, spec=ceiling)
    assert rec2 is None and box is fitted and src == "measured"


def test_engine_places_relative_depth_objects_and_leaves_metric_alone() -> None:
    s = make_scene(5, 480, 320, 4)
    h = s.camera["height_m"]
    opts_rel = SceneOptions(depth_kind="relative", camera_height_m=h)
    rel = build_scene(s.rgb, s.labels, s.names, np.sqrt(s.depth), s.intrinsics, opts_rel, source={})
    met = build_scene(s.rgb, s.labels, s.names, s.depth, s.intrinsics, SceneOptions(), source={})
    assert all("placement" not in o for o in met["objects"])
    placed = [o for o in rel["objects"] if "placement" in o]
    assert placed
    for o in placed:
        assert o["placement"]["distance_from"] in ("footprint", "footprint+depth", "depth",
                                                   "depth, capped by the ground")
    cam = np.asarray(s.camera["translate"])
    errs = []
    for o in placed:
        if o["role"] not in ("vehicle", "person"):
            continue
        g = max(s.objects, key=lambda g: _iou(g.bbox_px, o["bbox_px"]))
        if _iou(g.bbox_px, o["bbox_px"]) < 0.5:
            continue
        d_true = np.linalg.norm(np.asarray(g.translate) - cam)
        errs.append(abs(np.linalg.norm(np.asarray(o["translate"]) - np.asarray(rel["camera"]["translate"])) - d_true) / d_true)
    assert errs and max(errs) < 0.05


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _wall_pixels(x: float, z_near: float, z_far: float, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (u, v) of a thin wall at world x = `x` from z = -z_near to -z_far, `height` tall."""
    zs, ys = np.meshgrid(np.linspace(-z_near, -z_far, 3000), np.linspace(0.0, height, 200))
    pts = np.stack([np.full(zs.size, x), ys.ravel(), zs.ravel()], axis=1)
    cam = POSE.to_cam(pts)
    u = np.floor(cam[:, 0] * INTR.focal_px / -cam[:, 2] + INTR.cx).astype(int)
    v = np.floor(-cam[:, 1] * INTR.focal_px / -cam[:, 2] + INTR.cy - 1e-6).astype(int)
    ok = (u >= 0) & (u < INTR.width) & (v >= 0) & (v < INTR.height)
    uv = np.unique(np.stack([u[ok], v[ok]], axis=1), axis=0)
    return uv[:, 0], uv[:, 1]


def test_wall_on_network_depth_follows_its_base_line_on_the_ground() -> None:
    u, v = _wall_pixels(-3.0, 5.0, 20.0, 1.2)
    ground = np.zeros((INTR.height, INTR.width), dtype=bool)
    ground[int(INTR.cy) + 1:, :] = True  # everything below the horizon that is not wall
    ground[v, u] = False
    wall = TABLE.lookup("wall")
    smeared = Box(center=(-3.0, 0.6, -40.0), yaw=0.0, size=(60.0, 1.2, 0.2))
    bbox = np.array([u.min(), v.min(), u.max() + 1, v.max() + 1], dtype=float)
    seed, source, rec = placement.place(smeared, "prior", wall, bbox, float(np.mean(u)), 40.0, contact_row=int(v.max()),
                                        limited=False, pose=POSE, intr=INTR, has_ground=True, u=u, v=v, ground_px=ground)
    assert rec is not None and rec["distance_from"] == "footprint line" and source == "prior"
    assert abs(math.remainder(seed.yaw, 180.0)) == pytest.approx(90.0, abs=2.0)  # runs along the view (world z)
    assert seed.size[0] == pytest.approx(15.0, rel=0.1) and seed.size[2] == pytest.approx(0.2)
    assert seed.center[2] == pytest.approx(-12.5, abs=0.8)
    assert abs(seed.center[0] + 3.0) < 0.3  # face on the wall's line, the slab behind it
    box = cover_bbox(seed, bbox, POSE, INTR, keep_bottom=True, frozen=(2,))
    assert box.size[1] == pytest.approx(1.2, rel=0.1)
    # too few columns touch the ground (a wall seen over a car): the facing-slab placement instead
    _, _, rec2 = placement.place(smeared, "prior", wall, bbox, float(np.mean(u)), 40.0, contact_row=-1, limited=True,
                                 pose=POSE, intr=INTR, has_ground=True, u=u, v=v, ground_px=np.zeros_like(ground))
    assert rec2 is not None and rec2["distance_from"] != "footprint line"


def test_without_a_ground_plane_standing_objects_are_capped_not_footprinted() -> None:
    fitted = Box(center=(0.0, 0.75, -20.0), yaw=0.0, size=(1.8, 1.5, 4.5))
    bbox = _bbox(TRUE_CAR)
    far = placement.place(fitted, "measured", CAR, bbox, (bbox[0] + bbox[2]) / 2.0, 20.0, contact_row=int(bbox[3]) - 1,
                          limited=False, pose=POSE, intr=INTR, has_ground=False)[2]
    assert far["distance_from"] == "depth, capped by the ground" and far["z_m"] == pytest.approx(10.0, rel=0.02)
    near = placement.place(fitted, "measured", CAR, bbox, (bbox[0] + bbox[2]) / 2.0, 9.5, contact_row=int(bbox[3]) - 1,
                           limited=False, pose=POSE, intr=INTR, has_ground=False)[2]
    assert near["distance_from"] == "depth" and near["z_m"] == pytest.approx(9.5)  # no blending without a plane
