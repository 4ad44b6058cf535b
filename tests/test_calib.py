"""Camera estimation from line segments (inference_server/calib): geometry on exact synthetic lines, real
LSD on rendered images, the source order in the pipeline, and bad input (no lines, one direction,
tiny or panoramic photos) that must fall back with one warning and never give NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from inference_server.analysis.camera import euler_xyz_to_matrix
from inference_server.calib import estimate_camera, manhattan, segments
from inference_server.calib.segments import Segments

W, H = 800, 600
_CV = np.diag([1.0, -1.0, -1.0])  # engine camera frame <-> OpenCV's


def _camera(pitch: float, roll: float, yaw: float) -> np.ndarray:
    """World -> OpenCV camera rotation of a camera pitched and rolled against gravity, then turned by
    `yaw` about world up (the engine's pose: Ry(yaw) Rz(roll) Rx(pitch), camera to world)."""
    r_cam_to_world = euler_xyz_to_matrix(0.0, yaw, 0.0) @ euler_xyz_to_matrix(pitch, 0.0, roll)
    return _CV @ r_cam_to_world.T


def _manhattan_segments(f: float, pitch: float, roll: float, yaw: float, n: int = 60, noise_px: float = 0.3,
                        seed: int = 0) -> Segments:
    """Projected 3-D segments along the world's three axes in front of the camera (a city block)."""
    rng = np.random.default_rng(seed)
    rot = _camera(pitch, roll, yaw)
    out = []
    axes = np.eye(3)
    while len(out) < 3 * n:
        k = len(out) % 3
        u, v, z = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(6.0, 40.0)  # a point seen in the photo
        pc = np.array([(u - W / 2) * z / f, (v - H / 2) * z / f, z])
        p = rot.T @ pc  # world: x right, y up, z toward the camera
        q = p + axes[k] * rng.uniform(1.5, 5.0) * rng.choice([-1.0, 1.0])
        qc = rot @ q
        if pc[2] <= 0.5 or qc[2] <= 0.5:
            continue
        a = np.array([f * pc[0] / pc[2] + W / 2, f * pc[1] / pc[2] + H / 2])
        b = np.array([f * qc[0] / qc[2] + W / 2, f * qc[1] / qc[2] + H / 2])
        if not (0 <= a[0] < W and 0 <= a[1] < H and 0 <= b[0] < W and 0 <= b[1] < H):
            continue
        if np.hypot(*(b - a)) < 25:
            continue
        out.append(np.concatenate([a, b]) + rng.normal(0.0, noise_px, 4))
    xy = np.array(out)
    return Segments(xy, np.hypot(xy[:, 2] - xy[:, 0], xy[:, 3] - xy[:, 1]))


def _pitch_roll(axes: np.ndarray) -> tuple[float, float]:
    up = _CV @ axes[:, 1]
    up = up if up[1] > 0 else -up
    return math.degrees(math.atan2(-up[2], up[1])), math.degrees(math.asin(up[0]))


@pytest.mark.parametrize("f,pitch,roll,yaw", [(700.0, -8.0, 2.0, 35.0), (450.0, 5.0, -3.0, 60.0),
                                              (1100.0, -15.0, 0.5, 25.0)])
def test_frame_and_focal_from_exact_lines(f: float, pitch: float, roll: float, yaw: float) -> None:
    seg = _manhattan_segments(f, pitch, roll, yaw)
    frame = manhattan.estimate(seg, W, H, prior_focal_px=W / (2 * math.tan(math.radians(30))))
    assert frame is not None and frame.focal_from_lines
    assert frame.focal_px == pytest.approx(f, rel=0.02)
    p, r = _pitch_roll(frame.axes)
    assert p == pytest.approx(pitch, abs=0.2) and r == pytest.approx(roll, abs=0.2)
    assert min(frame.segments_per_axis) >= 40


def test_known_focal_gives_the_orientation_only() -> None:
    seg = _manhattan_segments(700.0, -6.0, 1.0, 40.0)
    frame = manhattan.estimate(seg, W, H, prior_focal_px=700.0, fixed_focal=True)
    assert frame is not None and not frame.focal_from_lines and frame.focal_px == 700.0
    p, r = _pitch_roll(frame.axes)
    assert p == pytest.approx(-6.0, abs=0.1) and r == pytest.approx(1.0, abs=0.1)


def test_a_horizon_above_the_sky_is_refused() -> None:
    """A frame whose horizon puts the sky below it is no frame: the sky is at the top of the image."""
    seg = _manhattan_segments(700.0, -8.0, 0.0, 35.0)
    sky_top = np.array([[x, 5.0] for x in range(0, W, 20)])
    ok = manhattan.estimate(seg, W, H, prior_focal_px=700.0, sky=sky_top)
    assert ok is not None
    sky_bottom = np.array([[x, H - 5.0] for x in range(0, W, 20)])  # 'sky' below every plausible horizon
    assert manhattan.estimate(seg, W, H, prior_focal_px=700.0, sky=sky_bottom) is None


def _render_block(f: float, pitch: float, roll: float, yaw: float) -> np.ndarray:
    """An image of window grids on two perpendicular facades (drawn lines, antialiasing by supersampling)."""
    ss = 2
    img = Image.new("RGB", (W * ss, H * ss), (200, 200, 205))
    d = ImageDraw.Draw(img)
    rot = _camera(pitch, roll, yaw)

    def px(p: np.ndarray) -> tuple[float, float] | None:
        c = rot @ p
        if c[2] <= 0.5:
            return None
        return (ss * (f * c[0] / c[2] + W / 2), ss * (f * c[1] / c[2] + H / 2))

    lines = []
    for k in range(0, 13):  # facade 1: plane z = -20, x in [-10, 10]
        lines.append(((-10 + k * 20 / 12, -1.6, -20), (-10 + k * 20 / 12, 14, -20)))
    for k in range(0, 11):
        lines.append(((-10, -1.6 + k * 1.5, -20), (10, -1.6 + k * 1.5, -20)))
    for k in range(0, 13):  # facade 2: plane x = 10, z in [-20, -5]
        lines.append(((10, -1.6, -20 + k * 15 / 12), (10, 14, -20 + k * 15 / 12)))
    for k in range(0, 11):
        lines.append(((10, -1.6 + k * 1.5, -20), (10, -1.6 + k * 1.5, -5)))
    for a, b in lines:
        pa, pb = px(np.array(a, float)), px(np.array(b, float))
        if pa is not None and pb is not None:
            d.line([pa, pb], fill=(40, 40, 50), width=3 * ss)
    return np.asarray(img.resize((W, H), Image.LANCZOS))


def test_lsd_on_a_rendered_block_recovers_the_camera() -> None:
    f, pitch, roll, yaw = 650.0, 4.0, -1.5, 25.0
    rgb = _render_block(f, pitch, roll, yaw)
    est = estimate_camera(rgb, prior_focal_px=W / (2 * math.tan(math.radians(30))))
    assert est.found and est.focal_px is not None, est.warnings
    assert est.focal_px == pytest.approx(f, rel=0.05)
    assert est.pitch_deg == pytest.approx(pitch, abs=0.5) and est.roll_deg == pytest.approx(roll, abs=0.5)
    assert est.confidence > 0.5 and est.seconds > 0 and not est.warnings
    rec = est.record()
    assert rec["method"] == "vanishing-points" and rec["focal_from_lines"] and len(rec["horizontal_axes_camera"]) == 2


def test_a_typed_focal_reuses_the_photos_vanishing_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """photo_lines holds the focal-free search (segments, RANSAC candidates): an estimate from them is the
    estimate from scratch, and a new focal on the same lines searches no candidates again."""
    from dataclasses import replace

    from inference_server.calib import photo_lines

    rgb = _render_block(650.0, 4.0, -1.5, 25.0)
    prior = W / (2 * math.tan(math.radians(30)))
    fresh = estimate_camera(rgb, prior_focal_px=prior)
    lines = photo_lines(rgb)
    assert lines.candidates is not None and len(lines.candidates.points) >= 2
    calls = []
    real = manhattan.candidates
    monkeypatch.setattr(manhattan, "candidates", lambda *a: calls.append(1) or real(*a))
    again = estimate_camera(rgb, prior_focal_px=prior, lines=lines)
    typed = estimate_camera(rgb, prior_focal_px=600.0, focal_known=True, lines=lines)
    assert calls == []
    assert replace(again, seconds=0.0) == replace(fresh, seconds=0.0)
    assert typed.focal_px is None and typed.pitch_deg == pytest.approx(4.0, abs=1.0)


def test_people_and_plants_do_not_count() -> None:
    """Segments on classes of trust 0 are dropped: the same block labelled 'vegetation' gives nothing."""
    rgb = _render_block(650.0, 4.0, -1.5, 25.0)
    labels = np.zeros((H, W), np.int32)
    est = estimate_camera(rgb, 700.0, labels=labels, roles=["vegetation"])
    assert not est.found and est.up is None and est.focal_px is None and len(est.warnings) == 1
    est = estimate_camera(rgb, 700.0, labels=labels, roles=["building"])
    assert est.found


def _stripes() -> np.ndarray:
    a = np.full((H, W, 3), 220, np.uint8)
    for x in range(40, W, 60):  # one direction only: vertical bars, no horizontal vanishing point
        a[:, x:x + 6] = 30
    return a


def _circles() -> np.ndarray:
    img = Image.new("RGB", (W, H), (230, 230, 230))
    d = ImageDraw.Draw(img)
    for r in range(20, 400, 25):  # a fisheye-like photo: curves only
        d.ellipse([W / 2 - r, H / 2 - r, W / 2 + r, H / 2 + r], outline=(20, 20, 20), width=3)
    return np.asarray(img)


@pytest.mark.parametrize("name,rgb", [
    ("black", np.zeros((H, W, 3), np.uint8)),
    ("16x16", np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)),
    ("noise", np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)),
    ("panorama 20:1", np.tile(_stripes()[:100, :], (1, 25, 1))),
    ("stripes", _stripes()),
    ("circles", _circles()),
])
def test_bad_input_falls_back_with_one_warning(name: str, rgb: np.ndarray) -> None:
    est = estimate_camera(rgb, prior_focal_px=rgb.shape[1] / (2 * math.tan(math.radians(30))))
    if est.found:  # whatever it found must be a camera: finite, unit up, a sane focal
        assert est.up is not None and np.isfinite(est.up).all()
        assert abs(np.linalg.norm(est.up) - 1.0) < 1e-6
        assert est.focal_px is None or 15 <= math.degrees(2 * math.atan(rgb.shape[1] / 2 / est.focal_px)) <= 130
    else:
        assert est.up is None and est.focal_px is None
        assert len(est.warnings) == 1 and "\n" not in est.warnings[0]
    rec = est.record()
    assert all(np.isfinite(v) for v in rec["support_px"])


