"""Camera maths: focal length choice, Maya film back, rotations, projection round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference_server.analysis import camera as cam


def test_focal_priority_and_values() -> None:
    assert cam.intrinsics_for(4000, 3000, focal_px=3000.0).source == "user"
    i = cam.intrinsics_for(4000, 3000, fov_deg=90.0)
    assert i.focal_px == pytest.approx(2000.0)
    # focal 4.25 mm on a 5.6 mm-wide sensor
    i = cam.intrinsics_for(4000, 3000, exif_focal_mm=4.25, exif_sensor_width_mm=5.6, exif_focal_35mm=26)
    assert (i.source, i.focal_px) == ("exif", pytest.approx(4.25 * 4000 / 5.6))
    i = cam.intrinsics_for(4000, 3000, exif_focal_35mm=26)
    assert i.source == "exif35" and i.focal_px == pytest.approx(26 * 5000 / math.hypot(36, 24))
    i = cam.intrinsics_for(1920, 1080)
    assert i.source == "default" and i.hfov_deg == pytest.approx(60.0)
    assert (i.cx, i.cy) == (960.0, 540.0)


def test_maya_film_keeps_horizontal_fov() -> None:
    i = cam.intrinsics_for(1600, 1200, fov_deg=63.0)
    film = cam.maya_film(i)
    hfov = math.degrees(2 * math.atan(film["horizontal_aperture_mm"] / (2 * film["focal_length_mm"])))
    assert hfov == pytest.approx(63.0)
    assert film["vertical_aperture_mm"] == pytest.approx(27.0)


@pytest.mark.parametrize("angles", [(10, 20, 30), (-35, 80, 5), (0, 0, 0), (170, -10, -120)])
def test_euler_roundtrip(angles) -> None:
    m = cam.euler_xyz_to_matrix(*angles)
    assert np.allclose(m @ m.T, np.eye(3))
    back = cam.euler_xyz_to_matrix(*cam.matrix_to_euler_xyz(m))
    assert np.allclose(back, m)


def test_xyz_order_applies_x_first() -> None:
    # rotate +90 about X, then +90 about Z: +Y -> +Z (by X) -> +Z (Z leaves it)
    m = cam.euler_xyz_to_matrix(90, 0, 90)
    assert np.allclose(m @ [0, 1, 0], [0, 0, 1])
    # +Z -> -Y (by X) -> +X (by Z)
    assert np.allclose(m @ [0, 0, 1], [1, 0, 0])


def test_backproject_project_roundtrip() -> None:
    i = cam.Intrinsics(500.0, 320.0, 240.0, 640, 480)
    u, v = np.array([0, 319, 639]), np.array([0, 239, 479])
    p = cam.backproject(u, v, np.array([2.0, 5.0, 9.0]), i)
    assert p[1] == pytest.approx([-0.5 * 5 / 500, 0.5 * 5 / 500, -5.0])
    assert np.allclose(cam.project(p, i), np.stack([u + 0.5, v + 0.5], -1))
    s = i.scaled(0.5)
    assert (s.width, s.height, s.focal_px, s.cx) == (320, 240, 250.0, 160.0)


def test_pixel_rays_agree_with_backproject_and_rotate_to_world():
    pixel_rays = cam.pixel_rays
    intr = cam.Intrinsics(800.0, 320.0, 240.0, 640, 480)
    u, v, d = np.array([0, 319, 639]), np.array([0, 239, 479]), np.array([2.0, 5.0, 9.0])
    rays = pixel_rays(u + 0.5, v + 0.5, intr, np.eye(3))
    np.testing.assert_allclose(rays[:, 2], -1.0)
    np.testing.assert_allclose(rays * d[:, None], cam.backproject(u, v, d, intr))
    np.testing.assert_allclose(pixel_rays(np.array([320.0]), np.array([240.0]), intr, np.eye(3)), [[0.0, 0.0, -1.0]])
    r = cam.euler_xyz_to_matrix(-10.0, 30.0, 2.0)
    np.testing.assert_allclose(pixel_rays(u + 0.5, v + 0.5, intr, r), rays @ r.T)
