"""What the engine made of the photo's camera, as 2-D lines over the photo and one line of text (the
panel draws them over its thumbnail after a build).

Geometry, in the scene's full-resolution pixels (u right, v down; docs/SCENE_SCHEMA.md):

- A camera-frame direction d = (x, y, z) (x right, y up, z backward; the camera looks down -Z) has its
  vanishing point at u = cx + f x / (-z), v = cy - f y / (-z); both senses of a line's direction give the
  same point. With z ~ 0 the point is at infinity: the lines of that direction stay parallel in the
  photo, along (x, -y).
- The horizon: the image points whose ray ((u - cx) / f, -(v - cy) / f, -1) is perpendicular to world
  up, the line  a (u - cx) - b (v - cy) = c f  for up = (a, b, c). A level camera's horizon is the row
  of the principal point; pitched up by p it moves down by f tan p; a roll r tilts it by r.
- World up seen from the camera: `camera.calibration.up_camera` when the orientation came from the
  vanishing points (`camera.orientation_source`, absent in older scenes), else from `camera.rotate`
  (Maya xyz Euler, R = Rz Ry Rx, camera to world): up = R^T (0, 1, 0). Pitch = atan2(-up_z, up_y), roll
  = asin(up_x), as the engine defines them.
- The vanishing directions: world vertical (up) and the scene's two Manhattan horizontal directions
  (`calibration.horizontal_axes_camera`, only when the calibration found its frame), each drawn as a
  fan of lines converging on its vanishing point, clipped to the photo.

Pure standard library (no numpy, no Qt), Python 3.7+.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .camera_input import FILM_BACK_MM, focal_mm_from_fov

FAN_LINES = 5  # guide lines per vanishing direction
_EPS = 1e-9

FOCAL_SOURCES = {"user": "typed", "exif": "EXIF", "exif35": "EXIF, 35 mm equivalent",
                 "vanishing-points": "from the lines", "default": "default 60 deg",
                 "calibration": "calibration"}
ORIENTATION_SOURCES = {"vanishing-points": "from the lines", "ground": "from the ground",
                       "objects": "from the objects", "level": "assumed level"}


@dataclass(frozen=True)
class VanishingDirection:
    """One direction's vanishing point (`point`, full-resolution pixels; None at infinity), its image
    direction (unit (du, dv): from the principal point towards the point, or the parallel lines'
    direction at infinity) and the guide lines drawn for it."""

    name: str  # "vertical", "horizontal 1", "horizontal 2"
    point: tuple[float, float] | None
    direction: tuple[float, float]
    lines: list[tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=list)


@dataclass(frozen=True)
class Overlay:
    """Everything to draw over a photo of `width` x `height` pixels."""

    width: float
    height: float
    principal: tuple[float, float]
    focal_px: float
    up: tuple[float, float, float]
    horizon: tuple[tuple[float, float], tuple[float, float]] | None  # clipped to the photo; None: not in it
    vanishing: list[VanishingDirection]

    @property
    def pitch_deg(self) -> float:
        return pitch_roll(self.up)[0]

    @property
    def roll_deg(self) -> float:
        return pitch_roll(self.up)[1]


# --------------------------------------------------------------------------- rotations

def rotation_matrix(rotate_deg: Sequence[float]) -> list[list[float]]:
    """R = Rz @ Ry @ Rx of Maya's xyz Euler angles in degrees (camera to world, column vectors)."""
    rx, ry, rz = (math.radians(float(a)) for a in rotate_deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    return [[cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
            [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
            [-sy, cy * sx, cy * cx]]


def up_from_rotate(rotate_deg: Sequence[float]) -> tuple[float, float, float]:
    """World up (0, 1, 0) in the camera frame: R^T (0, 1, 0), i.e. R's second row."""
    row = rotation_matrix(rotate_deg)[1]
    return (row[0], row[1], row[2])


def pitch_roll(up: Sequence[float]) -> tuple[float, float]:
    """(pitch, roll) in degrees of the camera that sees world up as `up` (pitch > 0: looking up)."""
    x, y, z = _unit(up)
    return math.degrees(math.atan2(-z, y)), math.degrees(math.asin(max(-1.0, min(1.0, x))))


def _unit(v: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(c) for c in v)
    n = math.sqrt(x * x + y * y + z * z)
    if not n > _EPS or not math.isfinite(n):
        raise ValueError(f"not a direction: {list(v)}")
    return (x / n, y / n, z / n)


# --------------------------------------------------------------------------- 2-D geometry

def clip_line(point: Sequence[float], direction: Sequence[float], width: float, height: float
              ) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The part of the infinite line through `point` along `direction` inside [0, width] x [0, height]
    (Liang-Barsky), or None when it misses the rectangle (or only touches a corner)."""
    px, py = float(point[0]), float(point[1])
    dx, dy = float(direction[0]), float(direction[1])
    if abs(dx) < _EPS and abs(dy) < _EPS:
        return None
    t0, t1 = -math.inf, math.inf
    for p, q in ((-dx, px), (dx, width - px), (-dy, py), (dy, height - py)):
        if abs(p) < _EPS:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
    if not t1 - t0 > 1e-6 * math.hypot(width, height) / math.hypot(dx, dy):
        return None
    return ((px + t0 * dx, py + t0 * dy), (px + t1 * dx, py + t1 * dy))


def project_direction(d: Sequence[float], focal_px: float, principal: Sequence[float]
                      ) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    """(vanishing point or None at infinity, unit image direction) of camera-frame direction `d`."""
    x, y, z = _unit(d)
    cx, cy = float(principal[0]), float(principal[1])
    if abs(z) < 1e-6:
        n = math.hypot(x, y)
        return None, (x / n, -y / n)
    u, v = cx + focal_px * x / -z, cy - focal_px * y / -z
    du, dv = u - cx, v - cy
    n = math.hypot(du, dv)
    # on the optical axis the direction from the centre is undefined: any will do for the arrow
    return (u, v), ((du / n, dv / n) if n > _EPS else (0.0, -1.0))


def horizon_line(up: Sequence[float], focal_px: float, principal: Sequence[float], width: float,
                 height: float) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The horizon of a camera that sees world up as `up`, clipped to the photo (None: outside it, or a
    camera looking straight up or down)."""
    a, b, c = _unit(up)
    cx, cy = float(principal[0]), float(principal[1])
    nn = a * a + b * b  # the line: (a, -b) . (u - cx, v - cy) = c f
    if nn < 1e-12:
        return None
    k = c * focal_px / nn
    return clip_line((cx + a * k, cy - b * k), (b, a), width, height)


def fan(point: tuple[float, float] | None, direction: Sequence[float], width: float, height: float,
        count: int = FAN_LINES) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """`count` lines through a vanishing point (or parallel along `direction` when it is at infinity)
    spread over the photo, each clipped to it."""
    lines = []
    if point is None:
        dx, dy = float(direction[0]), float(direction[1])
        nx, ny = -dy, dx
        offsets = [nx * u + ny * v for u, v in ((0, 0), (width, 0), (0, height), (width, height))]
        lo, hi = min(offsets), max(offsets)
        mx, my = width / 2.0, height / 2.0
        mid = nx * mx + ny * my
        for k in range(count):
            o = lo + (hi - lo) * (k + 0.5) / count - mid
            seg = clip_line((mx + nx * o, my + ny * o), (dx, dy), width, height)
            if seg is not None:
                lines.append(seg)
        return lines
    px, py = point
    inside = 0.0 <= px <= width and 0.0 <= py <= height
    if inside:
        angles = [math.pi * (k + 0.5) / count for k in range(count)]
    else:  # the photo as seen from the point: less than 180 degrees, around the direction to its centre
        base = math.atan2(height / 2.0 - py, width / 2.0 - px)
        rel = [_wrap(math.atan2(v - py, u - px) - base) for u, v in ((0, 0), (width, 0), (0, height), (width, height))]
        lo, hi = min(rel), max(rel)
        angles = [base + lo + (hi - lo) * (k + 0.5) / count for k in range(count)]
    for a in angles:
        seg = clip_line((px, py), (math.cos(a), math.sin(a)), width, height)
        if seg is not None:
            lines.append(seg)
    return lines


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


# --------------------------------------------------------------------------- from a scene

def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        v = float(value)
    except OverflowError:  # a 400-digit integer
        return None
    return v if math.isfinite(v) else None


def _triple(value: Any) -> tuple[float, float, float] | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        return None
    x, y, z = (_number(c) for c in value)
    if x is None or y is None or z is None:
        return None
    return (x, y, z)


def _vec3(value: Any) -> tuple[float, float, float] | None:
    """A non-zero finite 3-vector, or None."""
    v = _triple(value)
    return v if v is not None and math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2) > _EPS else None


def _calibration(camera: Mapping[str, Any]) -> Mapping[str, Any]:
    calib = camera.get("calibration")
    return calib if isinstance(calib, Mapping) else {}


def scene_up(camera: Mapping[str, Any]) -> tuple[float, float, float]:
    """World up in the camera frame for a scene's camera (see the module docstring)."""
    calib = _calibration(camera)
    up = _vec3(calib.get("up_camera"))
    source = camera.get("orientation_source")
    if up is not None and source in (None, "vanishing-points") and calib.get("found", True) is not False:
        return _unit(up)
    rotate = _triple(camera.get("rotate"))
    return _unit(up_from_rotate(rotate)) if rotate is not None else (0.0, 1.0, 0.0)


def overlay(scene: Mapping[str, Any], fan_lines: int = FAN_LINES) -> Overlay | None:
    """The lines to draw over the photo for a scene@1 dict; None when its camera is unusable."""
    camera = scene.get("camera") if isinstance(scene, Mapping) else None
    if not isinstance(camera, Mapping):
        return None
    w, h, f = _number(camera.get("width")), _number(camera.get("height")), _number(camera.get("focal_px"))
    if w is None or h is None or f is None or not (w > 0 and h > 0 and f > 0):
        return None
    pp = camera.get("principal_px")
    cx = _number(pp[0]) if isinstance(pp, Sequence) and len(pp) == 2 else None
    cy = _number(pp[1]) if isinstance(pp, Sequence) and len(pp) == 2 else None
    principal = (cx if cx is not None else w / 2.0, cy if cy is not None else h / 2.0)
    try:
        up = scene_up(camera)
    except ValueError:
        return None
    directions: list[tuple[str, tuple[float, float, float]]] = [("vertical", up)]
    calib = _calibration(camera)
    axes = calib.get("horizontal_axes_camera")
    if calib.get("found", True) is not False and isinstance(axes, Sequence) and not isinstance(axes, str):
        for i, axis in enumerate(list(axes)[:2]):
            v = _vec3(axis)
            if v is not None:
                directions.append((f"horizontal {i + 1}", v))
    vanishing = []
    for name, d in directions:
        point, direction = project_direction(d, f, principal)
        vanishing.append(VanishingDirection(name, point, direction, fan(point, direction, w, h, fan_lines)))
    return Overlay(w, h, principal, f, up, horizon_line(up, f, principal, w, h), vanishing)


def describe(scene: Mapping[str, Any]) -> str:
    """One line: field of view and focal length (35 mm film back) with their source, pitch and roll with
    theirs, and what the photo's lines gave. Empty for a scene without a usable camera."""
    camera = scene.get("camera") if isinstance(scene, Mapping) else None
    if not isinstance(camera, Mapping):
        return ""
    w, f = _number(camera.get("width")), _number(camera.get("focal_px"))
    fov = _number(camera.get("fov_horizontal_deg"))
    if fov is None and w is not None and f is not None and w > 0 and f > 0:
        fov = math.degrees(2.0 * math.atan(w / (2.0 * f)))
    if fov is None:
        return ""
    mm = _number(camera.get("focal_length_mm"))
    if mm is None:
        mm = focal_mm_from_fov(fov)
    aperture = _number(camera.get("horizontal_aperture_mm"))
    film = "" if aperture is None or abs(aperture - FILM_BACK_MM) < 1e-6 else f" on {aperture:g} mm"
    source = camera.get("focal_source")
    parts = [f"FOV {fov:.1f} deg, {mm:.1f} mm{film}" + (f" ({FOCAL_SOURCES.get(str(source), str(source))})"
                                                         if source else "")]
    try:
        angles: tuple[float, float] | None = pitch_roll(scene_up(camera))
    except ValueError:
        angles = None
    if angles is not None:
        pitch, roll = angles
        how = camera.get("orientation_source")
        parts.append(f"pitch {pitch:.1f}, roll {roll:.1f} deg"
                     + (f" ({ORIENTATION_SOURCES.get(str(how), str(how))})" if how else ""))
    calib = _calibration(camera)
    if calib:
        segments = _number(calib.get("segments"))
        count = f", {int(segments)} segments" if segments is not None else ""
        confidence = _number(calib.get("confidence"))
        if calib.get("found") is False:
            parts.append(f"vanishing points not found{count}")
        elif confidence is not None:
            parts.append(f"vanishing points: confidence {confidence:.2f}{count}")
    return "; ".join(parts)
