"""Stage 1: the depth the later stages use: checked for valid values, relative depth made metric by the
ground's own geometry (depth_calib.py), noisy depth median-filtered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .depth_calib import DepthCalibration, GroundData, calibrate_depth_map
from .grid import Grid
from .instances import depth_noise
from .shapes import ShapeSpec

NOISY_DEPTH = 0.005  # relative per-pixel depth noise above which the depth is median-filtered


@dataclass(frozen=True)
class DepthStage:
    """The grid's depth made ready: None when there is none (or no valid value)."""

    depth: np.ndarray | None  # metric z-depth (up to the ground scale for uncalibrated relative depth)
    calib: DepthCalibration | None  # relative depth made metric by the ground
    sigma: float  # relative per-pixel noise left after filtering (0: clean depth)
    warnings: tuple[str, ...]


def prepare_depth(grid: Grid, specs: list[ShapeSpec], kind: str, camera_height_m: float,
                  height_from_objects: bool, up: tuple[float, float, float] | None,
                  ground: Callable[[np.ndarray], GroundData],
                  given_noise: Callable[[np.ndarray], float]) -> DepthStage:
    """The depth stage of the grid's depth of `kind`. `ground` and `given_noise` give, for the depth
    as given, what the calibration needs that does not depend on the camera height (ground_data and
    noise_level: the caller may keep them)."""
    depth = grid.depth
    if depth is not None and not np.isfinite(depth).any():
        return DepthStage(None, None, 0.0, ("depth has no valid (finite, > 0) values: objects placed from "
                                            "class size priors",))
    if depth is None:
        return DepthStage(None, None, 0.0, ("no depth: objects placed from class size priors",))
    notes: list[str] = []
    calib = None
    given = depth  # noise is judged on the depth as given
    if kind != "metric":
        intr = grid.intr
        depth, calib, note = calibrate_depth_map(depth, grid.labels, specs, intr.focal_px, intr.cx, intr.cy,
                                                 camera_height_m, ground=ground(given), up=up,
                                                 estimate_height=height_from_objects)
        notes.append(note)
    noise = None
    if depth is not given:  # calibrated: the noise of the depth as given is the same for every camera height
        noise = given_noise(given)
    depth, sigma, warning = denoise(depth, given, noise)
    return DepthStage(depth, calib, sigma, tuple(notes) + ((warning,) if warning else ()))


def noise_level(depth: np.ndarray) -> float:
    """Relative per-pixel noise of a depth map (what denoise tests)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return depth_noise(np.log(depth)) / math.sqrt(6.0)


def denoise(depth: np.ndarray, given: np.ndarray | None = None,
            given_noise: float | None = None) -> tuple[np.ndarray, float, str | None]:
    """Per-pixel depth noise above ~0.5 % (sensor speckle, dithering) makes boxes thick along the
    view ray and cuts segments along false depth edges; a 5 x 5 median (which keeps occlusion
    steps) brings it down about fourfold. Clean or smooth depth is returned untouched. Also
    returns the relative per-pixel noise left (0 for clean depth) and the warning that says so.

    `given`: the depth as it came in, when `depth` is a calibrated map of it. Whether to filter is
    decided on `given`: a smooth network map raised to a power (depth_calib's map) has a larger
    relative pixel-to-pixel variation but no more noise, and the median (which commutes with the
    monotone map) would only cost time (~0.13 s on a 0.64 MP grid). `given_noise`: noise_level(given)
    when the caller has it already (it does not depend on the calibration)."""
    from scipy import ndimage

    if given is not None and given is not depth:
        if (noise_level(given) if given_noise is None else given_noise) < NOISY_DEPTH:
            return depth, 0.0, None
    sigma = noise_level(depth)
    if sigma < NOISY_DEPTH:
        return depth, 0.0, None
    filled = np.where(np.isfinite(depth), depth, np.inf)
    out = ndimage.median_filter(filled, size=5, mode="nearest")
    return (np.where(np.isfinite(depth) & np.isfinite(out), out, np.nan).astype(np.float32), sigma / 4.0,
            f"noisy depth (about {100 * sigma:.1f} % per pixel): median-filtered before fitting")
