"""Line segments of a photo (OpenCV's LSD), with the weight each gets as evidence of the scene's axes.

Segments are detected on a grey copy of at most ``DETECT_PIXELS`` pixels (LSD's cost grows
with the area; the axes need long, straight edges, not fine detail) and returned in the photo's own pixel
coordinates (continuous, pixel (col, row) centred at (col + 0.5, row + 0.5)). A segment's weight is its
length times the trust of the class under its midpoint (man-made structure 1, people and plants 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DETECT_PIXELS = 640 * 480  # LSD runs on a copy of at most this many pixels
MIN_LENGTH_FRAC = 0.025  # shorter segments (fraction of the detection image's diagonal) are dropped
MAX_SEGMENTS = 400  # the longest ones are kept

# How far a segment on a class of each role is trusted to follow the scene's axes (shapes.json roles).
ROLE_TRUST = {
    "building": 1.0, "wall": 1.0, "ceiling": 1.0, "furniture": 1.0, "object": 1.0,
    "ground": 0.6, "vehicle": 0.3,
    "person": 0.0, "vegetation": 0.0, "sky": 0.0, "water": 0.0, "other": 0.0,
}
UNLABELLED_TRUST = 1.0


@dataclass(frozen=True)
class Segments:
    """N line segments: endpoints (N, 4) as x1, y1, x2, y2 in photo pixels, and weights (N,)."""

    xy: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def length(self) -> np.ndarray:
        return np.hypot(self.xy[:, 2] - self.xy[:, 0], self.xy[:, 3] - self.xy[:, 1])


def _grey(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """uint8 luminance, downscaled so the long side is at most DETECT_SIDE; and the scale used."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, math.sqrt(DETECT_PIXELS / (h * w)))
    img = np.ascontiguousarray(rgb[..., :3] if rgb.ndim == 3 else rgb)
    if img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(np.float32)) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255)
        img = img.astype(np.uint8)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if s < 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey, s


def detect(rgb: np.ndarray, trust: np.ndarray | TrustMap | None = None) -> Segments:
    """LSD segments of an RGB (or grey) photo; `trust` is an optional per-pixel weight map of the
    photo's size (any resolution with the same aspect: it is sampled at the segments' midpoints)."""
    import cv2

    grey, s = _grey(rgb)
    if min(grey.shape) < 8:
        return Segments(np.zeros((0, 4)), np.zeros(0))
    lsd = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    lines = lsd.detect(grey)[0]
    if lines is None or len(lines) == 0:
        return Segments(np.zeros((0, 4)), np.zeros(0))
    xy = lines.reshape(-1, 4).astype(np.float64)
    length = np.hypot(xy[:, 2] - xy[:, 0], xy[:, 3] - xy[:, 1])
    keep = length >= MIN_LENGTH_FRAC * math.hypot(*grey.shape[:2])
    xy, length = xy[keep], length[keep]
    if len(xy) > MAX_SEGMENTS:
        top = np.argsort(-length)[:MAX_SEGMENTS]
        xy, length = xy[top], length[top]
    # LSD's coordinates put a pixel's centre on the integer: shift to the centre-at-half convention,
    # then back to the photo's resolution.
    xy = (xy + 0.5) / s
    weight = length / s
    if trust is not None and len(xy):
        th, tw = trust.shape[:2]
        h, w = rgb.shape[:2]
        mx = np.clip(((xy[:, 0] + xy[:, 2]) / 2 * tw / w).astype(int), 0, tw - 1)
        my = np.clip(((xy[:, 1] + xy[:, 3]) / 2 * th / h).astype(int), 0, th - 1)
        weight = weight * trust[my, mx]
    ok = weight > 0
    return Segments(xy[ok], weight[ok])


def trust_map(labels: np.ndarray, roles: list[str]) -> np.ndarray:
    """Per-pixel trust from a class-id map and each class id's role (ids < 0: unlabelled)."""
    table = np.array([ROLE_TRUST.get(r, 0.0) for r in roles] + [UNLABELLED_TRUST], dtype=np.float32)
    lab = np.asarray(labels)
    idx = np.where((lab >= 0) & (lab < len(roles)), lab, len(roles))
    return table[idx]


@dataclass(frozen=True)
class TrustMap:
    """trust_map(labels, roles) looked up only where `detect` samples it (the segments' midpoints): the
    same values, without making the whole map (13 ms for a 2 MP photo, a tenth of the estimate)."""

    labels: np.ndarray
    roles: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.labels.shape)

    def __getitem__(self, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return trust_map(self.labels[index], list(self.roles))
