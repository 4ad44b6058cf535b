"""Per-instance statistics in one vectorised pass.

The pixels of every instance are grouped once (a stable sort of 16-bit instance keys, which numpy
does as a linear-time radix sort), after which counts, bounding boxes and depth min/max/mean come
from `ufunc.reduceat` over the grouped arrays, and colours from per-instance 256-bin histograms
of each channel (one `bincount` per channel over the whole image): mean and median colour come
from the histograms exactly, with no per-pixel float work. Only depth percentiles and the
"trimmed" colour loop over instances, and then only over each instance's own slice (depth
percentiles on an even subsample of at most 200k values): total work stays O(pixels) whatever the
number of instances, and no per-instance full-image mask is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import percentiles
from .color import LINEAR_LUT, robust_color

MAX_PERCENTILE_SAMPLES = 200_000


@dataclass
class Groups:
    """Pixels grouped by instance: instance i owns order[starts[i]:starts[i + 1]] (row-major)."""

    order: np.ndarray  # flat pixel indices, sorted by instance id
    starts: np.ndarray  # (n + 1,) offsets into order
    width: int
    key: np.ndarray  # per pixel (flat, image order): instance id, n for "no instance"

    @property
    def n(self) -> int:
        return len(self.starts) - 1

    def span(self, i: int) -> slice:
        return slice(int(self.starts[i]), int(self.starts[i + 1]))

    def counts(self) -> np.ndarray:
        return np.diff(self.starts)


def group_pixels(inst: np.ndarray, n: int) -> Groups:
    """Group the pixels of an instance map (ids 0..n-1, -1 = no instance) with a single sort.

    Pixels without an instance get the key n, so they sort last and are cut off as a tail: no
    index compaction pass. Keys fit 16 bits for < 65535 instances, where numpy's stable sort is
    a radix sort (linear time).
    """
    flat = inst.ravel()
    key = np.where(flat < 0, n, flat)
    key = key.astype(np.uint16) if n < 65535 else key.astype(np.int64)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=n + 1)
    starts = np.concatenate([[0], np.cumsum(counts[:n])]).astype(np.int64)
    return Groups(order=order[: starts[-1]], starts=starts, width=inst.shape[1], key=key)


@dataclass
class GroupedPixels:
    """The per-pixel arrays an instance needs later (fitting, recursion), in grouped order."""

    u: np.ndarray  # int32 column
    v: np.ndarray  # int32 row
    depth: np.ndarray | None  # float32, NaN where invalid


@dataclass
class InstanceStats:
    count: np.ndarray  # (n,)
    bbox: np.ndarray  # (n, 4) [x0, y0, x1, y1) analysis pixels
    color_linear: np.ndarray  # (n, 3)
    depth: np.ndarray  # (n, 7) min, p05, median, mean, p95, max, valid_pixels (NaN where no depth)
    confidence: np.ndarray  # (n,) NaN where not given


def _reduce(ufunc: np.ufunc, values: np.ndarray, starts: np.ndarray, fill: float) -> np.ndarray:
    """ufunc.reduceat that is safe for empty groups (they get `fill`)."""
    n = len(starts) - 1
    out = np.full((n,) + values.shape[1:], fill, dtype=np.float64)
    nonempty = starts[:-1] < starts[1:]
    if len(values) and nonempty.any():
        out[nonempty] = ufunc.reduceat(values, starts[:-1][nonempty], axis=0)
    return out


def gather(groups: Groups, depth: np.ndarray | None) -> GroupedPixels:
    """Gather coordinates and depths once, in grouped order."""
    order = groups.order
    if groups.key.size < 2**31:  # int32 division is about twice as fast
        v, u = np.divmod(order.astype(np.int32), np.int32(groups.width))
    else:
        v, u = np.divmod(order, groups.width)
    d = depth.ravel()[order] if depth is not None else None
    return GroupedPixels(u=u.astype(np.int32), v=v.astype(np.int32), depth=d)


def depth_summary(d: np.ndarray) -> np.ndarray:
    """min, p05, median, mean, p95, max, valid count of finite values (NaNs where none);
    percentiles from an even subsample of at most MAX_PERCENTILE_SAMPLES values."""
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return np.array([np.nan] * 6 + [0.0])
    p = percentiles(d[:: max(1, len(d) // MAX_PERCENTILE_SAMPLES)], [5.0, 50.0, 95.0])
    return np.array([d.min(), p[0], p[1], d.mean(), p[2], d.max(), float(len(d))])


def color_histograms(groups: Groups, rgb: np.ndarray) -> np.ndarray:
    """(n, 3, 256) counts of each 8-bit value per instance and channel: one bincount per channel."""
    n = groups.n
    base = groups.key.astype(np.int32) * 256
    flat = rgb.reshape(-1, 3)
    hist = np.empty((n, 3, 256), dtype=np.int64)
    for c in range(3):
        hist[:, c] = np.bincount(base + flat[:, c], minlength=(n + 1) * 256).reshape(n + 1, 256)[:n]
    return hist


def pixel_color(rgb: np.ndarray, stat: str) -> np.ndarray:
    """Linear colour of a set of (n, 3) uint8 pixels: 256-bin histograms for mean and median,
    the luminance-trimmed mean on decoded values."""
    if len(rgb) == 0:
        return np.zeros(3)
    if stat == "trimmed":
        return robust_color(LINEAR_LUT[rgb], stat)
    hist = np.stack([np.bincount(rgb[:, c], minlength=256) for c in range(3)])
    if stat == "median":
        return LINEAR_LUT[_hist_median(hist)]
    return (hist @ LINEAR_LUT) / len(rgb)


def _hist_median(hist: np.ndarray) -> np.ndarray:
    """Per row (…, 256) the 8-bit value at the lower median."""
    cum = np.cumsum(hist, axis=-1)
    half = (cum[..., -1:] + 1) // 2
    return np.argmax(cum >= np.maximum(half, 1), axis=-1)


def instance_colors(groups: Groups, rgb: np.ndarray, color_stat: str = "mean") -> np.ndarray:
    """(n, 3) linear-light colour of each instance (the colour column of instance_stats): what a
    change of `color_stat` alone recomputes."""
    n = groups.n
    if color_stat == "trimmed":  # luminance-based, not separable per channel: per-instance slices
        flat = rgb.reshape(-1, 3)
        color = np.zeros((n, 3))
        for i in range(n):
            color[i] = robust_color(LINEAR_LUT[flat[groups.order[groups.span(i)]]], color_stat)
        return color
    hist = color_histograms(groups, rgb)
    if color_stat == "median":
        return LINEAR_LUT[_hist_median(hist)]
    return (hist @ LINEAR_LUT) / np.maximum(groups.counts(), 1)[:, None]


def instance_stats(groups: Groups, px: GroupedPixels, rgb: np.ndarray, color_stat: str = "mean",
                   confidence: np.ndarray | None = None) -> InstanceStats:
    """All per-instance statistics (see the module docstring for how each one is computed)."""
    starts = groups.starts
    n = groups.n
    count = groups.counts()
    bbox = np.stack([
        _reduce(np.minimum, px.u, starts, 0), _reduce(np.minimum, px.v, starts, 0),
        _reduce(np.maximum, px.u, starts, -1) + 1, _reduce(np.maximum, px.v, starts, -1) + 1,
    ], axis=1).astype(np.int64)

    color = instance_colors(groups, rgb, color_stat)

    dstats = np.full((n, 7), np.nan)
    dstats[:, 6] = 0
    if px.depth is not None:
        d = px.depth
        ok = np.isfinite(d)
        valid = _reduce(np.add, ok.astype(np.int64), starts, 0)
        dstats[:, 6] = valid
        dstats[:, 0] = _reduce(np.fmin, np.where(ok, d, np.inf), starts, np.inf)
        dstats[:, 5] = _reduce(np.fmax, np.where(ok, d, -np.inf), starts, -np.inf)
        sums = _reduce(np.add, np.where(ok, d, 0.0).astype(np.float64), starts, 0.0)
        dstats[:, 3] = sums / np.maximum(valid, 1)
        for i in np.flatnonzero(valid > 0):
            sl = groups.span(int(i))
            step = max(1, (sl.stop - sl.start) // MAX_PERCENTILE_SAMPLES)
            di = d[sl][::step]
            di = di[np.isfinite(di)]
            if len(di):
                dstats[i, [1, 2, 4]] = percentiles(di, [5.0, 50.0, 95.0])
            else:  # the sample missed the few valid values: take them all
                dstats[i, [1, 2, 4]] = depth_summary(d[sl])[[1, 2, 4]]
        dstats[valid == 0, :6] = np.nan

    conf = np.full(n, np.nan)
    if confidence is not None:
        c = confidence.ravel()[groups.order].astype(np.float64)
        conf = _reduce(np.add, c, starts, 0.0) / np.maximum(count, 1)
        conf[count == 0] = np.nan
    return InstanceStats(count=count, bbox=bbox, color_linear=color, depth=dstats, confidence=conf)
