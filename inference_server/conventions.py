"""The scene's own conventions, below both the analysis (which writes scenes) and the builders (which
read them): the pinhole camera, pixel centres and the Euler order (docs/ARCHITECTURE.md).

Camera frame x right, y up, z backward (the camera looks down -Z); pixel (u, v) has its centre at
(u + 0.5, v + 0.5); Euler angles are degrees in Maya's xyz rotate order, i.e. R = Rz @ Ry @ Rx acting
on column vectors; the Maya film back is fitted horizontally with square pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

DEFAULT_APERTURE_MM = 36.0  # full-frame film back; focal length follows so that the FOV is exact


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of an image of `width` x `height`."""

    focal_px: float
    cx: float
    cy: float
    width: int
    height: int
    source: str = "default"  # exif | exif35 | user | default | calibration

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.focal_px)))

    def scaled(self, s: float, width: int | None = None, height: int | None = None) -> Intrinsics:
        """The same camera for an image resized by factor `s` (pixel-centre convention kept)."""
        return replace(
            self,
            focal_px=self.focal_px * s,
            cx=self.cx * s,
            cy=self.cy * s,
            width=int(width if width is not None else round(self.width * s)),
            height=int(height if height is not None else round(self.height * s)),
        )


def maya_film(intr: Intrinsics, aperture_mm: float = DEFAULT_APERTURE_MM) -> dict[str, float]:
    """Maya camera numbers with the same horizontal FOV (film fit horizontal, square pixels)."""
    return {
        "focal_length_mm": intr.focal_px * aperture_mm / intr.width,
        "horizontal_aperture_mm": aperture_mm,
        "vertical_aperture_mm": aperture_mm * intr.height / intr.width,
    }


def euler_xyz_to_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """3x3 rotation for Maya's xyz rotate order (X applied first), angles in degrees."""
    a, b, c = (math.radians(v) for v in (rx, ry, rz))
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
    rx_m = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry_m = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz_m = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz_m @ ry_m @ rx_m


def matrix_to_euler_xyz(m: np.ndarray) -> tuple[float, float, float]:
    """Inverse of euler_xyz_to_matrix (degrees); ry in [-90, 90]."""
    m = np.asarray(m, dtype=float)
    sy = -m[2, 0]
    sy = max(-1.0, min(1.0, sy))
    ry = math.asin(sy)
    if abs(math.cos(ry)) > 1e-9:
        rx = math.atan2(m[2, 1], m[2, 2])
        rz = math.atan2(m[1, 0], m[0, 0])
    else:  # gimbal lock: put everything in rx
        rx = math.atan2(-m[1, 2], m[1, 1])
        rz = 0.0
    return (math.degrees(rx), math.degrees(ry), math.degrees(rz))


def backproject(u: np.ndarray, v: np.ndarray, depth: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Camera-frame points (N, 3) for pixel indices (u = column, v = row) and z-depths."""
    d = np.asarray(depth, dtype=np.float64)
    x = (np.asarray(u, dtype=np.float64) + 0.5 - intr.cx) * d / intr.focal_px
    y = -(np.asarray(v, dtype=np.float64) + 0.5 - intr.cy) * d / intr.focal_px
    return np.stack([x, y, -d], axis=-1)


def pixel_rays(u: np.ndarray, v: np.ndarray, intr: Intrinsics, rotation: np.ndarray) -> np.ndarray:
    """World directions (N, 3) of the rays through continuous image points (u, v) (pixel (col, row) has
    its centre at (col + 0.5, row + 0.5)), for a camera of world rotation `rotation`, scaled so that
    their camera-frame z is -1: the point at z-depth t along one is camera position + t * ray."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    return np.stack([(u - intr.cx) / intr.focal_px, -(v - intr.cy) / intr.focal_px, -np.ones(u.shape)],
                    axis=-1) @ rotation.T


def project(points_cam: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Continuous pixel coordinates (N, 2) of camera-frame points (in front: z < 0)."""
    p = np.asarray(points_cam, dtype=np.float64)
    d = -p[..., 2]
    u = p[..., 0] * intr.focal_px / d + intr.cx
    v = -p[..., 1] * intr.focal_px / d + intr.cy
    return np.stack([u, v], axis=-1)
