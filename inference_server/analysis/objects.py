"""Stage 4: the top-level objects. Sky -> far backdrop plane, ground/water -> one plane per class at
y = 0, everything else an oriented box (boxes.py) fitted to its back-projected pixels, grown to cover
its segment, turned into the class's primitive (shapes.py: cylinder, sphere + trunk, slab, ...).
Instances of one object cut apart by an occluder are merged first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import placement
from .boxes import Box, box_intersection, cover_bbox, fit_box, percentiles
from .camera import backproject, matrix_to_euler_xyz, pixel_rays
from .color import linear_to_srgb
from .depth_stage import DepthStage
from .grid import Grid
from .ground import Pose
from .grouping import Grouping
from .records import Namer, r
from .shapes import ShapeSpec, ShapeTable
from .stats import depth_summary, pixel_color

if TYPE_CHECKING:
    from ..calib import CameraEstimate

MAX_FIT_POINTS = 20000  # points per object used for the box fit (evenly strided)
MIN_DEPTH_PIXELS = 20  # fewer valid depths than this: the object is placed from priors
MIN_SKY_DISTANCE_M = 100.0
MAX_MERGE_CANDIDATES = 64  # per class: pairwise box tests beyond this many instances are skipped
MANHATTAN_ROLES = ("building", "wall", "vehicle")  # turned to the scene's axes where their own edges agree
MANHATTAN_EDGES = 0.5  # ... i.e. their horizontal edges on the scene's axes add up to this x their width
SNAP_ONLY_ROLES = ("vehicle",)  # ... and, for these, their own fitted yaw is within SNAP_DEG of that axis
SNAP_DEG = 15.0

Fit = tuple[Box, str, bool]  # box, thickness source, whether from measured depth
RootArgs = tuple[Box, ShapeSpec, np.ndarray]  # what a top object's children need: box, spec, pixel positions


@dataclass(frozen=True)
class ObjectContext:
    """What the per-object code (this module and children.py) reads; one per prepared scene."""

    grid: Grid
    depth: DepthStage
    inst: Grouping  # scaled to metric depth
    names: list[str]
    specs: list[ShapeSpec]
    table: ShapeTable
    camera: CameraEstimate | None  # the photo's vanishing points, when trusted
    pose: Pose
    scale: float  # the ground scale of the depth
    has_ground: bool
    full_size: tuple[int, int]
    color_stat: str
    depth_kind: str
    min_area: int

    @property
    def sx(self) -> float:
        """Full-resolution pixels per grid pixel, horizontally: grid x <-> analysed x / gs <-> full x."""
        return self.full_size[0] / (self.grid.w0 * self.grid.scale)

    @property
    def sy(self) -> float:
        return self.full_size[1] / (self.grid.h0 * self.grid.scale)


@dataclass(frozen=True)
class Made:
    """A top-level object without children, what computing them needs and the warnings it gave."""

    obj: dict[str, Any]
    args: RootArgs | None
    warnings: tuple[str, ...]


def record(ctx: ObjectContext, name: str, label: str, label_id: int, spec: ShapeSpec, lin: np.ndarray,
           count: int, bbox: np.ndarray, dstats: np.ndarray, conf: float) -> dict[str, Any]:
    """An object's record before its geometry (grid bbox and counts made full-resolution)."""
    lin = np.clip(lin, 0.0, 1.0)
    x0, y0, x1, y1 = (float(b) for b in bbox)
    sx, sy = ctx.sx, ctx.sy
    full_w, full_h = ctx.full_size
    eps = 1e-6  # grid -> analysed pixel scaling is exact up to rounding
    bbox_full = [max(0, math.floor(x0 * sx + eps)), max(0, math.floor(y0 * sy + eps)),
                 min(full_w, math.ceil(x1 * sx - eps)), min(full_h, math.ceil(y1 * sy - eps))]
    keys = ("min", "p05", "median", "mean", "p95", "max")
    px_scale = ctx.grid.px_scale
    depth_m: dict[str, Any] = {"valid_pixels": int(round(dstats[6] * px_scale))}
    if dstats[6] > 0:
        depth_m = {k: r(v, 4) for k, v in zip(keys, dstats[:6], strict=True)} | depth_m
    return {
        "name": name, "label": label, "label_id": int(label_id), "role": spec.role, "shape": spec.shape,
        "translate": [0.0, 0.0, 0.0], "rotate": [0.0, 0.0, 0.0], "size": [1.0, 1.0, 1.0],
        "color_srgb": r(linear_to_srgb(lin)), "color_linear": r(lin),
        "pixels": int(round(count * px_scale)), "bbox_px": bbox_full, "depth_m": depth_m,
        "confidence": None if not np.isfinite(conf) else r(np.clip(conf, 0, 1), 4),
        "thickness_source": "none", "parts": [], "children": [],
    }


