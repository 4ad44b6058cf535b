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

from .color import LINEAR_LUT

# resegment(crop_rgb (h, w, 3) uint8, crop_mask (h, w) bool) -> (sub_labels (h, w) int, names) | None
Resegment = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, list[str]] | None"]

KMEANS_ITERS = 8
KMEANS_SAMPLE = 600
MAX_CHILDREN = 6
_D65 = np.array([0.95047, 1.0, 1.08883])
_RGB2XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of linear sRGB (n, 3): perceptual distances for the colour split."""
    xyz = (np.asarray(lin, dtype=np.float64) @ _RGB2XYZ.T) / _D65
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])],
                    axis=1)


def _lab_cube() -> np.ndarray:
    """Lab of every colour of a 32 x 32 x 32 sRGB cube (5 bits per channel): clustering features
    by table lookup instead of per-pixel cube roots."""
    q = (np.arange(32) * 255.0 / 31.0).round().astype(np.int64)
    r, g, b = np.meshgrid(q, q, q, indexing="ij")
    return linear_to_lab(LINEAR_LUT[np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)])


LAB_CUBE = _lab_cube()


def rgb_to_lab_fast(rgb: np.ndarray) -> np.ndarray:
    """Approximate Lab of (n, 3) uint8 sRGB pixels (5-bit quantised: < 2 Lab units of error)."""
    c = rgb.astype(np.int32) >> 3
    return LAB_CUBE[(c[:, 0] << 10) | (c[:, 1] << 5) | c[:, 2]]


def kmeans_centres(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means++ seeding and Lloyd steps on the rows of x (a sample: at most KMEANS_SAMPLE rows)."""
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
        a = _assign(sample, c)
        counts = np.bincount(a, minlength=len(c))
        dims = sample.shape[1]  # one bincount for every (cluster, feature) sum
        sums = np.bincount((a[:, None] * dims + np.arange(dims)).ravel(), weights=sample.ravel(),
                           minlength=len(c) * dims).reshape(len(c), dims)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)  # empty cluster: kept
        if float(np.max(np.abs(new - c))) <= 1e-6:  # features are standardised: converged
            break
        c = new
    return c


def _assign(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Nearest centre per row, as ||c||^2 - 2 x.c (an (n, k) matrix, never (n, k, dims))."""
    return np.argmin((c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T), axis=1)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster index of each row of x."""
    return _assign(x, kmeans_centres(x, k, seed))


CHUNK = 1 << 18


def feature_split(u: np.ndarray, v: np.ndarray, rgb: np.ndarray, depth: np.ndarray | None, k: int,
                  seed: int = 0) -> np.ndarray:
    """Cluster ids (0..k-1) of an object's pixels from colour (Lab), log depth and position.

    Features are standardised inside the object from a sample; centres are fitted on the sample
    and all pixels assigned in chunks, so a multi-megapixel object costs O(pixels) time and
    O(chunk) memory. `rgb` is the (n, 3) uint8 colour of the pixels.
    """
    n = len(u)
    used: np.ndarray | None = None  # the depth, when most pixels have one
    fill = 0.0
    if depth is not None:
        ok = np.isfinite(depth) & (depth > 0)
        if ok.mean() > 0.5:
            used = depth
            fill = float(np.median(depth[ok]))
    use_depth = used is not None

    def features(idx: np.ndarray) -> np.ndarray:
        cols = [rgb_to_lab_fast(rgb[idx])]
        if used is not None:
            d = used[idx]
            cols.append(np.log(np.where(np.isfinite(d) & (d > 0), d, fill))[:, None])
        cols.append(np.stack([u[idx], v[idx]], axis=1).astype(np.float64))
        return np.concatenate(cols, axis=1)

    rng = np.random.default_rng(seed)
    sample_idx = np.sort(rng.choice(n, KMEANS_SAMPLE, replace=False)) if n > KMEANS_SAMPLE else np.arange(n)
    xs = features(sample_idx)
    mean, std = xs.mean(axis=0), xs.std(axis=0)
    scale = np.where(std > 1e-9, std, 1.0)
    weight = np.ones(xs.shape[1])
    if use_depth:
        weight[3] = 1.5  # depth discontinuities matter most for blocking
    centres = kmeans_centres((xs - mean) / scale * weight, k, seed)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(n, start + CHUNK))
        out[idx] = _assign((features(idx) - mean) / scale * weight, centres)
    return out


def components(u: np.ndarray, v: np.ndarray, groups: np.ndarray, min_px: int) -> list[np.ndarray]:
    """Index arrays (into u/v) of the connected pieces of each group that have >= min_px pixels,
    largest first, at most MAX_CHILDREN. Works on the object's bounding-box crop."""
    x0, y0 = int(u.min()), int(v.min())
    crop = np.full((int(v.max()) - y0 + 1, int(u.max()) - x0 + 1), -1, dtype=np.int64)
    crop[v - y0, u - x0] = groups
    pieces: list[np.ndarray] = []
    for g in np.flatnonzero(np.bincount(groups[groups >= 0])):
        lab, n = ndimage.label(crop == g, structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            continue
        mine = np.flatnonzero(groups == g)
        ids = lab[v[mine] - y0, u[mine] - x0]
        size = np.bincount(ids, minlength=n + 1)
        big = np.flatnonzero(size[1:] >= min_px) + 1  # only the few big pieces are gathered
        if len(big) == 0:
            continue
        order = np.argsort(ids.astype(np.uint16) if n < 65535 else ids, kind="stable")  # radix sort
        bounds = np.concatenate([[0], np.cumsum(size)])
        for j in big:
            pieces.append(mine[order[bounds[j]:bounds[j + 1]]])
    pieces.sort(key=len, reverse=True)
    return pieces[:MAX_CHILDREN]
