"""Ground calibration of relative depth (inference_server/analysis/depth_calib.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_analysis_synth import street

from inference_server.analysis import depth_calib as dc
from inference_server.analysis.camera import backproject, euler_xyz_to_matrix
from inference_server.analysis.engine import SceneOptions, build_scene
from inference_server.analysis.shapes import load_table
from inference_server.scene import validate

SRC = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}


def _specs(names: list[str]) -> list:
    table = load_table(None)
    return [table.lookup(n) for n in names]


def _ground(s) -> np.ndarray:
    return s.labels == s.names.index("road")


def _truth(s) -> tuple[float, float]:
    """(horizon offset from cy, slope) of the street camera."""
    n = euler_xyz_to_matrix(s.pitch, 0.0, s.roll).T @ np.array([0.0, 1.0, 0.0])
    return -s.intr.focal_px * n[2] / n[1], n[0] / n[1]


def test_ground_inverse_depth_is_the_ray_plane_intersection() -> None:
    s = street(pitch=-10.0, roll=3.0, cam_height=1.7)
    h, sl = _truth(s)
    v, u = np.nonzero(_ground(s))
    q = dc.ground_inverse_depth(u, v, np.array(h), np.array(sl), s.intr.focal_px, s.intr.cx, s.intr.cy, 1.7)
    assert np.all(q > 0)
    np.testing.assert_allclose(1.0 / q, s.depth[v, u], rtol=1e-5)
    # the back-projected points at that depth lie 1.7 m below the camera along the ground normal
    pts = backproject(u, v, 1.0 / q, s.intr)
    up = euler_xyz_to_matrix(-10.0, 0.0, 3.0).T @ np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(pts @ up, -1.7, atol=1e-6)


@pytest.mark.parametrize(("family", "make"), [
    ("power", lambda z: 3.0 * z ** 0.5),  # range-compressed
    ("affine", lambda z: 0.5 * z + 20.0),  # offset
])
def test_calibration_recovers_the_map_and_the_horizon(family: str, make) -> None:
    s = street()
    d = make(s.depth.astype(np.float64))
    d[~np.isfinite(s.depth)] = np.nan
    cal, why = dc.calibrate(d, _ground(s), s.intr.focal_px, s.intr.cx, s.intr.cy, 1.6)
    assert cal is not None, why
    assert cal.family == family
    h, sl = _truth(s)
    assert cal.horizon_px == pytest.approx(h, abs=0.5)
    assert cal.slope == pytest.approx(sl, abs=2e-3)
    assert cal.pitch_deg == pytest.approx(-8.0, abs=0.1)
    assert cal.inlier_ratio > 0.99 and cal.explained > 0.99
    # every finite pixel (car, buildings, crate: none of them used by the fit) comes back metric
    ok = np.isfinite(s.depth)
    z = cal.map(d, _ground(s))
    np.testing.assert_allclose(z[ok], s.depth[ok], rtol=2e-3)
    assert np.isnan(z[~ok]).all()


def test_power_exponent_and_scale_of_a_compressed_depth() -> None:
    s = street()
    d = np.where(np.isfinite(s.depth), 2.0 * s.depth.astype(np.float64) ** 0.25, np.nan)
    cal, _ = dc.calibrate(d, _ground(s), s.intr.focal_px, s.intr.cx, s.intr.cy, 1.6, families=("power",))
    assert cal is not None
    assert cal.a == pytest.approx(4.0, rel=1e-3)  # z = (d / 2)^4
    assert math.exp(cal.b) == pytest.approx(2.0 ** -4, rel=1e-2)


def test_horizon_from_objects_of_known_height() -> None:
    labels = np.full((200, 300), 0, dtype=np.int32)
    labels[100:151, 40:60] = 1  # 51 px tall, feet at row 151: 1.7 m person
    labels[120:140, 200:260] = 2  # 20 px tall car (1.5 m), bottom edge at row 140
    labels[0:30, 100:120] = 1  # cut by the top border: ignored
    rows = dc.horizon_from_objects(labels, {1: 1.7, 2: 1.5}, camera_height=1.6)
    assert sorted(rows) == pytest.approx(sorted([151 - 1.6 * 51 / 1.7, 140 - 1.6 * 20 / 1.5]))


def test_horizon_prior_from_objects_is_used_by_the_engine_entry_point() -> None:
    s = street()
    d = np.where(np.isfinite(s.depth), s.depth, np.nan)
    z, cal, note = dc.calibrate_depth_map(d, s.labels, _specs(s.names), s.intr.focal_px, s.intr.cx, s.intr.cy, 1.6)
    assert cal is not None and "1 object(s) of known height" in note  # the car
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[np.isfinite(s.depth)], s.depth[np.isfinite(s.depth)], rtol=2e-3)


def test_too_little_ground_or_a_poor_fit_is_refused() -> None:
    s = street()
    d = np.where(np.isfinite(s.depth), s.depth, np.nan)
    few = np.zeros_like(_ground(s))
    few[-5:, :50] = True
    cal, why = dc.calibrate(d, few, s.intr.focal_px, s.intr.cx, s.intr.cy, 1.6)
    assert cal is None and "too little ground" in why
    rng = np.random.default_rng(0)
    noise = np.where(np.isfinite(s.depth), rng.uniform(10.0, 20.0, s.depth.shape), np.nan)
    cal, why = dc.calibrate(noise, _ground(s), s.intr.focal_px, s.intr.cx, s.intr.cy, 1.6)
    assert cal is None and "poor ground fit" in why
    out, cal, note = dc.calibrate_depth_map(noise, s.labels, _specs(s.names), s.intr.focal_px, s.intr.cx,
                                            s.intr.cy, 1.6)
    assert cal is None and out is noise and "one scale factor used instead" in note


def test_map_clamps_outside_the_ground_range() -> None:
    cal = dc.DepthCalibration(family="affine", a=2.0, b=-10.0, horizon_px=0.0, slope=0.0, camera_height_m=1.6,
                              focal_px=500.0, inlier_ratio=1.0, residual=0.0, cost=0.0, explained=1.0, scale=1.0,
                              n_ground=1000, z_clamp=(1.0, 100.0), ground_z=(2.0, 50.0))
    d = np.array([np.nan, 4.0, 6.0, 30.0, 100.0, 100.0])
    ground = np.array([False, False, False, False, False, True])
    z = cal.map(d, ground)
    assert np.isnan(z[0])
    assert z[1:].tolist() == [1.0, 2.0, 50.0, 100.0, 190.0]  # below the map's zero -> nearest; ground unclamped


def test_engine_makes_compressed_relative_depth_metric() -> None:
    s = street()
    d = np.where(np.isfinite(s.depth), s.depth, np.inf) ** 0.5
    scene = build_scene(s.rgb, s.labels, s.names, d, s.intr, SceneOptions(depth_kind="relative"), source=SRC)
    validate(scene)
    g = scene["ground"]
    assert g["method"] == "ground-calibrated" and g["depth_calibration"]["family"] == "power"
    assert g["depth_calibration"]["a"] == pytest.approx(2.0, rel=1e-3)
    assert g["camera_height_m"] == pytest.approx(1.6, rel=2e-3)
    assert g["pitch_deg"] == pytest.approx(-8.0, abs=0.1) and g["roll_deg"] == pytest.approx(1.5, abs=0.1)
    assert any("calibrated on the ground" in w for w in scene["warnings"])
    car = next(o for o in scene["objects"] if o["label"] == "car")
    assert car["depth_m"]["median"] == pytest.approx(float(np.median(s.depth[s.instance == 0])), rel=0.01)
    assert car["size"][1] == pytest.approx(1.5, abs=0.05)


def test_engine_falls_back_to_one_scale_when_the_ground_does_not_fit() -> None:
    s = street()
    rng = np.random.default_rng(3)
    d = np.where(s.labels == s.names.index("road"), rng.uniform(10.0, 20.0, s.depth.shape), s.depth)
    scene = build_scene(s.rgb, s.labels, s.names, d, s.intr, SceneOptions(depth_kind="relative"), source=SRC)
    assert scene["ground"]["method"] != "ground-calibrated" and "depth_calibration" not in scene["ground"]
    assert any("not calibrated on the ground" in w for w in scene["warnings"])


def test_metric_depth_is_never_calibrated() -> None:
    s = street()
    scene = build_scene(s.rgb, s.labels, s.names, s.depth, s.intr, SceneOptions(), source=SRC)
    assert scene["ground"]["method"] == "ransac" and "depth_calibration" not in scene["ground"]
    assert not any("calibrat" in w for w in scene["warnings"])


def test_bench_synthetic_relative_depth_modes() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_synthetic import relative_depth

    z = np.array([[4.0, 9.0], [np.nan, 16.0]], dtype=np.float32)
    assert relative_depth(z, "none") is z
    np.testing.assert_allclose(relative_depth(z, "pow:0.5"), [[2.0, 3.0], [np.nan, 4.0]])
    np.testing.assert_allclose(relative_depth(z, "shift:20"), [[24.0, 29.0], [np.nan, 36.0]])
    np.testing.assert_allclose(relative_depth(z, "scale:3"), [[12.0, 27.0], [np.nan, 48.0]])
    with pytest.raises(SystemExit):
        relative_depth(z, "log:2")


def test_ground_data_kept_across_camera_heights_gives_the_same_calibration() -> None:
    """calibrate_depth_map(ground=...) (the panel's camera-height field: the server's regenerate keeps
    what does not depend on the height) equals a fresh call."""
    s = street()
    d = np.where(np.isfinite(s.depth), s.depth, np.nan) ** 0.7  # relative: a power of the metric depth
    data = dc.ground_data(d, s.labels, _specs(s.names))
    for height in (1.6, 2.3, 1.1, 1.6):
        z, cal, note = dc.calibrate_depth_map(d, s.labels, _specs(s.names), s.intr.focal_px, s.intr.cx, s.intr.cy,
                                              height, ground=data)
        z0, cal0, note0 = dc.calibrate_depth_map(d, s.labels, _specs(s.names), s.intr.focal_px, s.intr.cx,
                                                 s.intr.cy, height)
        assert cal is not None and cal == cal0 and note == note0, height
        assert np.array_equal(z, z0, equal_nan=True)
        assert cal.camera_height_m == height
    assert data.segments and isinstance(data.samples, dc.GroundSamples)
