"""The scene@1 records: object names, JSON-friendly numbers, and the scene dict around the objects
(camera, ground, settings, warnings)."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .camera import Intrinsics, matrix_to_euler_xyz, maya_film
from .ground import PlaneFit, Pose, angles_from_normal

if TYPE_CHECKING:
    from ..calib import CameraEstimate
    from .depth_calib import DepthCalibration
    from .grid import Grid

NEAR_CLIP_M = 0.05
_NAME_RE = re.compile(r"[^a-z0-9]+")


def r(x: Any, nd: int = 6) -> Any:
    """JSON-friendly rounding (numpy scalars and arrays to plain floats)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [r(v, nd) for v in x]
    return round(float(x), nd) + 0.0


def _base_name(label: str) -> str:
    first = re.split(r"[;,]", str(label))[0]
    base = _NAME_RE.sub("_", first.strip().lower()).strip("_")
    if not base:
        base = "object"
    if not (base[0].isalpha() or base[0] == "_"):
        base = "_" + base
    return base


class Namer:
    """Unique object names: label_k for top-level objects, parent_k for children."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next: dict[str, int] = {}

    def top(self, label: str) -> str:
        base = _base_name(label)
        k = self.next.get(base, 1)
        while f"{base}_{k}" in self.used:
            k += 1
        self.next[base] = k + 1
        return self._take(f"{base}_{k}")

    def child(self, parent: str, k: int) -> str:
        name = f"{parent}_{k}"
        while name in self.used:
            name += "_"
        return self._take(name)

    def _take(self, name: str) -> str:
        self.used.add(name)
        return name


def renamed(obj: dict[str, Any], warnings: list[str], name: str) -> tuple[dict[str, Any], list[str]]:
    """A top-level object given another name, with its parts and warnings."""
    old, obj = obj["name"], {**obj, "name": name}
    obj["parts"] = [{**p, "name": name + p["name"][len(old):]} if str(p.get("name", "")).startswith(old)
                    else p for p in obj["parts"]]
    return obj, [name + w[len(old):] if w.startswith(old + ":") else w for w in warnings]


def scene_record(grid: Grid, full_size: tuple[int, int], source: dict[str, Any], options: Any, min_area: int,
                 pose: Pose, orientation: str, plane: PlaneFit | None, scale: float, far: float,
                 calib: DepthCalibration | None, camera: CameraEstimate | None, warnings: list[str],
                 objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The scene@1 dict: camera (full-resolution numbers), ground, settings, warnings, objects."""
    full_w, full_h = full_size
    sx0, sy0 = full_w / grid.w0, full_h / grid.h0  # the analysed camera, not the grid's
    intr0 = grid.intr0
    full_intr = Intrinsics(intr0.focal_px * sx0, intr0.cx * sx0, intr0.cy * sy0, full_w, full_h, intr0.source)
    film = maya_film(full_intr)
    rx, ry, rz = matrix_to_euler_xyz(pose.R)
    cam = {
        "name": "img2maya_cam", "translate": r(pose.T), "rotate": r((rx, ry, rz)),
        "focal_length_mm": r(film["focal_length_mm"]),
        "horizontal_aperture_mm": r(film["horizontal_aperture_mm"]),
        "vertical_aperture_mm": r(film["vertical_aperture_mm"]), "focal_px": r(full_intr.focal_px),
        "principal_px": r((full_intr.cx, full_intr.cy)), "width": full_w, "height": full_h,
        "focal_source": grid.intr.source, "fov_horizontal_deg": r(full_intr.hfov_deg),
        "near_clip_m": NEAR_CLIP_M, "far_clip_m": r(2.0 * far, 2),
        "orientation_source": orientation,
    }
    if camera is not None:
        cam["calibration"] = camera.record(sx0)
    pitch, roll = rx, rz
    if abs(ry) > 1e-9:  # a turned world: pitch and roll against gravity, not Euler angles
        pitch, roll = angles_from_normal(pose.R.T @ np.array([0.0, 1.0, 0.0]))
    if plane is not None:
        ground = {"found": True, "method": "ransac", "camera_height_m": r(plane.d), "pitch_deg": r(pitch),
                  "roll_deg": r(roll), "inlier_ratio": r(plane.inlier_ratio, 4),
                  "plane_camera": r([*plane.normal, plane.d]), "scale": r(scale)}
    elif orientation == "vanishing-points":
        ground = {"found": False, "method": "vanishing-points", "camera_height_m": r(pose.T[1]),
                  "pitch_deg": r(pitch), "roll_deg": r(roll), "scale": r(scale)}
    else:
        ground = {"found": False, "method": "prior", "camera_height_m": r(pose.T[1]), "pitch_deg": 0.0,
                  "roll_deg": 0.0, "scale": r(scale)}
    if calib is not None:
        ground.update(method="ground-calibrated", scale=r(calib.scale), depth_calibration=calib.record())
    src = dict(source)
    src.setdefault("width", full_w)
    src.setdefault("height", full_h)
    src["analysis_width"], src["analysis_height"] = grid.w0, grid.h0
    settings = asdict(options)
    settings["min_area_px_effective"] = int(round(min_area * grid.px_scale))
    settings["analysis_grid_px"] = [grid.w, grid.h]
    return {
        "schema": "img2maya/scene@1", "units": "m", "up_axis": "y",
        "generator": f"img2maya {__version__}", "source": src, "camera": cam, "ground": ground,
        "settings": settings, "warnings": list(dict.fromkeys(warnings)), "objects": objects,
    }
