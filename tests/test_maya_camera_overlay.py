"""img2maya.camera_overlay (the horizon and vanishing directions drawn over the panel's photo, and the
camera line) and img2maya.camera_input (typed camera values): values, no Qt, no numpy."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from img2maya import camera_input as ci
from img2maya import camera_overlay as co

SCENE = Path(__file__).resolve().parent / "data" / "example_scene.json"
W, H, F, CX, CY = 1600.0, 1200.0, 1000.0, 800.0, 600.0


def _scene(rotate=(0.0, 0.0, 0.0), **camera) -> dict:
    scene = json.loads(SCENE.read_text())
    scene["camera"].update(rotate=list(rotate), focal_px=F, principal_px=[CX, CY], width=W, height=H, **camera)
    scene["camera"].pop("fov_horizontal_deg", None)
    scene["camera"].pop("focal_length_mm", None)
    return scene


def _flat(segment) -> list[float]:
    return [c for point in segment for c in point]


def _v_at(segment, u: float) -> float:
    (u0, v0), (u1, v1) = segment
    return v0 + (v1 - v0) * (u - u0) / (u1 - u0)


def _angle_deg(segment) -> float:
    (u0, v0), (u1, v1) = segment
    a = math.degrees(math.atan2(v1 - v0, u1 - u0))
    return (a + 90.0) % 180.0 - 90.0


def test_level_camera_horizon_is_the_principal_row() -> None:
    geo = co.overlay(_scene())
    assert geo is not None and geo.horizon is not None
    (u0, v0), (u1, v1) = geo.horizon
    assert (u0, u1) == pytest.approx((0.0, W)) and (v0, v1) == pytest.approx((CY, CY))
    assert (geo.pitch_deg, geo.roll_deg) == pytest.approx((0.0, 0.0), abs=1e-9)
    (vertical,) = geo.vanishing  # no calibration: the vertical only, at infinity
    assert vertical.name == "vertical" and vertical.point is None
    assert vertical.direction == pytest.approx((0.0, -1.0))
    assert len(vertical.lines) == co.FAN_LINES
    for (a, b) in vertical.lines:  # parallel verticals spread across the photo
        assert a[0] == pytest.approx(b[0]) and {round(a[1]), round(b[1])} == {0, H}


def test_off_centre_principal_point_moves_the_horizon() -> None:
    scene = _scene()
    scene["camera"]["principal_px"] = [700.0, 550.0]
    geo = co.overlay(scene)
    assert geo is not None and geo.horizon is not None
    assert _v_at(geo.horizon, 123.0) == pytest.approx(550.0)


@pytest.mark.parametrize("pitch", [-20.0, -5.0, 3.0, 30.0])
def test_pitched_camera_horizon_shifts_by_f_tan_pitch(pitch: float) -> None:
    geo = co.overlay(_scene((pitch, 0.0, 0.0)))
    assert geo is not None and geo.horizon is not None
    # looking up (pitch > 0) puts the horizon below the centre row (v grows downwards)
    assert _v_at(geo.horizon, CX) == pytest.approx(CY + F * math.tan(math.radians(pitch)))
    assert _angle_deg(geo.horizon) == pytest.approx(0.0, abs=1e-9)
    assert geo.pitch_deg == pytest.approx(pitch)
    vertical = geo.vanishing[0]
    assert vertical.point is not None  # the verticals converge: above for a camera looking up
    assert vertical.point[0] == pytest.approx(CX)
    assert vertical.point[1] == pytest.approx(CY - F / math.tan(math.radians(pitch)))


@pytest.mark.parametrize("roll", [-10.0, 4.0, 25.0])
def test_roll_tilts_the_horizon(roll: float) -> None:
    geo = co.overlay(_scene((0.0, 0.0, roll)))
    assert geo is not None and geo.horizon is not None
    assert _angle_deg(geo.horizon) == pytest.approx(roll)
    assert _v_at(geo.horizon, CX) == pytest.approx(CY)  # through the principal point still
    assert geo.roll_deg == pytest.approx(roll)
    assert geo.vanishing[0].direction == pytest.approx((math.sin(math.radians(roll)), -math.cos(math.radians(roll))))


def test_pitch_and_roll_together() -> None:
    pitch, roll = -8.0, 6.0  # R = Rz(roll) Rx(pitch): up = (sin r, cos r cos p, -cos r sin p)
    p, r = math.radians(pitch), math.radians(roll)
    geo = co.overlay(_scene((pitch, 0.0, roll)))
    assert geo is not None and geo.horizon is not None
    assert _angle_deg(geo.horizon) == pytest.approx(math.degrees(math.atan(math.tan(r) / math.cos(p))))
    # distance of the principal point to the horizon, perpendicular to the tilted line
    (u0, v0), (u1, v1) = geo.horizon
    n = (-(v1 - v0), u1 - u0)
    dist = ((CX - u0) * n[0] + (CY - v0) * n[1]) / math.hypot(*n)
    a, b, c = math.sin(r), math.cos(r) * math.cos(p), -math.cos(r) * math.sin(p)
    assert abs(dist) == pytest.approx(F * abs(c) / math.hypot(a, b))
    assert (geo.pitch_deg, geo.roll_deg) == pytest.approx((pitch, roll))


def test_horizon_outside_the_photo_or_undefined() -> None:
    geo = co.overlay(_scene((-60.0, 0.0, 0.0)))  # looking far down: the horizon is above the photo
    assert geo is not None and geo.horizon is None
    assert co.horizon_line((0.0, 0.0, 1.0), F, (CX, CY), W, H) is None  # looking straight down


def test_calibration_up_and_horizontal_vanishing_points() -> None:
    rotate = (-5.0, 30.0, 2.0)
    r = co.rotation_matrix(rotate)
    calib = {"method": "vanishing-points", "found": True, "confidence": 0.75, "segments": 88,
             "focal_from_lines": True, "up_camera": r[1], "horizontal_axes_camera": [r[0], r[2]]}
    geo = co.overlay(_scene(rotate, calibration=calib, orientation_source="vanishing-points"))
    assert geo is not None
    assert [v.name for v in geo.vanishing] == ["vertical", "horizontal 1", "horizontal 2"]
    for vp, axis in zip(geo.vanishing[1:], (r[0], r[2]), strict=True):
        x, y, z = axis
        assert vp.point == pytest.approx((CX + F * x / -z, CY - F * y / -z))
        assert vp.point is not None and abs(vp.point[1] - _v_at(geo.horizon, vp.point[0])) < 1e-6  # on the horizon
        assert 1 <= len(vp.lines) <= co.FAN_LINES
        for (a, b) in vp.lines:  # each guide line lies on a line through the vanishing point
            cross = (a[0] - vp.point[0]) * (b[1] - vp.point[1]) - (a[1] - vp.point[1]) * (b[0] - vp.point[0])
            assert abs(cross) < 1e-6 * math.hypot(b[0] - a[0], b[1] - a[1]) * math.hypot(*vp.point)
            for u, v in (a, b):
                assert -1e-6 <= u <= W + 1e-6 and -1e-6 <= v <= H + 1e-6
    # up from the calibration equals up from the rotation: the same horizon either way
    plain = co.overlay(_scene(rotate))
    assert plain is not None and _flat(plain.horizon) == pytest.approx(_flat(geo.horizon))


def test_calibration_up_is_used_only_when_the_orientation_came_from_it() -> None:
    calib = {"found": True, "up_camera": co.up_from_rotate((10.0, 0.0, 0.0)), "horizontal_axes_camera": []}
    from_lines = co.overlay(_scene((0.0, 0.0, 0.0), calibration=calib, orientation_source="vanishing-points"))
    from_ground = co.overlay(_scene((0.0, 0.0, 0.0), calibration=calib, orientation_source="ground"))
    older = co.overlay(_scene((0.0, 0.0, 0.0), calibration=calib))  # no orientation_source: older scene
    assert from_lines is not None and from_ground is not None and older is not None
    assert from_lines.pitch_deg == pytest.approx(10.0) and older.pitch_deg == pytest.approx(10.0)
    assert from_ground.pitch_deg == pytest.approx(0.0)  # what the built camera has
    not_found = co.overlay(_scene((0.0, 0.0, 0.0), calibration=dict(calib, found=False,
                                                                 horizontal_axes_camera=[[1, 0, 0]])))
    assert not_found is not None and not_found.pitch_deg == pytest.approx(0.0)
    assert [v.name for v in not_found.vanishing] == ["vertical"]  # a weak estimate draws no horizontals


def test_vanishing_point_inside_the_photo_gets_a_star_of_lines() -> None:
    point, direction = co.project_direction((0.1, 0.05, -1.0), F, (CX, CY))
    assert point == pytest.approx((CX + 100.0, CY - 50.0))
    lines = co.fan(point, direction, W, H)
    assert len(lines) == co.FAN_LINES
    angles = sorted(_angle_deg(s) for s in lines)
    assert len({round(a, 6) for a in angles}) == co.FAN_LINES  # all different


def test_clip_line() -> None:
    assert _flat(co.clip_line((-10.0, 5.0), (1.0, 0.0), 100.0, 50.0)) == pytest.approx([0.0, 5.0, 100.0, 5.0])
    assert _flat(co.clip_line((0.0, 0.0), (1.0, 1.0), 100.0, 50.0)) == pytest.approx([0.0, 0.0, 50.0, 50.0])
    assert co.clip_line((0.0, 60.0), (1.0, 0.0), 100.0, 50.0) is None  # below the rectangle
    assert co.clip_line((0.0, 0.0), (0.0, 0.0), 100.0, 50.0) is None


def test_overlay_and_description_of_unusable_or_older_cameras() -> None:
    assert co.overlay({}) is None and co.describe({}) == ""
    for broken in ({"focal_px": 0}, {"width": None}, {"focal_px": float("nan")}, {"rotate": [1, 2]}):
        scene = _scene()
        scene["camera"].update(broken)
        if "rotate" in broken:
            geo = co.overlay(scene)  # an unreadable rotation: level
            assert geo is not None and geo.pitch_deg == 0.0
        else:
            assert co.overlay(scene) is None
    example = json.loads(SCENE.read_text())  # scene@1 before the calibration fields
    assert co.describe(example) == "FOV 60.0 deg, 31.2 mm (default 60 deg); pitch -5.0, roll 1.0 deg"


def test_description_names_the_sources() -> None:
    r = co.rotation_matrix((-5.0, 0.0, 1.0))
    scene = _scene((-5.0, 0.0, 1.0), focal_source="vanishing-points", orientation_source="vanishing-points",
                   calibration={"found": True, "confidence": 0.834, "segments": 120, "up_camera": r[1],
                                "horizontal_axes_camera": [r[0], r[2]]})
    line = co.describe(scene)
    fov = math.degrees(2 * math.atan(W / (2 * F)))
    assert line == (f"FOV {fov:.1f} deg, {ci.focal_mm_from_fov(fov):.1f} mm (from the lines); "
                    "pitch -5.0, roll 1.0 deg (from the lines); vanishing points: confidence 0.83, 120 segments")
    for source, text in (("user", "typed"), ("exif", "EXIF"), ("default", "default 60 deg")):
        s = copy.deepcopy(scene)
        s["camera"]["focal_source"] = source
        assert f"mm ({text});" in co.describe(s)
    s = copy.deepcopy(scene)
    s["camera"].update(orientation_source="ground", calibration={"found": False, "segments": 3})
    assert co.describe(s).endswith("pitch -5.0, roll 1.0 deg (from the ground); vanishing points not found, 3 segments")


# ----------------------------------------------------------------------------- typed values


def test_camera_request_fields_and_options() -> None:
    assert ci.camera_request() == ci.CameraRequest()
    assert ci.camera_request("", " ", "").fields() == {} and ci.CameraRequest().options() == {}
    req = ci.camera_request("72.5", "", "1,4", True)
    assert req.fields() == {"fov_deg": 72.5}
    assert req.options() == {"camera_height_m": 1.4, "ignore_exif": True}
    mm = ci.camera_request(None, "50")
    assert mm.fields()["fov_deg"] == pytest.approx(math.degrees(2 * math.atan(18 / 50)))
    assert ci.focal_mm_from_fov(mm.fields()["fov_deg"]) == pytest.approx(50.0)
    assert ci.camera_request(fov=45).fov_deg == 45.0


@pytest.mark.parametrize("fov, focal, height, message", [
    ("1", "", "", "field of view must be between 1 and 179 degrees (exclusive), got 1"),
    ("179", "", "", "got 179"),
    ("0.5", "", "", "got 0.5"),
    ("-30", "", "", "got -30"),
    ("nan", "", "", "got nan"),
    ("inf", "", "", "got inf"),
    ("1e400", "", "", "got inf"),
    ("wide", "", "", "field of view: not a number: 'wide'"),
    ("", "0", "", "focal length must be a positive number of mm, got 0"),
    ("", "-35", "", "got -35"),
    ("", "nan", "", "got nan"),
    ("", "0.1", "", "focal length 0.1 mm gives a 179.4 degree field of view"),
    ("", "5000", "", "gives a 0.4125 degree field of view"),
    ("", "", "0", "camera height must be more than 0 and at most 1000 m, got 0"),
    ("", "", "-1.6", "got -1.6"),
    ("", "", "inf", "got inf"),
    ("", "", "nan", "got nan"),
    ("", "", "2000", "got 2000"),
    ("60", "35", "", "give a field of view or a focal length, not both"),
])
def test_bad_camera_values_are_one_line_errors(fov: str, focal: str, height: str, message: str) -> None:
    with pytest.raises(ci.CameraInputError) as info:
        ci.camera_request(fov, focal, height)
    assert message in str(info.value) and "\n" not in str(info.value)