def top_objects(ctx: ObjectContext, namer: Namer, progress: Any) -> tuple[list[Made], list[int]]:
    """The top-level objects (named by `namer`, in instance order) and the sky's instances."""
    merged, fits = merge_groups(ctx)
    tops: list[Made] = []
    sky: list[int] = []
    for g, members in enumerate(merged):
        spec = ctx.specs[int(ctx.inst.inst_label[members[0]])]
        if spec.role == "sky":
            sky.extend(members)
            continue
        tops.append(make_object(ctx, members, spec, fits, namer))
        progress("objects", 0.55 + 0.35 * (g + 1) / max(len(merged), 1))
    return tops, sky


def world_points(ctx: ObjectContext, u: np.ndarray, v: np.ndarray, d: np.ndarray | None, bbox: np.ndarray,
                 spec: ShapeSpec, interior: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """World points for a fit (strided), and whether they come from real depth.

    Depth networks blur occlusion edges: pixels near a segment's outline carry a mix of the
    object's and the background's depth ("flying pixels"). The object's depth range is taken
    from its interior (pixels away from the outline) when enough of it has depth, as the
    2nd..98th percentiles of log-depth plus half their spread; every pixel whose depth lies in that range
    is used, outline included, so the extents are not shrunk.
    """
    intr, pose = ctx.grid.intr, ctx.pose
    stride = -(-len(u) // MAX_FIT_POINTS)  # at most MAX_FIT_POINTS points
    u, v = u[::stride], v[::stride]
    if d is not None:
        d = d[::stride]
        ok = np.isfinite(d)
        if ok.sum() >= MIN_DEPTH_PIXELS:
            ref = ok
            if interior is not None:
                inner = ok & interior[::stride]
                if inner.sum() >= max(MIN_DEPTH_PIXELS, 0.25 * ok.sum()):
                    ref = inner
            lo, hi = percentiles(np.log(d[ref]), [2.0, 98.0])
            pad = 0.02 + 0.5 * (hi - lo)  # generous: a face seen at a grazing angle is a thin tail too
            with np.errstate(invalid="ignore", divide="ignore"):
                logd = np.log(d)
            keep = ok & (logd >= lo - pad) & (logd <= hi + pad)
            if keep.sum() >= MIN_DEPTH_PIXELS:
                return pose.to_world(backproject(u[keep], v[keep], d[keep], intr)), True
    # No depth: the pixels on an upright plane facing the camera at the guessed distance, so the
    # footprint is a line and the unseen depth comes from the class prior.
    z = _guess_depth(ctx, bbox, spec)
    x0, y0, x1, y1 = (float(b) for b in bbox)
    centre = pose.R @ np.array([((x0 + x1) / 2 - intr.cx) / intr.focal_px,
                                -((y0 + y1) / 2 - intr.cy) / intr.focal_px, -1.0])
    normal = np.array([centre[0], 0.0, centre[2]])
    normal /= max(np.linalg.norm(normal), 1e-9)
    rays = pixel_rays(u + 0.5, v + 0.5, intr, pose.R)
    t = (z * float(normal @ centre)) / np.maximum(rays @ normal, 1e-6)
    return pose.T + rays * t[:, None], False


def _guess_depth(ctx: ObjectContext, bbox: np.ndarray, spec: ShapeSpec) -> float:
    """z-depth of an object without depth: where its bottom meets the ground, else its prior height."""
    x0, y0, x1, y1 = (float(b) for b in bbox)
    intr, pose = ctx.grid.intr, ctx.pose
    if spec.standing is not False:  # feet on the ground: consistent with the camera, whatever the prior
        ray = pose.R @ np.array([((x0 + x1) / 2 - intr.cx) / intr.focal_px, -(y1 - intr.cy) / intr.focal_px,
                                 -1.0])
        if ray[1] < -1e-6:
            return float(np.clip(-pose.T[1] / ray[1], 0.5, 1000.0))
    return float(np.clip(intr.focal_px * spec.size[1] / max(y1 - y0, 1.0), 0.5, 1000.0))


def _manhattan_yaw(ctx: ObjectContext, bbox: np.ndarray, spec: ShapeSpec, k: int) -> float | None:
    """The yaw of the scene axis along which the object's own horizontal edges run (buildings,
    walls, fences, vehicles), or None (fit the yaw freely) where they are too few."""
    cam, grid = ctx.camera, ctx.grid
    if cam is None or not cam.edges or spec.role not in MANHATTAN_ROLES or len(cam.horizontals) < 2:
        return None
    e = np.asarray(cam.edges, dtype=np.float64)
    gs = grid.scale
    gx, gy = e[:, 0] * gs, e[:, 1] * gs
    x0, y0, x1, y1 = (float(b) for b in bbox)
    inside = (gx >= x0) & (gx <= x1) & (gy >= y0) & (gy <= y1) & (e[:, 3] != 1) & (e[:, 3] >= 0)
    if not inside.any():
        return None
    rows = np.clip(gy[inside].astype(int), 0, grid.h - 1)
    cols = np.clip(gx[inside].astype(int), 0, grid.w - 1)
    mine = grid.labels[rows, cols] == k
    axis, length = e[inside][mine, 3].astype(int), e[inside][mine, 2]
    if len(axis) < 2 or length.sum() < MANHATTAN_EDGES * (x1 - x0) / gs:
        return None
    j = 0 if length[axis == 0].sum() >= length[axis == 2].sum() else 1
    d = ctx.pose.R @ np.asarray(cam.horizontals[j])
    return math.degrees(math.atan2(-d[2], d[0]))


def _members(ctx: ObjectContext, members: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Positions (into the grouped arrays) of the pixels of one or more instances, and their
    bounding box, depth summary and mean confidence."""
    st, groups, px = ctx.inst.stats, ctx.inst.groups, ctx.inst.px
    if len(members) == 1:
        i = members[0]
        sl = groups.span(i)
        return np.arange(sl.start, sl.stop), st.bbox[i], st.depth[i], st.confidence[i]
    pos = np.concatenate([np.arange(groups.span(i).start, groups.span(i).stop) for i in members])
    bb = st.bbox[members]
    bbox = np.array([bb[:, 0].min(), bb[:, 1].min(), bb[:, 2].max(), bb[:, 3].max()])
    dstats = depth_summary(px.depth[pos]) if px.depth is not None else np.array([np.nan] * 6 + [0.0])
    w = st.count[members].astype(np.float64)
    conf = float(np.sum(st.confidence[members] * w) / w.sum())
    return pos, bbox, dstats, conf


def _refine_bbox(grid: Grid, k: int, bbox: np.ndarray) -> np.ndarray:
    """A grid bounding box made exact in analysed pixels (returned in grid units, floats).

    The grid samples every 1/gs-th analysed pixel, so the segment's true edge lies between the
    sampled pixel at the grid box's edge and the next sampled one: the strip in between is
    searched for class k in the analysed labels (a few pixels wide, never the image)."""
    if grid.scale == 1.0 or grid.rows is None or grid.cols is None:
        return bbox
    rows, cols, lab = grid.rows, grid.cols, grid.labels0
    gx0, gy0, gx1, gy1 = (int(b) for b in bbox)
    if gx1 <= gx0 or gy1 <= gy0:
        return bbox
    ax0, ax1 = int(cols[gx0]), int(cols[gx1 - 1]) + 1  # sampled extent (analysed pixels)
    ay0, ay1 = int(rows[gy0]), int(rows[gy1 - 1]) + 1
    lx = int(cols[gx0 - 1]) + 1 if gx0 > 0 else 0  # the true extent lies within [lx, hx)
    hx = int(cols[gx1]) if gx1 < len(cols) else grid.w0
    ly = int(rows[gy0 - 1]) + 1 if gy0 > 0 else 0
    hy = int(rows[gy1]) if gy1 < len(rows) else grid.h0
    if ax0 > lx:
        hit = np.flatnonzero((lab[ly:hy, lx:ax0] == k).any(axis=0))
        ax0 = lx + int(hit[0]) if len(hit) else ax0
    if hx > ax1:
        hit = np.flatnonzero((lab[ly:hy, ax1:hx] == k).any(axis=0))
        ax1 = ax1 + int(hit[-1]) + 1 if len(hit) else ax1
    if ay0 > ly:
        hit = np.flatnonzero((lab[ly:ay0, lx:hx] == k).any(axis=1))
        ay0 = ly + int(hit[0]) if len(hit) else ay0
    if hy > ay1:
        hit = np.flatnonzero((lab[ay1:hy, lx:hx] == k).any(axis=1))
        ay1 = ay1 + int(hit[-1]) + 1 if len(hit) else ay1
    return np.array([ax0, ay0, ax1, ay1], dtype=np.float64) * grid.scale


def _fit(ctx: ObjectContext, pos: np.ndarray, bbox: np.ndarray, spec: ShapeSpec, hidden: bool, k: int) -> Fit:
    """Oriented box of the pixels at `pos` of class `k` (before covering the segment)."""
    px, inst = ctx.inst.px, ctx.inst
    u, v = px.u[pos], px.v[pos]
    d = px.depth[pos] if px.depth is not None else None
    interior = inst.interior[pos] if inst.interior is not None else None
    pts, measured = world_points(ctx, u, v, d, bbox, spec, interior)
    yaw = _manhattan_yaw(ctx, bbox, spec, k)
    sigma = ctx.depth.sigma if measured else 0.0
    cam = ctx.pose.position
    if yaw is not None and spec.role in SNAP_ONLY_ROLES:  # a car may stand at an angle: only when close
        box, source = fit_box(pts, spec, cam, bottom_hidden=hidden, sharp=inst.sharp and measured,
                              depth_sigma=sigma)
        if abs((box.yaw - yaw + 45.0) % 90.0 - 45.0) > SNAP_DEG:
            return box, source, measured
    box, source = fit_box(pts, spec, cam, yaw=yaw, bottom_hidden=hidden, sharp=inst.sharp and measured,
                          depth_sigma=sigma)
    return box, source, measured


def merge_groups(ctx: ObjectContext) -> tuple[list[list[int]], dict[int, Fit]]:
    """Instances to build as one object, with the single-instance box fits made on the way. An
    object partly hidden behind a nearer one (a car behind a lamp post) is cut into separate segments
    of its class; their boxes, completed behind the occluder by the fit, overlap. Same class,
    overlapping boxes (20 % of the smaller) and similar median depth (within 25 %) -> one object,
    fitted on all the pixels."""
    inst, specs = ctx.inst, ctx.specs
    st = inst.stats
    n = inst.groups.n
    parent = list(range(n))
    fits: dict[int, Fit] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if ctx.depth.depth is not None:
        by_label: dict[int, list[int]] = {}
        for i in range(n):
            spec = specs[int(inst.inst_label[i])]
            if (not (spec.flat or spec.role in ("sky", "wall", "ceiling"))
                    and st.depth[i, 6] >= MIN_DEPTH_PIXELS
                    and inst.info[i] is None):  # a detected instance is one object already
                by_label.setdefault(int(inst.inst_label[i]), []).append(i)
        for k, idx in by_label.items():
            if len(idx) < 2 or len(idx) > MAX_MERGE_CANDIDATES:
                continue
            boxes = {}
            for i in idx:
                pos, bbox, _, _ = _members(ctx, [i])
                hidden = bool(inst.hidden_bottom[i]) if inst.hidden_bottom is not None else False
                fits[i] = _fit(ctx, pos, bbox, specs[k], hidden, k)  # reused by make_object
                boxes[i] = fits[i][0]
            for x in range(len(idx)):
                for y in range(x + 1, len(idx)):
                    i, j = idx[x], idx[y]
                    di, dj = st.depth[i, 2], st.depth[j, 2]
                    if abs(math.log(di / dj)) > math.log(1.25):
                        continue
                    small = min(np.prod(boxes[i].size), np.prod(boxes[j].size))
                    if box_intersection(boxes[i], boxes[j]) > 0.2 * small or (
                            _fits_prior(boxes[i], boxes[j], specs[k]) and _gap_occluded(ctx, i, j)):
                        parent[root(i)] = root(j)
    out: dict[int, list[int]] = {}
    for i in range(n):
        out.setdefault(root(i), []).append(i)
    return sorted(out.values(), key=lambda g: g[0]), fits


def _fits_prior(a: Box, b: Box, spec: ShapeSpec) -> bool:
    """Could two boxes be pieces of one object of this class? Their joint extent along the first
    box's axes must not exceed 1.3 x the class's largest prior dimension (two parked cars in a row
    are 9 m long, one is 4.5)."""
    if spec.depth_from_width:
        return True
    local = a.to_local(np.concatenate([a.corners(), b.corners()]))
    return float(np.ptp(local[:, [0, 2]], axis=0).max()) <= 1.3 * max(spec.size)


def _gap_occluded(ctx: ObjectContext, i: int, j: int) -> bool:
    """The image gap between two segments (side by side, or one above the other) is mostly
    covered by something nearer than both: they are one object seen around an occluder."""
    st, depth = ctx.inst.stats, ctx.depth.depth
    assert depth is not None
    a, b = st.bbox[i], st.bbox[j]
    near = 0.9 * min(st.depth[i, 0], st.depth[j, 0])
    rows = (max(a[1], b[1]), min(a[3], b[3]))
    cols = (max(a[0], b[0]), min(a[2], b[2]))
    if rows[1] > rows[0] and cols[0] >= cols[1]:  # side by side: the gap is the columns between
        gap = depth[rows[0]:rows[1], min(a[2], b[2]):max(a[0], b[0])]
    elif cols[1] > cols[0] and rows[0] >= rows[1]:  # one above the other
        gap = depth[min(a[3], b[3]):max(a[1], b[1]), cols[0]:cols[1]]
    else:
        return False
    if gap.size == 0:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.mean(gap * ctx.scale < near) >= 0.7)


def make_object(ctx: ObjectContext, members: list[int], spec: ShapeSpec, fits: dict[int, Fit],
                namer: Namer) -> Made:
    """One top-level object of one or more instances (of class k), without children."""
    inst, grid = ctx.inst, ctx.grid
    k = int(inst.inst_label[members[0]])
    st = inst.stats
    pos, bbox, dstats, conf = _members(ctx, members)
    bbox = _refine_bbox(grid, k, bbox)
    count = int(st.count[members].sum())
    if len(members) == 1 or ctx.color_stat == "mean":
        color = (st.color_linear[members] * st.count[members][:, None]).sum(axis=0) / max(count, 1)
    else:
        color = pixel_color(grid.rgb.reshape(-1, 3)[inst.groups.order[pos]], ctx.color_stat)
    obj = record(ctx, namer.top(ctx.names[k]), ctx.names[k], k, spec, color, count, bbox, dstats, conf)
    info = inst.info[members[0]]
    if info is not None:
        obj["instance"] = dict(info)
    u, v = inst.px.u[pos], inst.px.v[pos]
    d = inst.px.depth[pos] if inst.px.depth is not None else None
    if spec.flat:
        return Made(obj, None, place_plane(ctx, obj, u, v, d))
    hidden = bool(inst.hidden_bottom[members].any()) if inst.hidden_bottom is not None else False
    if len(members) == 1 and members[0] in fits:  # fitted already by merge_groups
        box, source, measured = fits[members[0]]
    else:
        box, source, measured = _fit(ctx, pos, bbox, spec, hidden, k)
    if measured and ctx.depth_kind != "metric" and placement.ENABLED:  # network depth (placement.py)
        assert inst.contact is not None
        box, source, rec_ = placement.place(
            box, source, spec, bbox, placement.foot_column(u, v, float(bbox[1]), float(bbox[3])),
            float(dstats[2]),
            contact_row=int(inst.contact[members].max()), limited=hidden or float(bbox[3]) >= grid.h - 0.5,
            pose=ctx.pose, intr=grid.intr, has_ground=ctx.has_ground, u=u, v=v, ground_px=inst.ground_px)
        if rec_ is not None:
            obj["placement"] = rec_
    frozen = (1,) if spec.role == "ceiling" else (2,) if spec.slab else ()
    box = cover_bbox(box, bbox, ctx.pose, grid.intr, keep_bottom=box.bottom <= 1e-6, frozen=frozen)
    _apply_box(obj, box, spec, source if measured else "prior")
    return Made(obj, (box, spec, pos), ())


def _apply_box(obj: dict[str, Any], box: Box, spec: ShapeSpec, source: str) -> None:
    """The record's geometry from its box (a tree: the canopy, with the trunk as a part)."""
    obj["translate"], obj["rotate"], obj["size"] = r(box.center), [0.0, r(box.yaw), 0.0], r(box.size)
    obj["thickness_source"] = source
    if spec.trunk:  # canopy sphere on a trunk: the object is the canopy, the trunk a part
        cx, _, cz = box.center
        h, bottom = box.size[1], box.bottom
        canopy_lo = bottom + 0.35 * h
        obj["translate"] = r((cx, (canopy_lo + bottom + h) / 2, cz))
        obj["size"] = r((box.size[0], bottom + h - canopy_lo, box.size[2]))
        trunk_d = float(np.clip(0.12 * min(box.size[0], box.size[2]), 0.08, 1.5))
        trunk_h = 0.35 * h + 0.1 * h  # reaches into the canopy
        obj["parts"] = [{
            "name": obj["name"] + "_trunk", "shape": "cylinder",
            "translate": r((cx, bottom + trunk_h / 2, cz)), "rotate": [0.0, r(box.yaw), 0.0],
            "size": r((trunk_d, trunk_h, trunk_d)),
            "color_srgb": r(linear_to_srgb(np.array([0.09, 0.05, 0.03]))),
            "color_linear": [0.09, 0.05, 0.03],
        }]


def place_plane(ctx: ObjectContext, obj: dict[str, Any], u: np.ndarray, v: np.ndarray,
                d: np.ndarray | None) -> tuple[str, ...]:
    """One horizontal plane at y = 0 covering where the class's pixel rays meet the ground (set in
    the record); the warnings."""
    intr, pose = ctx.grid.intr, ctx.pose
    stride = -(-len(u) // MAX_FIT_POINTS)  # at most MAX_FIT_POINTS points
    us, vs = u[::stride], v[::stride]
    rays = pixel_rays(us + 0.5, vs + 0.5, intr, pose.R)
    down = rays[:, 1] < -1e-6
    cap = 1000.0
    if d is not None and np.isfinite(d).any():
        cap = float(np.nanpercentile(d, 99.5)) * 1.05
    obj["thickness_source"] = "none"
    if not down.any():
        obj["translate"], obj["size"] = [0.0, 0.0, -5.0], [10.0, 0.0, 10.0]
        return (f"{obj['name']}: no pixel below the horizon, plane placed under the camera",)
    t = np.minimum(-pose.T[1] / rays[down, 1], cap)  # z-depth along each ray (cam z component is -1)
    # rays in world: the camera-frame z of a ray point is -t; capping t caps the distance
    hits = pose.T + rays[down] * t[:, None]
    (x_lo, x_hi), (z_lo, z_hi) = percentiles(np.stack([hits[:, 0], hits[:, 2]]), [0.5, 99.5])
    obj["translate"] = r(((x_lo + x_hi) / 2, 0.0, (z_lo + z_hi) / 2))
    obj["size"] = r((max(x_hi - x_lo, 0.01), 0.0, max(z_hi - z_lo, 0.01)))
    return ()


def far_distance(ctx: ObjectContext, objects: list[dict[str, Any]]) -> float:
    """How far the sky backdrop stands: beyond every object."""
    cam = ctx.pose.position
    far = 0.0
    for o in objects:
        half = np.linalg.norm(o["size"]) / 2.0
        far = max(far, float(np.linalg.norm(np.asarray(o["translate"]) - cam) + half))
    return max(MIN_SKY_DISTANCE_M, 1.5 * far)


def sky(ctx: ObjectContext, i: int, namer: Namer, far: float) -> dict[str, Any]:
    """Backdrop plane facing the camera at `far`, sized to the sky's image region."""
    k = int(ctx.inst.inst_label[i])
    st = ctx.inst.stats
    obj = record(ctx, namer.top(ctx.names[k]), ctx.names[k], k, ctx.specs[k], st.color_linear[i],
                 int(st.count[i]), st.bbox[i], st.depth[i], st.confidence[i])
    x0, y0, x1, y1 = (float(b) for b in st.bbox[i])
    intr, pose = ctx.grid.intr, ctx.pose
    f = intr.focal_px
    centre_cam = np.array([((x0 + x1) / 2 - intr.cx) * far / f, -((y0 + y1) / 2 - intr.cy) * far / f, -far])
    rot = pose.R @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # plane normal +Y -> camera +Z
    obj["shape"] = "plane"
    obj["translate"] = r(pose.to_world(centre_cam))
    obj["rotate"] = r(matrix_to_euler_xyz(rot))
    obj["size"] = r(((x1 - x0) * far / f, 0.0, (y1 - y0) * far / f))
    return obj
