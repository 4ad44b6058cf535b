"""Ground plane and gravity: camera height, pitch and roll from a RANSAC plane."""

from __future__ import annotations

import numpy as np
import pytest
from test_analysis_synth import street

from inference_server.analysis.camera import euler_xyz_to_matrix
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.analysis.ground import angles_from_normal, fit_plane, pose_from_angles
from inference_server.scene import validate

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}


@pytest.mark.parametrize(("pitch", "roll", "height"), [(-8.0, 1.5, 1.6), (-25.0, -4.0, 3.0), (5.0, 0.0, 1.2)])
def test_ground_fit_recovers_pitch_roll_height(pitch: float, roll: float, height: float) -> None:
    s = street(pitch=pitch, roll=roll, cam_height=height)
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    g, cam = scene["ground"], scene["camera"]
    assert g["found"] is True
    assert g["pitch_deg"] == pytest.approx(pitch, abs=0.05)
    assert g["roll_deg"] == pytest.approx(roll, abs=0.05)
    assert g["camera_height_m"] == pytest.approx(height, rel=1e-3)
    assert cam["translate"] == pytest.approx([0.0, height, 0.0], abs=1e-3)
    assert cam["rotate"] == pytest.approx([pitch, 0.0, roll], abs=0.05)
    assert g["scale"] == 1.0 and g["inlier_ratio"] > 0.95


def test_ransac_survives_outliers_and_noise() -> None:
    rng = np.random.default_rng(1)
    R = euler_xyz_to_matrix(-12.0, 0.0, 3.0)
    xz = rng.uniform([-5, -30], [5, -2], size=(3000, 2))
    world = np.stack([xz[:, 0], np.zeros(3000), xz[:, 1]], 1)
    cam = (world - [0, 2.0, 0]) @ R  # world -> camera
    cam *= 1 + rng.normal(0, 0.003, size=(3000, 1))  # depth noise along the rays
    outliers = rng.uniform([-5, -3, -30], [5, 3, -2], size=(1500, 3))
    fit = fit_plane(np.concatenate([cam, outliers]))
    assert fit is not None
    pitch, roll = angles_from_normal(fit.normal)
    assert pitch == pytest.approx(-12.0, abs=0.3) and roll == pytest.approx(3.0, abs=0.3)
    assert fit.d == pytest.approx(2.0, rel=0.01)


def test_pose_maps_ground_points_to_y_zero() -> None:
    pose = pose_from_angles(-10.0, 2.0, 1.7)
    up_cam = pose.R.T @ np.array([0.0, 1.0, 0.0])
    assert angles_from_normal(up_cam) == pytest.approx((-10.0, 2.0))
    assert pose.to_cam(pose.to_world(np.array([[1.0, 2.0, -3.0]]))) == pytest.approx(np.array([[1.0, 2.0, -3.0]]))


def test_relative_depth_is_scaled_to_the_camera_height_prior() -> None:
    s = street()
    scene = build_scene(s.rgb, s.labels, s.names, s.depth * 0.37, s.intr,
                        SceneOptions(depth_kind="relative", camera_height_m=1.6), source=SRC)
    assert scene["ground"]["scale"] == pytest.approx(1 / 0.37, rel=1e-3)
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert car["depth_m"]["median"] == pytest.approx(float(np.median(s.depth[s.instance == 0])), rel=0.01)
    assert car["size"][1] == pytest.approx(1.5, abs=0.05)


def test_disparity_is_inverted() -> None:
    s = street()
    scene = build_scene(s.rgb, s.labels, s.names, 1.0 / s.depth, s.intr, SceneOptions(depth_kind="disparity"),
                        source=SRC)
    assert scene["ground"]["camera_height_m"] == pytest.approx(1.6, rel=1e-3)
    assert scene["ground"]["pitch_deg"] == pytest.approx(-8.0, abs=0.05)


def test_no_ground_class_falls_back_to_a_level_camera_with_a_warning() -> None:
    s = street()
    labels = s.labels.copy()
    labels[labels == 1] = 0  # the road becomes sky: no ground class left
    scene = build_scene(s.rgb, labels, s.names, np.where(labels == 0, np.inf, s.depth), s.intr,
                        SceneOptions(camera_height_m=1.6), source=SRC)
    validate(scene)
    assert scene["ground"]["found"] is False
    assert scene["camera"]["rotate"] == [0.0, 0.0, 0.0]
    assert any("no ground plane" in w for w in scene["warnings"])
    assert len([o for o in scene["objects"] if o["role"] not in ("sky",)]) == 4  # objects still placed
