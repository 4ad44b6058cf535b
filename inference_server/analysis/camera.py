"""The photo's camera: intrinsics from EXIF / user / default (the scene's pinhole, film back and Euler
conventions live one level below, in inference_server/conventions.py, shared with the builders; they
are re-exported here for the analysis).
"""

from __future__ import annotations

import math

from ..conventions import (
    DEFAULT_APERTURE_MM,
    Intrinsics,
    backproject,
    euler_xyz_to_matrix,
    matrix_to_euler_xyz,
    maya_film,
    pixel_rays,
    project,
)

__all__ = ["DEFAULT_APERTURE_MM", "DEFAULT_HFOV_DEG", "FULL_FRAME_DIAGONAL_MM", "Intrinsics", "backproject",
           "euler_xyz_to_matrix", "focal_from_fov", "intrinsics_for", "matrix_to_euler_xyz", "maya_film",
           "pixel_rays", "project"]

DEFAULT_HFOV_DEG = 60.0
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


def focal_from_fov(width: int, hfov_deg: float) -> float:
    if not 1.0 <= hfov_deg <= 179.0:
        raise ValueError(f"field of view must be within 1..179 degrees, got {hfov_deg}")
    return width / (2.0 * math.tan(math.radians(hfov_deg) / 2.0))


def intrinsics_for(
    width: int,
    height: int,
    *,
    focal_px: float | None = None,
    fov_deg: float | None = None,
    exif_focal_mm: float | None = None,
    exif_focal_35mm: float | None = None,
    exif_sensor_width_mm: float | None = None,
) -> Intrinsics:
    """Choose the focal length: user value > EXIF (focal + sensor width) > EXIF 35 mm-equivalent > default.

    The 35 mm-equivalent focal length is defined on the diagonal: f_px = f35 * diag_px / 43.27 mm.
    The default is a 60 degree horizontal field of view (a typical phone main camera).
    """
    cx, cy = width / 2.0, height / 2.0
    if focal_px is not None:
        if not (focal_px > 0 and math.isfinite(focal_px)):
            raise ValueError(f"focal length in pixels must be positive, got {focal_px}")
        return Intrinsics(float(focal_px), cx, cy, width, height, "user")
    if fov_deg is not None:
        return Intrinsics(focal_from_fov(width, fov_deg), cx, cy, width, height, "user")
    if exif_focal_mm and exif_sensor_width_mm and exif_focal_mm > 0 and exif_sensor_width_mm > 0:
        return Intrinsics(exif_focal_mm * width / exif_sensor_width_mm, cx, cy, width, height, "exif")
    if exif_focal_35mm and exif_focal_35mm > 0:
        diag_px = math.hypot(width, height)
        return Intrinsics(exif_focal_35mm * diag_px / FULL_FRAME_DIAGONAL_MM, cx, cy, width, height, "exif35")
    return Intrinsics(focal_from_fov(width, DEFAULT_HFOV_DEG), cx, cy, width, height, "default")
