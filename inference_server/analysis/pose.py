"""Stage 3: ground and gravity. The ground plane (the depth calibration's, else RANSAC through the ground
classes: ground.py) gives camera height, pitch and roll; the scale of relative depth is fixed by the
camera-height prior (or by class size priors); the photo's vanishing points (calib/) give pitch and roll
when trusted and turn the world to the scene's axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .camera import backproject, euler_xyz_to_matrix
from .depth_stage import DepthStage
from .grid import Grid
from .ground import PlaneFit, Pose, angles_from_normal, fit_plane, pose_from_angles
from .grouping import Grouping
from .shapes import ShapeSpec

if TYPE_CHECKING:
    from ..calib import CameraEstimate

MAX_GROUND_POINTS = 40000
MIN_DEPTH_PIXELS = 20  # fewer valid depths than this: the object is placed from priors


@dataclass(frozen=True)
class Ground:
    """The ground plane (in the scaled depth's units) and the scale that makes the depth metric."""

    plane: PlaneFit | None
    scale: float
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class CameraPose:
    pose: Pose
    orientation: str  # where pitch and roll came from: vanishing-points | ground | objects | level
    warnings: tuple[str, ...]


def fit_ground(grid: Grid, depth: DepthStage, inst: Grouping, specs: list[ShapeSpec], depth_kind: str,
               camera_height_m: float) -> Ground:
    """The ground plane and depth scale from the unscaled instances."""
    plane = None
    calib = depth.calib
    if calib is not None:  # the calibration's flat ground: RANSAC's tight band can tilt in network noise
        plane = PlaneFit(calib.normal, calib.camera_height_m, calib.inlier_ratio, calib.n_ground)
    elif depth.depth is not None:
        for roles in (("ground",), ("water",)):
            pts = _points_of_roles(grid, inst, specs, roles)
            if pts is not None:
                plane = fit_plane(pts)
            if plane is not None:
                break
    scale = 1.0
    warnings: tuple[str, ...] = ()
    if depth_kind != "metric" and depth.depth is not None and calib is None:
        if plane is not None:
            scale = camera_height_m / plane.d
        else:
            scale, warnings = _scale_from_priors(grid, inst, specs)
    if plane is not None:
        plane = PlaneFit(plane.normal, plane.d * scale, plane.inlier_ratio, plane.n_points)
    return Ground(plane, scale, warnings)


def _points_of_roles(grid: Grid, inst: Grouping, specs: list[ShapeSpec],
                     roles: tuple[str, ...]) -> np.ndarray | None:
    """Camera-frame points of the ground (or water) instances, strided to a bounded count."""
    groups, px = inst.groups, inst.px
    idx = [i for i in range(groups.n) if specs[int(inst.inst_label[i])].role in roles]
    total = sum(int(groups.counts()[i]) for i in idx)
    if total == 0 or px.depth is None:
        return None
    stride = max(1, total // MAX_GROUND_POINTS)
    parts = []
    for i in idx:
        sl = groups.span(i)
        u, v, d = px.u[sl][::stride], px.v[sl][::stride], px.depth[sl][::stride]
        ok = np.isfinite(d)
        parts.append(backproject(u[ok], v[ok], d[ok], grid.intr))
    pts = np.concatenate(parts)
    return pts if len(pts) else None


def _scale_from_priors(grid: Grid, inst: Grouping, specs: list[ShapeSpec]) -> tuple[float, tuple[str, ...]]:
    """Relative depth without ground: make trusted-height classes (people, cars, doors) their size."""
    f = grid.intr.focal_px
    st = inst.stats
    ratios = []
    for i in range(inst.groups.n):
        spec = specs[int(inst.inst_label[i])]
        med = st.depth[i, 2]
        if not spec.ref or not np.isfinite(med):
            continue
        x0, y0, x1, y1 = st.bbox[i]
        if y1 - y0 < 8 or y0 <= 0 or y1 >= grid.h:  # cut by the frame: height unknown
            continue
        ratios.append(spec.size[1] * f / ((y1 - y0) * med))
    if ratios:
        return float(np.median(ratios)), (f"no ground visible: relative depth scaled by class size priors "
                                          f"({len(ratios)} objects)",)
    return 1.0, ("no ground and no object of known size: relative depth left unscaled (units arbitrary)",)


def camera_pose(grid: Grid, depth: DepthStage, inst: Grouping, specs: list[ShapeSpec], ground: Ground,
                camera: CameraEstimate | None, depth_kind: str, camera_height_m: float) -> CameraPose:
    """The pose and where its pitch and roll came from: the vanishing points when trusted (a plane
    measured in metric depth wins), else the ground plane, else objects of known height, else level;
    the world turned to the scene's axes when the vanishing points give them. `inst`: scaled."""
    plane = ground.plane
    measured = plane is not None and depth.calib is None and depth_kind == "metric"

    def height() -> float:
        return _height_from_objects(grid, depth, inst, specs) or camera_height_m

    def pose(pitch: float, roll: float, h: float, orientation: str, *warnings: str) -> CameraPose:
        return CameraPose(_aligned(pose_from_angles(pitch, roll, h), camera), orientation, warnings)

    if camera is not None and camera.up is not None and not measured:
        pitch, roll = angles_from_normal(np.asarray(camera.up))
        if plane is not None:
            return pose(pitch, roll, plane.d, "vanishing-points")
        h = height()
        return pose(pitch, roll, h, "vanishing-points", f"no ground plane found: camera at {h:.2f} m, pitch "
                    f"{pitch:.1f} deg and roll {roll:.1f} deg from the vanishing points")
    if plane is not None:
        pitch, roll = angles_from_normal(plane.normal)
        return pose(pitch, roll, plane.d, "ground")
    h = height()
    level = _pitch_from_priors(grid, inst, specs, h) if depth.depth is None else None
    if level is None:
        return pose(0.0, 0.0, h, "level", f"no ground plane found: camera assumed level at {h:.2f} m")
    return pose(level, 0.0, h, "objects",
                f"no ground plane found: camera at {h:.2f} m, pitch {level:.1f} deg from objects of known "
                "height")


def _aligned(pose: Pose, camera: CameraEstimate | None) -> Pose:
    """The world turned about +Y so the scene's first horizontal axis runs along world X or Z (a
    street along an axis, as a layout artist sets it up); unchanged without vanishing points."""
    if camera is None or not camera.horizontals:
        return pose
    a = pose.R @ np.asarray(camera.horizontals[0])
    alpha = math.degrees(math.atan2(-a[2], a[0]))  # Ry(alpha) turns +X onto the axis
    psi = -(((alpha + 45.0) % 90.0) - 45.0)
    if abs(psi) < 1e-9:
        return pose
    return Pose(R=euler_xyz_to_matrix(0.0, psi, 0.0) @ pose.R, T=pose.T)


def _pitch_from_priors(grid: Grid, inst: Grouping, specs: list[ShapeSpec], h: float) -> float | None:
    """No depth: the pitch that puts the feet of trusted-height objects (people, cars) on the
    ground, each seen at the distance its prior height implies. Median over objects."""
    f, cy = grid.intr.focal_px, grid.intr.cy
    pitches = []
    for i in range(inst.groups.n):
        spec = specs[int(inst.inst_label[i])]
        x0, y0, x1, y1 = (float(b) for b in inst.stats.bbox[i])
        if not spec.ref or spec.standing is not True or y1 - y0 < 8 or y0 <= 0 or y1 >= grid.h:
            continue
        z = f * spec.size[1] / (y1 - y0)
        a, b = -(y1 - cy) * z / f, z  # camera-frame foot: y = a, -z = b; need cos(p) a + sin(p) b = -h
        r = math.hypot(a, b)
        if r < h:
            continue
        base = math.atan2(b, a)
        cands = [base + math.acos(-h / r), base - math.acos(-h / r)]
        p = min((math.remainder(c, 2 * math.pi) for c in cands), key=abs)
        if abs(p) < math.radians(60):
            pitches.append(math.degrees(p))
    return float(np.median(pitches)) if pitches else None


def _height_from_objects(grid: Grid, depth: DepthStage, inst: Grouping,
                         specs: list[ShapeSpec]) -> float | None:
    """Level camera, metric depth, no ground class: standing objects' feet give the height."""
    px = inst.px
    if depth.depth is None or px.depth is None:
        return None
    feet = []
    for i in range(inst.groups.n):
        spec = specs[int(inst.inst_label[i])]
        if spec.standing is not True or spec.flat or spec.role == "sky":
            continue
        sl = inst.groups.span(i)
        d = px.depth[sl]
        ok = np.isfinite(d)
        if ok.sum() < MIN_DEPTH_PIXELS:
            continue
        y = backproject(px.u[sl][ok], px.v[sl][ok], d[ok], grid.intr)[:, 1]
        feet.append(-float(np.percentile(y, 2.0)))
    if feet and np.median(feet) > 0.1:
        return float(np.median(feet))
    return None
