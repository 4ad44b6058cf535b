"""Instances, not classes: split every class into connected components, then along depth jumps.

Two buildings side by side are one "building" region in the label map but two objects for a
layout artist. A component is cut where the log-depth jumps (an occlusion edge): the jump pixels
are removed, the rest is labelled again, pieces big enough become instances and the leftover
pixels (edge lines, slivers) join the nearest instance of the same component. Ground, water and
sky classes are never split: each becomes one plane or backdrop.

Labelling runs on each class's bounding-box crop (found for all classes in one find_objects pass),
so the cost is a few scipy calls per class, never per instance or per pixel in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .shapes import ShapeSpec

AUTO_MIN_AREA_FRACTION = 0.0005  # 0.05 % of the image
AUTO_MIN_AREA_FLOOR = 16
DEPTH_JUMP_LOG = 0.06  # ~6 % relative depth step between neighbours marks an occlusion edge
DEPTH_JUMP_RATIO = 2.5
MIN_PIECE_WIDTH = 2.5  # px: thinner pieces cut off by depth jumps are ramps of blurred depth

_EIGHT = np.ones((3, 3), dtype=bool)


def auto_min_area(h: int, w: int) -> int:
    return max(AUTO_MIN_AREA_FLOOR, int(round(AUTO_MIN_AREA_FRACTION * h * w)))


def depth_edges(depth: np.ndarray, jump: float = DEPTH_JUMP_LOG,
                ratio: float = DEPTH_JUMP_RATIO) -> np.ndarray:
    """Pixels on an occlusion edge: a log-depth step over 2 px that exceeds `jump` and is `ratio`
    times steeper than the slope on both sides (so a wall or road at a grazing angle, whose depth
    grows fast but smoothly, is not cut). NaN depth never makes an edge.

    Only the step is computed on the whole image; the side slopes are checked at the (few)
    candidate pixels, gathered by index.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        logd = np.log(np.where(depth > 0, depth, np.nan).astype(np.float32))
    # Noisy depth (a sensor's or a network's per-pixel noise) raises both thresholds above its
    # own level: sigma from the median absolute second difference (slopes cancel, noise does not).
    noise = depth_noise(logd)
    jump = max(jump, 3.0 * noise)
    bend_limit = max(2.0 * jump, 5.0 * noise)
    edges = np.zeros(logd.shape, dtype=bool)
    for axis in (0, 1):
        L = np.moveaxis(logd, axis, 0)
        e = np.moveaxis(edges, axis, 0)
        n = L.shape[0]
        if n < 7:
            continue
        with np.errstate(invalid="ignore"):
            s = np.abs(L[4:n - 2] - L[2:n - 4])  # at centre i = 3..n-4: |L[i+1] - L[i-1]|
            cand = np.nonzero(s > jump)
        if len(cand[0]) == 0:
            continue
        i = cand[0] + 3
        rest = cand[1:]
        si = s[cand]
        with np.errstate(invalid="ignore"):
            a = np.abs(L[(i - 1,) + rest] - L[(i - 3,) + rest])
            b = np.abs(L[(i + 3,) + rest] - L[(i + 1,) + rest])
        side = np.nan_to_num(np.fmax(a, b), nan=0.0)
        hit = si > ratio * side
        # A surface seen at a grazing angle (the top of a car) has a steep slope right up to its
        # far edge, which defeats the ratio test there; continuing that slope by one pixel from
        # each side still misses the other side by a clear jump.
        # A step between two pixels shows as second differences of opposite sign on both of them.
        with np.errstate(invalid="ignore"):
            d2 = [np.abs(L[(i + o + 1,) + rest] - 2 * L[(i + o,) + rest] + L[(i + o - 1,) + rest])
                  for o in (-1, 0, 1)]
        bend = np.fmax(np.fmin(d2[0], d2[1]), np.fmin(d2[1], d2[2]))
        hit |= np.nan_to_num(bend, nan=0.0) > bend_limit
        e[(i[hit],) + tuple(r[hit] for r in rest)] = True
    return edges


def depth_noise(logd: np.ndarray, step: int = 4) -> float:
    """Robust std of the second difference of log-depth along rows (every `step`-th row):
    about sqrt(6) x the per-pixel noise; ~0 for ray-cast or smooth depth."""
    L = logd[::step]
    with np.errstate(invalid="ignore"):
        d2 = (L[:, 2:] - 2 * L[:, 1:-1] + L[:, :-2]).ravel()
    d2 = d2[np.isfinite(d2)]
    if len(d2) < 100:
        return 0.0
    med = float(np.median(d2))
    return 1.4826 * float(np.median(np.abs(d2 - med)))


