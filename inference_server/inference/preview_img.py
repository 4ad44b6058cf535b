"""A side-by-side check image for `img2maya analyze`: photo | colour-coded segments | depth colour map.

Pure numpy + PIL. Class colours are fixed per class id, so the same class has the same
colour in every preview; depth uses a perceptual blue (near) -> yellow (far) ramp over the 2..98th
percentiles, and black where there is no depth (sky).
"""

from __future__ import annotations

import numpy as np

# Viridis-like control points (near = dark blue, far = yellow), interpolated linearly.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float32)


def class_colours(n: int) -> np.ndarray:
    """(n, 3) uint8 colours, stable per id: the bits of the id spread over the high bits of R, G and B
    (the PASCAL VOC palette scheme), so neighbouring ids get clearly different colours."""
    ids = np.arange(max(n, 1))
    out = np.zeros((ids.size, 3), np.int64)
    c = ids.copy()
    for shift in range(7, -1, -1):
        for ch in range(3):
            out[:, ch] |= ((c >> ch) & 1) << shift
        c >>= 3
    return out.astype(np.uint8)[:n]


def colour_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """(h, w, 3) uint8 image of class ids (ids outside 0..n-1 are black)."""
    lut = np.vstack([class_colours(n), np.zeros((1, 3), np.uint8)])
    idx = np.where((labels >= 0) & (labels < n), labels, n)
    return lut[idx]


def colour_depth(depth: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 colour map of a depth map (larger = farther = brighter); non-finite -> black."""
    d = np.asarray(depth, dtype=np.float32)
    ok = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape + (3,), np.uint8)
    if not ok.any():
        return out
    lo, hi = np.percentile(d[ok], (2.0, 98.0))
    t = np.clip((d - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(np.floor(np.nan_to_num(t)).astype(np.int64), len(_RAMP) - 2)
    f = (np.nan_to_num(t) - i)[..., None]
    rgb = _RAMP[i] * (1 - f) + _RAMP[i + 1] * f
    out[ok] = np.round(rgb[ok]).astype(np.uint8)
    return out


def side_by_side(rgb: np.ndarray, labels: np.ndarray, n_classes: int, depth: np.ndarray | None,
                 max_height: int = 480) -> np.ndarray:
    """The three panels, each scaled to at most ``max_height`` rows, separated by 4 white columns."""
    from PIL import Image

    h, w = labels.shape
    s = min(1.0, max_height / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    panels = [np.asarray(Image.fromarray(np.asarray(rgb, np.uint8)[:, :, :3]).resize(size, Image.Resampling.BILINEAR)),
              np.asarray(Image.fromarray(colour_labels(labels, n_classes)).resize(size, Image.Resampling.NEAREST))]
    if depth is not None:
        panels.append(np.asarray(Image.fromarray(colour_depth(depth)).resize(size, Image.Resampling.NEAREST)))
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for p in panels:
        parts.extend([p, gap])
    return np.concatenate(parts[:-1], axis=1)