def test_trust_map_follows_roles() -> None:
    labels = np.array([[0, 1, -1]], np.int32)
    t = segments.trust_map(labels, ["building", "person"])
    assert t.tolist() == [[1.0, 0.0, segments.UNLABELLED_TRUST]]


def test_trust_lookup_at_points_equals_the_whole_map() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(-1, 4, size=(40, 60)).astype(np.int32)
    roles = ["building", "person", "vehicle"]  # id 3: beyond the roles, unlabelled like -1
    rows, cols = rng.integers(0, 40, 200), rng.integers(0, 60, 200)
    lazy = segments.TrustMap(labels, tuple(roles))
    assert lazy.shape == (40, 60)
    assert np.array_equal(lazy[rows, cols], segments.trust_map(labels, roles)[rows, cols])


def test_frames_of_a_pair_at_many_focals_are_each_frame() -> None:
    from inference_server.calib import manhattan

    rng = np.random.default_rng(4)
    for _ in range(20):
        v, h = rng.normal(size=3), rng.normal(size=3)
        phis = np.exp(rng.uniform(-1.0, 1.0, 7))
        many = manhattan._frames(v, h, phis)
        for phi, fr in zip(phis, many, strict=True):  # the same numbers as one frame at a time
            a = np.array([v[0] / phi, v[1] / phi, v[2]])
            a = a / np.linalg.norm(a)
            b = np.array([h[0] / phi, h[1] / phi, h[2]])
            b = b / np.linalg.norm(b)
            b = b - (b @ a) * a
            b = b / np.linalg.norm(b)
            assert np.array_equal(fr, np.column_stack([b, a, np.cross(b, a)]))
            assert np.allclose(fr.T @ fr, np.eye(3))
    assert np.isnan(manhattan._frame(np.array([0.0, 1.0, 0.0]), np.array([0.0, 2.0, 0.0]), 1.0)).all()
