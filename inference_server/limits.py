"""Physical and size limits of what a user may hand the engine, in one place (docs/CLI.md, "What bad
input gets"), and the checks that enforce them with one-line UserErrors.

Camera: a horizontal field of view strictly inside (1, 179) degrees; a focal length in pixels is
held to the same bound through the image width (f = w / (2 tan(fov / 2))). Camera height (the prior
for relative depth): (0, 1000] m. Metric depth: a value outside [DEPTH_MIN_M, DEPTH_MAX_M] is "no
depth here" (as NaN, inf, 0 and negative values are: a renderer's 1e10 background is sky), and a map
with values but none in that range is refused (not metres); relative depth and disparity far from 1
are rescaled (their scale means nothing, float32 overflow does). JSON a user hands us (requests, shapes
tables, scenes): at most so many bytes and so deep a nesting.

Only the standard library and numpy: the CLI, the server and the camera code import it.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import UserError

FOV_MIN_DEG = 1.0  # horizontal field of view, exclusive bounds
FOV_MAX_DEG = 179.0
CAMERA_HEIGHT_MAX_M = 1000.0  # camera height prior: (0, CAMERA_HEIGHT_MAX_M]
DEPTH_MIN_M = 1e-3  # metric z-depth: [DEPTH_MIN_M, DEPTH_MAX_M]; outside = no depth at that pixel
DEPTH_MAX_M = 1e5
UNITLESS_MEDIAN_MIN = 1e-3  # relative depth / disparity with a median outside this is rescaled to median 1
UNITLESS_MEDIAN_MAX = 1e3

REQUEST_MAX_BYTES = 1 << 20  # one server request line
REQUEST_MAX_DEPTH = 32  # nesting of a request's JSON (a request itself is 2-3 deep)
SHAPES_MAX_BYTES = 4 << 20  # a user shapes table (the shipped one is ~20 KB)
SHAPES_MAX_DEPTH = 16
SCENE_MAX_BYTES = 256 << 20  # a scene@1 JSON file
SCENE_MAX_DEPTH = 100  # ~45 levels of child objects (the engine makes at most 5)


def focal_px_range(width: int | float) -> tuple[float, float]:
    """(lowest, highest) focal length in pixels, exclusive, for an image `width` pixels wide: the focal
    lengths whose horizontal field of view lies inside (FOV_MIN_DEG, FOV_MAX_DEG)."""
    w = float(width)
    return (w / (2.0 * math.tan(math.radians(FOV_MAX_DEG) / 2.0)),
            w / (2.0 * math.tan(math.radians(FOV_MIN_DEG) / 2.0)))


def fov_ok(fov_deg: float) -> bool:
    return math.isfinite(fov_deg) and FOV_MIN_DEG < fov_deg < FOV_MAX_DEG


def check_fov_deg(fov_deg: Any, what: str = "field of view") -> float:
    """`fov_deg` as a float, or UserError unless a finite number strictly inside (1, 179) degrees."""
    v = _number(fov_deg, what)
    if not fov_ok(v):
        raise UserError(f"{what} must be between {FOV_MIN_DEG:g} and {FOV_MAX_DEG:g} degrees (exclusive), "
                        f"got {fov_deg}")
    return v


def check_focal_px(focal_px: Any, width: int | float | None = None, what: str = "focal length") -> float:
    """`focal_px` as a float; UserError unless finite and positive and, with the image `width`, giving a
    horizontal field of view inside (1, 179) degrees."""
    v = _number(focal_px, what)
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"{what} in pixels must be a positive number, got {focal_px}")
    if width is not None and width > 0:
        lo, hi = focal_px_range(width)
        if not lo < v < hi:
            fov = math.degrees(2.0 * math.atan(float(width) / (2.0 * v)))
            raise UserError(f"{what} {v:g} px gives a {fov:.3g} degree field of view on the {int(width)} px wide "
                            f"photo: it must give {FOV_MIN_DEG:g}..{FOV_MAX_DEG:g} degrees, i.e. lie between "
                            f"{lo:.4g} and {hi:.4g} px (exclusive)")
    return v


def check_camera_height(height_m: Any, what: str = "camera height") -> float:
    """`height_m` as a float, or UserError unless within (0, 1000] m."""
    v = _number(height_m, what)
    if not (math.isfinite(v) and 0.0 < v <= CAMERA_HEIGHT_MAX_M):
        raise UserError(f"{what} must be more than 0 and at most {CAMERA_HEIGHT_MAX_M:g} m, got {height_m}")
    return v


def clip_metric_depth(depth: Any, what: str) -> Any:
    """A float metric z-depth map (NaN = no depth) with every value outside [DEPTH_MIN_M, DEPTH_MAX_M] set
    to NaN (a far background marker is no depth); UserError when the map held values and none is in the
    range (it is not in metres). A map without any value is returned as is (the engine warns)."""
    import numpy as np

    d = np.asarray(depth)
    valid = np.isfinite(d) & (d > 0)
    if not valid.any():
        return d
    inside = valid & (d >= DEPTH_MIN_M) & (d <= DEPTH_MAX_M)
    if not inside.any():
        lo, hi = float(np.min(d[valid])), float(np.max(d[valid]))
        raise UserError(f"{what} holds no value within {DEPTH_MIN_M:g}..{DEPTH_MAX_M:g} m (its values are "
                        f"{lo:.3g}..{hi:.3g}): metric depth must be metres; for other units use --depth-scale "
                        f"(16-bit PNG) or --depth-kind relative/disparity")
    if inside.sum() == valid.sum():
        return d
    out = d.copy()
    out[valid & ~inside] = np.nan
    return out


def rescale_unitless_depth(depth: Any) -> Any:
    """Relative depth or disparity (no unit, any scale) divided by its median when that median is outside
    [UNITLESS_MEDIAN_MIN, UNITLESS_MEDIAN_MAX], so that the float32 arithmetic of the calibration cannot
    overflow (1e38 everywhere) or vanish; a scale-free input means the same after it. Other maps are
    returned as they are (bit for bit)."""
    import numpy as np

    d = np.asarray(depth)
    valid = np.isfinite(d) & (d > 0)
    if not valid.any():
        return d
    median = float(np.median(d[valid].astype(np.float64)))
    if UNITLESS_MEDIAN_MIN <= median <= UNITLESS_MEDIAN_MAX:
        return d
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = (d.astype(np.float64) / median).astype(np.float32)
    out[~(np.isfinite(out) & (out > 0))] = np.nan
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise UserError(f"{what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{what} must be a number, got {value!r}") from None