def edge_sharpness(depth: np.ndarray, jump: float = DEPTH_JUMP_LOG, step: int = 4) -> float:
    """How sharp the depth map's occlusion edges are, 0.5 (ramps) .. 1 (one-pixel steps).

    Along every `step`-th row, at each place where log-depth changes by more than `jump` over two
    pixels, the larger of the two one-pixel steps is divided by the two-pixel change: 1 for a
    ray-cast, lidar or RGB-D map, about 0.5 for a depth network's blurred edges. Median over edges
    (1.0 when there are none).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        L = np.log(np.where(depth[::step] > 0, depth[::step], np.nan).astype(np.float32))
        a = L[:, 1:-1] - L[:, :-2]
        b = L[:, 2:] - L[:, 1:-1]
        two = np.abs(a + b)
        cand = two > jump
    if cand.sum() < 20:
        return 1.0
    return float(np.median(np.fmax(np.abs(a[cand]), np.abs(b[cand])) / two[cand]))


def edge_margin(h: int, w: int) -> int:
    """How far (px) depth-network blur reaches into a segment: ~0.5 % of the image size."""
    return max(1, int(round(0.005 * max(h, w))))


def interior_mask(inst: np.ndarray, margin: int) -> np.ndarray:
    """Pixels at least `margin` px (Chebyshev) away from any other instance or unlabelled pixel."""
    b = np.zeros(inst.shape, dtype=np.uint8)
    dx = inst[:, 1:] != inst[:, :-1]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    dy = inst[1:] != inst[:-1]
    b[1:] |= dy
    b[:-1] |= dy
    if margin > 1:
        b = ndimage.maximum_filter(b, size=2 * margin - 1)
    return b == 0


def bottom_occlusion(inst: np.ndarray, depth: np.ndarray, occluder: np.ndarray) -> np.ndarray:
    """Per instance, the fraction of its lower outline (pixels whose neighbour below belongs to
    something else) where that neighbour is a nearer object (`occluder[id]`, not ground/sky):
    a standing object whose feet are hidden behind a car still stands on the ground."""
    n = len(occluder)
    if n == 0 or inst.shape[0] < 2:
        return np.zeros(n)
    a, b = inst[:-1], inst[1:]
    edge = (a >= 0) & (a != b)
    with np.errstate(invalid="ignore"):
        nearer = depth[1:] < 0.97 * depth[:-1]
    occ = edge & (b >= 0) & nearer & occluder[np.maximum(b, 0)]
    total = np.bincount(a[edge], minlength=n)[:n]
    hidden = np.bincount(a[occ], minlength=n)[:n]
    return hidden / np.maximum(total, 1)


def _adopt_orphans(final: np.ndarray, orphan: np.ndarray, passes: int = 8) -> None:
    """Give each orphan pixel (edge lines, slivers) the id of an adjacent assigned pixel, in place.

    Works on the orphans' own coordinates (a few % of the crop): each pass looks at the 8
    neighbours of the still-unassigned orphans. Whatever is left after `passes` (fragments wider
    than 2 * passes px) takes the nearest assigned pixel by a distance transform.
    """
    h, w = final.shape
    ys, xs = np.nonzero(orphan)
    padded = np.full((h + 2, w + 2), -1, dtype=final.dtype)  # a -1 border: neighbours need no clipping
    padded[1:-1, 1:-1] = final
    py, px = ys + 1, xs + 1
    for _ in range(passes):
        if len(py) == 0:
            break
        got = np.full(len(py), -1, dtype=final.dtype)
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):
            cand = padded[py + dy, px + dx]
            take = (got < 0) & (cand >= 0)
            got[take] = cand[take]
        done = got >= 0
        if not done.any():
            break
        padded[py[done], px[done]] = got[done]
        py, px = py[~done], px[~done]
    final[...] = padded[1:-1, 1:-1]
    ys, xs = py - 1, px - 1
    if len(ys):
        # Nearest assigned pixel by a distance transform over the leftovers' box (plus a margin),
        # not the whole crop; the whole crop only when that window holds no assigned pixel.
        pad = 4 * passes
        y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)
        x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)
        win = final[y0:y1, x0:x1]
        if not (win >= 0).any():
            y0, y1, x0, x1, win = 0, h, 0, w, final
        _, (iy, ix) = ndimage.distance_transform_edt(win < 0, return_indices=True)
        final[ys, xs] = win[iy[ys - y0, xs - x0], ix[ys - y0, xs - x0]]


@dataclass(frozen=True)
class ClassComponents:
    """A label map's per-class bounding boxes (find_objects) and, for each class split_instances
    splits (not skipped, flat or sky), its connected components (label map, count, sizes) in its box.
    They depend on the labels and the table alone: kept across depths (the panel's camera height)."""

    slices: list[tuple[slice, slice] | None]
    comps: dict[int, tuple[np.ndarray, int, np.ndarray]]


def class_components(labels: np.ndarray, specs: Sequence[ShapeSpec]) -> ClassComponents:
    slices = ndimage.find_objects(labels.astype(np.int64) + 1) if labels.size else []  # -1 (no class) -> 0
    comps: dict[int, tuple[np.ndarray, int, np.ndarray]] = {}
    for k, sl in enumerate(slices):
        if sl is None or k >= len(specs) or specs[k].skip or specs[k].flat or specs[k].role == "sky":
            continue
        comp, ncomp = ndimage.label(labels[sl] == k, structure=_EIGHT)
        comps[k] = comp, ncomp, np.bincount(comp.ravel(), minlength=ncomp + 1)
    return ClassComponents(slices, comps)


def split_instances(
    labels: np.ndarray,
    specs: Sequence[ShapeSpec],
    depth: np.ndarray | None,
    min_area: int,
    depth_split: bool = True,
    components: ClassComponents | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Instance map (h, w) int32 (-1 = no instance) and the class id of each instance.

    Components smaller than `min_area` that touch nothing of their class are dropped.
    `components`: class_components(labels, specs), when the caller keeps them (another depth).
    """
    h, w = labels.shape
    inst = np.full((h, w), -1, dtype=np.int32)
    inst_label: list[int] = []
    if labels.size == 0:
        return inst, np.zeros(0, dtype=np.int64)
    parts = class_components(labels, specs) if components is None else components
    edges = None
    for k, sl in enumerate(parts.slices):
        if sl is None or k >= len(specs):
            continue
        spec = specs[k]
        if spec.skip:
            continue
        mask = labels[sl] == k
        view = inst[sl]
        if spec.flat or spec.role == "sky":
            np.copyto(view, np.int32(len(inst_label)), where=mask)
            inst_label.append(k)
            continue
        comp, ncomp, sizes = parts.comps[k]
        big_comp = sizes >= min_area
        big_comp[0] = False
        if not big_comp[1:].any():
            continue
        if depth is not None and depth_split and edges is None:
            edges = depth_edges(depth)
        on_edge = mask & edges[sl] if edges is not None else None
        did_cut = on_edge is not None and bool(on_edge.any())
        cut = mask ^ on_edge if did_cut else None  # the class's pixels off the depth edges
        final = None
        nfinal = 0
        whole = big_comp
        if did_cut:
            sub, nsub = ndimage.label(cut)
            area = np.bincount(sub.ravel(), minlength=nsub + 1)
            boxes = ndimage.find_objects(sub)  # one pass for every piece's bounding box
            # A piece must be big and have a body: blurred depth leaves ramps along outlines that
            # the jump test cuts into thin strips; those are orphans, not objects.
            # (mean width = area / (bbox height + bbox width) must reach MIN_PIECE_WIDTH px).
            big_sub = area >= min_area
            big_sub[0] = False
            # Each big piece lies inside exactly one component: read it at the piece's first pixel
            # in its own box (no scatter over the crop); pieces of dropped components are dropped.
            sub_comp = np.zeros(nsub + 1, dtype=np.int64)
            for j in np.flatnonzero(big_sub):
                ys, xs = boxes[j - 1]
                if area[j] < MIN_PIECE_WIDTH * ((ys.stop - ys.start) + (xs.stop - xs.start)):
                    big_sub[j] = False
                    continue
                first = int(np.argmax(sub[ys, xs] == j))
                sub_comp[j] = comp[ys, xs].flat[first]
            big_sub &= big_comp[sub_comp]
            remap = np.full(nsub + 1, -1, dtype=np.int32)
            nfinal = int(big_sub.sum())
            remap[big_sub] = np.arange(nfinal)
            final = remap[sub]
            # Components that survived but have no big piece stay whole.
            covered = np.zeros(ncomp + 1, dtype=bool)
            covered[sub_comp[big_sub]] = True
            whole = big_comp & ~covered
        if whole.any():
            cmap = np.full(ncomp + 1, -1, dtype=np.int32)
            cmap[whole] = nfinal + np.arange(int(whole.sum()))
            wid = cmap[comp]
            final = wid if final is None or nfinal == 0 else np.where(wid >= 0, wid, final)
            nfinal += int(whole.sum())
        if final is None:  # no big component (cannot happen: such classes are skipped above)
            continue
        if did_cut:  # edge lines and slivers join an adjacent instance of their component
            _adopt_orphans(final, mask & (final < 0) & big_comp[comp])
        np.copyto(view, final + np.int32(len(inst_label)), where=final >= 0)
        inst_label.extend([k] * nfinal)
    return inst, np.asarray(inst_label, dtype=np.int64)
