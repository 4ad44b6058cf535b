"""Per-instance statistics in one vectorised pass.

The pixels of every instance are grouped once (a stable sort of the instance ids: a radix sort
for < 32767 instances), after which counts, bounding boxes, colour sums and depth min/max/mean
come from `ufunc.reduceat` over the grouped arrays. Only order statistics (percentiles, medians)
loop over instances, and then only over each instance's own slice: the total work stays O(pixels)
whatever the number of instances, and no per-instance full-image mask is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .color import LINEAR_LUT, robust_color


@dataclass
class Groups:
    """Pixels grouped by instance: instance i owns order[starts[i]:starts[i + 1]] (row-major)."""

    order: np.ndarray  # flat pixel indices, sorted by instance id
    starts: np.ndarray  # (n + 1,) offsets into order
    width: int

    @property
    def n(self) -> int:
        return len(self.starts) - 1

    def span(self, i: int) -> slice:
        return slice(int(self.starts[i]), int(self.starts[i + 1]))

    def counts(self) -> np.ndarray:
        return np.diff(self.starts)


def group_pixels(inst: np.ndarray, n: int) -> Groups:
    """Group the pixels of an instance map (ids 0..n-1, -1 = no instance) with a single sort."""
    flat = inst.ravel()
    idx = np.flatnonzero(flat >= 0)
    ids = flat[idx]
    ids = ids.astype(np.int16) if n < 32767 else ids.astype(np.int32)
    order = idx[np.argsort(ids, kind="stable")]
    counts = np.bincount(ids, minlength=n)[:n] if len(ids) else np.zeros(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Groups(order=order, starts=starts, width=inst.shape[1])


@dataclass
class GroupedPixels:
    """The per-pixel arrays an instance needs later (fitting, recursion), in grouped order."""

    u: np.ndarray  # int32 column
    v: np.ndarray  # int32 row
    depth: np.ndarray | None  # float32, NaN where invalid
    rgb: np.ndarray  # (N, 3) uint8


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
        red = ufunc.reduceat(values, starts[:-1][nonempty], axis=0)
        out[nonempty] = red
    return out


def gather(groups: Groups, rgb: np.ndarray, depth: np.ndarray | None) -> GroupedPixels:
    """Gather coordinates, colours and depths once, in grouped order."""
    order = groups.order
    small = rgb.shape[0] * rgb.shape[1] < 2**31  # int32 division is about twice as fast
    v, u = np.divmod(order.astype(np.int32), np.int32(groups.width)) if small else np.divmod(order, groups.width)
    d = depth.ravel()[order].astype(np.float32) if depth is not None else None
    return GroupedPixels(u=u.astype(np.int32), v=v.astype(np.int32), depth=d, rgb=rgb.reshape(-1, 3)[order])


def depth_summary(d: np.ndarray) -> np.ndarray:
    """min, p05, median, mean, p95, max, valid count of finite values (NaNs where none)."""
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return np.array([np.nan] * 6 + [0.0])
    p = np.percentile(d, [5.0, 50.0, 95.0])
    return np.array([d.min(), p[0], p[1], d.mean(), p[2], d.max(), float(len(d))])


def instance_stats(groups: Groups, px: GroupedPixels, color_stat: str = "mean",
                   confidence: np.ndarray | None = None) -> InstanceStats:
    """All per-instance statistics: reduceat for sums/extrema, per-slice loops for order statistics."""
    starts = groups.starts
    n = groups.n
    count = groups.counts()
    bbox = np.stack([
        _reduce(np.minimum, px.u, starts, 0), _reduce(np.minimum, px.v, starts, 0),
        _reduce(np.maximum, px.u, starts, -1) + 1, _reduce(np.maximum, px.v, starts, -1) + 1,
    ], axis=1).astype(np.int64)

    if color_stat == "mean":  # one channel at a time keeps the float64 temporaries small
        color = np.stack([_reduce(np.add, LINEAR_LUT[px.rgb[:, c]], starts, 0.0) for c in range(3)], axis=1)
        color /= np.maximum(count, 1)[:, None]
    else:
        color = np.zeros((n, 3))
        for i in range(n):
            color[i] = robust_color(LINEAR_LUT[px.rgb[groups.span(i)]], color_stat)

    dstats = np.full((n, 7), np.nan)
    dstats[:, 6] = 0
    if px.depth is not None:
        for i in range(n):
            dstats[i] = depth_summary(px.depth[groups.span(i)])

    conf = np.full(n, np.nan)
    if confidence is not None:
        c = confidence.ravel()[groups.order].astype(np.float64)
        conf = _reduce(np.add, c, starts, 0.0) / np.maximum(count, 1)
        conf[count == 0] = np.nan
    return InstanceStats(count=count, bbox=bbox, color_linear=color, depth=dstats, confidence=conf)
