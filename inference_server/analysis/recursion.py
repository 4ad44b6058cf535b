"""Recursive sub-objects: split an object's own pixels by colour, depth and position.

Each object with enough pixels is divided into 2-4 parts by k-means on (CIE Lab colour, log depth,
x, y) of its pixels (features standardised inside the object, so the split follows whatever varies
most: floors of a facade, the roof of a car). An optional `resegment` hook (a segmentation network
run on the object's crop) takes precedence; when it returns None the k-means split is used.
Everything works on the object's grouped pixel arrays or its bounding-box crop, never the image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

# resegment(crop_rgb (h, w, 3) uint8, crop_mask (h, w) bool) -> (sub_labels (h, w) int, names) | None
Resegment = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, list[str]] | None"]

KMEANS_ITERS = 12
KMEANS_SAMPLE = 6000
MAX_CHILDREN = 6
_D65 = np.array([0.95047, 1.0, 1.08883])
_RGB2XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of linear sRGB (n, 3): perceptual distances for the colour split."""
    xyz = (np.asarray(lin, dtype=np.float64) @ _RGB2XYZ.T) / _D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], axis=1)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster index of each row of x: k-means++ seeding and Lloyd steps on a sample, then one
    assignment of all rows (vectorised: (n, k) distance matrices only)."""
    rng = np.random.default_rng(seed)
    sample = x if len(x) <= KMEANS_SAMPLE else x[rng.choice(len(x), KMEANS_SAMPLE, replace=False)]
    centres = [sample[rng.integers(len(sample))]]
    for _ in range(1, k):
        d2 = np.min(((sample[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() <= 0:
            break
        centres.append(sample[rng.choice(len(sample), p=d2 / d2.sum())])
    c = np.asarray(centres)
    for _ in range(KMEANS_ITERS):
        a = np.argmin(((sample[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        new = np.array([sample[a == j].mean(axis=0) if np.any(a == j) else c[j] for j in range(len(c))])
        if np.allclose(new, c):
            break
        c = new
    return np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)


def feature_split(u: np.ndarray, v: np.ndarray, lin: np.ndarray, depth: np.ndarray | None, k: int,
                  seed: int = 0) -> np.ndarray:
    """Cluster ids (0..k-1) of an object's pixels from colour, depth and position."""
    feats = [linear_to_lab(lin)]
    if depth is not None:
        d = np.asarray(depth, dtype=np.float64)
        ok = np.isfinite(d) & (d > 0)
        if ok.mean() > 0.5:
            logd = np.log(np.where(ok, d, np.nanmedian(np.where(ok, d, np.nan))))
            feats.append(1.5 * logd[:, None])
    feats.append(np.stack([u, v], axis=1).astype(np.float64))
    x = np.concatenate(feats, axis=1)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)
    if depth is not None and x.shape[1] == 6:
        x[:, 3] *= 1.5  # depth discontinuities matter most for blocking
    return kmeans(x, k, seed)


def components(u: np.ndarray, v: np.ndarray, groups: np.ndarray, min_px: int) -> list[np.ndarray]:
    """Index arrays (into u/v) of the connected pieces of each group that have >= min_px pixels,
    largest first, at most MAX_CHILDREN. Works on the object's bounding-box crop."""
    x0, y0 = int(u.min()), int(v.min())
    crop = np.full((int(v.max()) - y0 + 1, int(u.max()) - x0 + 1), -1, dtype=np.int64)
    crop[v - y0, u - x0] = groups
    pieces: list[np.ndarray] = []
    for g in np.unique(groups):
        lab, n = ndimage.label(crop == g, structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            continue
        ids = lab[v - y0, u - x0]
        mine = np.flatnonzero(groups == g)
        ids = ids[mine]
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[order], np.arange(1, n + 2))
        for j in range(n):
            idx = mine[order[bounds[j]:bounds[j + 1]]]
            if len(idx) >= min_px:
                pieces.append(idx)
    pieces.sort(key=len, reverse=True)
    return pieces[:MAX_CHILDREN]
