"""Oriented boxes that stand on the ground and line up with the photo.

A box is a centre, a yaw about world +Y and full extents along its own axes. It is fitted to an
instance's back-projected points in three steps:

1. yaw from the minimum-area rectangle of the x-z footprint (for walls and other slabs: the
   principal direction), which aligns with the visible faces whether one or two are seen;
2. extents from robust percentiles (2..98, widened by the uniform-distribution correction) along
   the box axes; a horizontal axis seen edge-on (one face visible, thin along the view ray) takes
   its extent from the class size prior and grows away from the camera;
3. `cover_bbox` grows faces (front faces first, never below the ground for standing objects) until
   the projected box contains the segment's bounding box, so it covers the object in the photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .camera import Intrinsics, euler_xyz_to_matrix, project
from .ground import Pose
from .shapes import ShapeSpec

P_LO, P_HI = 2.0, 98.0
_WIDEN = 1.0 / ((P_HI - P_LO) / 100.0)  # span of a uniform distribution from its p2..p98 span
THIN_FRACTION = 0.12
SHORT_FRACTION = 0.5  # measured depth below this fraction of a class's own prior is taken as hidden
MIN_SIZE = 0.01


@dataclass(frozen=True)
class Box:
    """Oriented box: world centre, yaw (degrees about +Y), full size along local x, y, z."""

    center: tuple[float, float, float]
    yaw: float
    size: tuple[float, float, float]

    @property
    def rotation(self) -> np.ndarray:
        return euler_xyz_to_matrix(0.0, self.yaw, 0.0)

    def corners(self) -> np.ndarray:
        s = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
        return np.asarray(self.center) + (s * np.asarray(self.size)) @ self.rotation.T

    def to_local(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=np.float64) - np.asarray(self.center)) @ self.rotation

    def grow(self, axis: int, sign: int, t: float) -> Box:
        """Move the face on side `sign` of local `axis` outward by t metres."""
        size = list(self.size)
        size[axis] += t
        c = np.asarray(self.center) + self.rotation[:, axis] * (sign * t / 2.0)
        return replace(self, center=(c[0], c[1], c[2]), size=(size[0], size[1], size[2]))

    @property
    def bottom(self) -> float:
        return float(self.center[1] - self.size[1] / 2.0)


SORT_MAX = 150_000  # percentiles: rows up to this long are sorted where sorting is fast, longer ones partitioned


def _simd_sort() -> bool:
    """Whether numpy sorts float64 with its AVX-512 kernels (x86-simd-sort, numpy >= 1.25 on an
    AVX512_SKX CPU): there a sort of short rows beats a partition at four ranks, elsewhere it loses."""
    try:
        from numpy.core import _multiarray_umath as umath  # numpy 1.x (the pin: numpy<2)
    except ImportError:  # pragma: no cover - numpy 2
        from numpy._core import _multiarray_umath as umath
    return bool(getattr(umath, "__cpu_features__", {}).get("AVX512_SKX", False))


SIMD_SORT = _simd_sort()


def percentiles(a: np.ndarray, q: list[float] | tuple[float, ...]) -> np.ndarray:
    """np.percentile(a, q, axis=-1) moved to the last axis ((..., len(q))), bit for bit the same
    ('linear' method), from the order statistics along the contiguous last axis: rows of a 2-D array
    (one per angle or per coordinate) cost one call instead of a percentile over a strided axis. The
    ranks' values are the same however they are found, so the faster way on this CPU is taken: with
    numpy's AVX-512 sort, rows up to SORT_MAX values are sorted (a partition at the four ranks two
    percentiles need takes 1.5-2.5x as long there: 45 x 800 values, 330 vs 130 us); without it a
    partition is 3-8x faster than a sort at every size (AVX2 EPYC: 45 x 800 values 0.56 vs 1.77 ms,
    3 x 100k 4.8 vs 26 ms)."""
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[-1]
    idx = np.asarray(q, dtype=np.float64) / 100.0 * (n - 1)
    lo = np.floor(idx).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = idx - lo
    part = (np.sort(a, axis=-1) if SIMD_SORT and n <= SORT_MAX
            else np.partition(a, sorted(set(lo.tolist() + hi.tolist())), axis=-1))
    x0, x1 = part[..., lo], part[..., hi]
    d = x1 - x0
    return np.where(t >= 0.5, x1 - d * (1.0 - t), x0 + d * t)


def widen(lo: float, hi: float) -> tuple[float, float]:
    mid, half = (lo + hi) / 2.0, (hi - lo) * _WIDEN / 2.0
    return float(mid - half), float(mid + half)


def robust_span(x: np.ndarray) -> tuple[float, float]:
    """Percentile 2..98 range widened to the full range of a uniform distribution."""
    lo, hi = percentiles(x, [P_LO, P_HI])
    return widen(lo, hi)


def occupied_span(x: np.ndarray, resolution: float, min_count: int = 3,
                  robust: tuple[float, float] | None = None) -> tuple[float, float]:
    """Extent of the points along one axis that does not depend on how densely they are sampled.

    A face seen at a grazing angle covers few pixels, so percentiles of the pixels' coordinates
    cut it off (a truck seen from behind loses its 8 m side). Instead the axis is divided into
    bins of `resolution` metres and the span runs from the first to the last bin holding at least
    `min_count` points (isolated stray points never extend it). Falls back to robust_span when
    too few bins qualify (`robust`: that span when the caller has it already).
    """
    lo0, hi0 = float(np.min(x)), float(np.max(x))
    if hi0 - lo0 <= resolution:
        return robust if robust is not None else robust_span(x)
    nbins = int(min(4096, np.ceil((hi0 - lo0) / resolution)))
    hist, edges = np.histogram(x, bins=nbins, range=(lo0, hi0))
    good = np.flatnonzero(hist >= min_count)
    if len(good) < 2:
        return robust if robust is not None else robust_span(x)
    return float(edges[good[0]]), float(edges[good[-1] + 1])


def _wrap(yaw: float, period: float) -> float:
    """Yaw into (-period/2, period/2]."""
    y = math.fmod(yaw + period / 2.0, period)
    if y <= 0:
        y += period
    return y - period / 2.0


def principal_yaw(xz: np.ndarray) -> float:
    """Yaw whose local x follows the main direction of the footprint (walls, fences)."""
    c = xz - xz.mean(axis=0)
    cov = c.T @ c
    w, v = np.linalg.eigh(cov)
    dx, dz = v[:, -1]
    return _wrap(-math.degrees(math.atan2(dz, dx)), 180.0)


def rect_yaw(xz: np.ndarray, max_points: int = 800) -> float:
    """Yaw in (-45, 45] of the rectangle whose edges the footprint points hug most closely.

    The visible surface of a box is one face or two perpendicular faces (an L), plus maybe the
    top. The minimum-area rectangle is ambiguous for an L (its hull is a right triangle, whose
    leg-aligned and hypotenuse-aligned rectangles have the same area), so the score is the mean
    distance of the points to the nearest edge of the robust (p2..p98) rectangle at each angle:
    a coarse 2-degree scan, refined at 0.5 then 0.05 degrees, each vectorised over angles, on at most
    `max_points` evenly spaced points.
    """
    p = np.asarray(xz, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    if len(p) > max_points:
        p = p[np.linspace(0, len(p) - 1, max_points).astype(np.int64)]
    p = p - p.mean(axis=0)
    px, pz = p[:, 0][None, :], p[:, 1][None, :]
    npx = -px

    def cost(th: np.ndarray) -> np.ndarray:  # (angles, points) rows: contiguous partitions
        c, s = np.cos(th)[:, None], np.sin(th)[:, None]
        a = px * c
        a += pz * s
        b = npx * s
        b += pz * c
        qa, qb = percentiles(a, [P_LO, P_HI]), percentiles(b, [P_LO, P_HI])
        # min over the 4 edges of |coordinate - edge|, in place (the same values as with temporaries)
        d, t = a - qa[:, :1], np.subtract(a, qa[:, 1:])
        np.abs(d, out=d)
        np.abs(t, out=t)
        np.minimum(d, t, out=d)
        e = np.subtract(b, qb[:, :1], out=a)
        np.abs(e, out=e)
        np.subtract(b, qb[:, 1:], out=t)
        np.abs(t, out=t)
        np.minimum(e, t, out=e)
        np.minimum(d, e, out=d)
        return d.mean(axis=1)

    coarse = np.radians(np.arange(0.0, 90.0, 2.0))
    th0 = coarse[int(np.argmin(cost(coarse)))]
    mid = th0 + np.radians(np.arange(-2.0, 2.0001, 0.5))
    th1 = mid[int(np.argmin(cost(mid)))]
    fine = th1 + np.radians(np.arange(-0.5, 0.5001, 0.05))
    best = fine[int(np.argmin(cost(fine)))]
    return _wrap(-math.degrees(best), 90.0)


def _prior_depth(spec: ShapeSpec, measured_other: float) -> float:
    """Extent along the view ray of an object seen face-on, from the class prior."""
    w, _, d = spec.size
    if spec.depth_from_width:
        return max(measured_other, MIN_SIZE)
    # the prior axis that does not look like the measured one (a car seen from behind: 1.8 -> 4.5)
    seen, unseen = (w, d) if abs(measured_other - w) <= abs(measured_other - d) else (d, w)
    ratio = measured_other / max(seen, MIN_SIZE)
    if not 0.5 <= ratio <= 2.0:  # far bigger or smaller than the class prior: keep its proportions
        return max(unseen * ratio, MIN_SIZE)
    return unseen


def fit_box(points: np.ndarray, spec: ShapeSpec, cam_pos: np.ndarray, *, yaw: float | None = None,
            ground: bool = True, bottom_hidden: bool = False, sharp: bool = True,
            depth_sigma: float = 0.0) -> tuple[Box, str]:
    """Oriented box of world points (n, 3); returns the box and its thickness_source.

    `yaw` fixes the orientation (children inherit their parent's); `ground` False leaves the
    bottom where the points are (no ground plane to stand on); `bottom_hidden` (the segment's
    lower outline is mostly occluded by nearer objects) makes "auto" classes stand on the ground.
    `sharp` depth (ray-cast, lidar, RGB-D) gives horizontal extents by occupancy, which keeps faces
    seen at grazing angles; blurred network depth uses percentiles, which drop edge bleeding.
    `depth_sigma` (relative per-pixel depth noise) is taken out of the percentile spans: noise
    along the view ray would otherwise make every box about 4 sigma x distance too deep.
    """
    p = np.asarray(points, dtype=np.float64)
    q1 = percentiles(np.ascontiguousarray(p.T), [1.0, 99.0])  # (3, 2)
    lo1, hi1 = q1[:, 0], q1[:, 1]
    core = p[np.all((p >= lo1) & (p <= hi1), axis=1)]
    if len(core) < 3:
        core = p
    if yaw is None:
        xz = core[:, [0, 2]]
        yaw = principal_yaw(xz) if spec.slab else rect_yaw(xz)
    ps = math.radians(yaw)
    c, s = math.cos(ps), math.sin(ps)
    abv = np.stack([p[:, 0] * c - p[:, 2] * s, p[:, 0] * s + p[:, 2] * c, p[:, 1]])  # (3, n) rows
    coords = [abv[0], abv[1]]
    q2 = percentiles(abv, [P_LO, P_HI])  # p2, p98 of a, b and y in one partition
    cam = [cam_pos[0] * c - cam_pos[2] * s, cam_pos[0] * s + cam_pos[2] * c]
    dist = float(percentiles(np.linalg.norm(p - cam_pos, axis=1), [50.0])[0])
    noise = max(0.02, 0.01 * dist)
    # bins of about the depth noise, and at least 1/200 of the object's robust size
    res = max(noise, 0.005 * max(q2[0, 1] - q2[0, 0], q2[1, 1] - q2[1, 0]))
    robust = [widen(q2[k, 0], q2[k, 1]) for k in range(3)]
    spans = [occupied_span(x, res, robust=robust[k]) if sharp else robust[k] for k, x in enumerate(coords)]
    if depth_sigma > 0:
        view = np.asarray(p.mean(axis=0) - cam_pos)
        view = view / max(float(np.linalg.norm(view)), 1e-9)
        for k, axis in enumerate(((c, -s), (s, c))):
            spread = 4.3 * depth_sigma * dist * abs(view[0] * axis[0] + view[2] * axis[1])
            lo, hi = spans[k]
            half = max((hi - lo - spread) / 2.0, 0.25 * (hi - lo) / 2.0)
            spans[k] = ((lo + hi) / 2.0 - half, (lo + hi) / 2.0 + half)
    ext = [spans[0][1] - spans[0][0], spans[1][1] - spans[1][0]]

    source = "measured"
    thin: int | None = None
    if spec.role == "ceiling":
        source = "prior"
    elif spec.slab:
        thin = 1
    else:
        is_thin = [ext[0] < max(noise, THIN_FRACTION * ext[1]), ext[1] < max(noise, THIN_FRACTION * ext[0])]
        if all(is_thin):  # small and far: the axis closer to the view ray is the unseen one
            view = np.asarray(p.mean(axis=0) - cam_pos)
            along = [abs(view[0] * c - view[2] * s), abs(view[0] * s + view[2] * c)]
            thin = int(np.argmax(along))
        elif any(is_thin):
            thin = int(is_thin.index(True))
        elif not spec.depth_from_width:
            # A specific class prior (a car is 4.5 m long): the axis along the view ray is the one
            # that hides its extent (a sliver of side face); far shorter than the prior -> prior.
            view = np.asarray(p.mean(axis=0) - cam_pos)
            along = [abs(view[0] * c - view[2] * s), abs(view[0] * s + view[2] * c)]
            k = int(np.argmax(along))
            if ext[k] < SHORT_FRACTION * _prior_depth(spec, ext[1 - k]):
                thin = k
    if thin is not None:
        other = ext[1 - thin]
        prior = spec.size[2] if spec.slab else _prior_depth(spec, other)
        m = ext[thin]
        if spec.slab or m <= noise:
            value, source = prior, "prior"
        else:
            value, source = max(m, prior), "mixed"
        lo, hi = spans[thin]
        if spec.slab:  # the visible face is the median plane; the slab lies behind it
            face = float(np.median(coords[thin]))
            lo = hi = face
        if cam[thin] <= lo:
            spans[thin] = (lo, lo + value)
        elif cam[thin] >= hi:
            spans[thin] = (hi - value, hi)
        else:
            mid = (lo + hi) / 2.0
            spans[thin] = (mid - value / 2.0, mid + value / 2.0)

    y_lo, y_hi = robust[2]
    if spec.role == "ceiling":
        face = float(np.median(p[:, 1]))
        y_lo, y_hi = face, face + spec.size[1]
    else:
        standing = spec.standing
        if standing == "auto":
            standing = bottom_hidden or y_lo < max(0.25, 0.2 * (y_hi - y_lo))
        if ground and standing:
            y_lo = 0.0
        elif ground and y_hi > 0:
            y_lo = max(y_lo, 0.0)
        y_hi = max(y_hi, y_lo + MIN_SIZE)

    a_lo, a_hi = spans[0]
    b_lo, b_hi = spans[1]
    am, bm = (a_lo + a_hi) / 2.0, (b_lo + b_hi) / 2.0
    center = (am * c + bm * s, (y_lo + y_hi) / 2.0, -am * s + bm * c)
    size = (max(a_hi - a_lo, MIN_SIZE), max(y_hi - y_lo, MIN_SIZE), max(b_hi - b_lo, MIN_SIZE))
    return Box(center=center, yaw=float(yaw), size=size), source


def projected_bounds(box: Box, pose: Pose, intr: Intrinsics, near: float = 0.05) -> np.ndarray | None:
    """[umin, vmin, umax, vmax] of the box corners in the image, None if a corner is behind the camera."""
    pc = pose.to_cam(box.corners())
    if np.any(pc[:, 2] > -near):
        return None
    uv = project(pc, intr)
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


_SIGNS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])


def cover_bbox(box: Box, bbox: np.ndarray, pose: Pose, intr: Intrinsics, *, keep_bottom: bool,
               frozen: tuple[int, ...] = (), tol: float = 0.25, passes: int = 2, near: float = 0.05) -> Box:
    """Grow the box until its projection contains `bbox` ([x0, y0, x1, y1) analysis pixels).

    For each uncovered side, the face whose small outward move helps that side most is pushed
    out (exponential search, then bisection to 1e-3 of the move: growing a box only grows its
    projection, so the search is monotone). `keep_bottom` forbids moving the bottom face (standing
    objects), which makes the front faces come forward instead; axes in `frozen` never change (a
    slab's thickness). The yaw never changes, so the corners' camera coordinates come from two
    fixed matrices (no Box objects inside the search).
    """
    target = np.asarray(bbox, dtype=np.float64)
    moves = [(ax, sg) for ax in range(3) for sg in (-1, 1)
             if ax not in frozen and not (keep_bottom and ax == 1 and sg == -1)]
    rot = box.rotation
    to_cam = rot.T @ pose.R  # local offsets -> camera frame
    f, cx, cy = intr.focal_px, intr.cx, intr.cy

    def deficit(c: np.ndarray, sz: np.ndarray, side: int) -> float:
        pc = (c - pose.T) @ pose.R + (_SIGNS * sz) @ to_cam
        d = -pc[:, 2]
        if (d < near).any():  # array methods: the same reductions without the np.* dispatch (~1700 calls)
            return math.inf
        if side == 0:
            return float((pc[:, 0] * f / d).min()) + cx - target[0]
        if side == 2:
            return target[2] - (float((pc[:, 0] * f / d).max()) + cx)
        if side == 1:
            return float((-pc[:, 1] * f / d).min()) + cy - target[1]
        return target[3] - (float((-pc[:, 1] * f / d).max()) + cy)

    def grow(c: np.ndarray, sz: np.ndarray, ax: int, sg: int, t: float) -> tuple[np.ndarray, np.ndarray]:
        sz2 = sz.copy()
        sz2[ax] += t
        return c + rot[:, ax] * (sg * t / 2.0), sz2

    c = np.asarray(box.center, dtype=np.float64)
    sz = np.asarray(box.size, dtype=np.float64)
    for _ in range(passes):
        for side in range(4):
            need = deficit(c, sz, side)
            if not math.isfinite(need):
                return Box(center=tuple(c), yaw=box.yaw, size=tuple(sz))
            if need <= tol:
                continue
            step = 0.02 * float(sz.max()) + 1e-3
            best, best_gain = None, 0.0
            for ax, sg in moves:
                gain = need - deficit(*grow(c, sz, ax, sg, step), side)
                if gain > best_gain:
                    best, best_gain = (ax, sg), gain
            if best is None:
                continue
            ax, sg = best
            limit = 2.0 * float(sz.max()) + 2.0  # covering never turns a box into a corridor
            lo_t, hi_t = 0.0, step
            while deficit(*grow(c, sz, ax, sg, hi_t), side) > tol:
                if hi_t > limit:
                    break
                lo_t, hi_t = hi_t, hi_t * 2.0
            else:
                while hi_t - lo_t > 1e-3 * hi_t:
                    mid = (lo_t + hi_t) / 2.0
                    if deficit(*grow(c, sz, ax, sg, mid), side) > tol:
                        lo_t = mid
                    else:
                        hi_t = mid
                c, sz = grow(c, sz, ax, sg, hi_t)
    return Box(center=(float(c[0]), float(c[1]), float(c[2])), yaw=box.yaw,
               size=(float(sz[0]), float(sz[1]), float(sz[2])))


def _footprint(box: Box) -> np.ndarray:
    """Counter-clockwise x-z corners of the box footprint."""
    sx, sz = box.size[0] / 2.0, box.size[2] / 2.0
    local = np.array([[-sx, -sz], [sx, -sz], [sx, sz], [-sx, sz]])
    ps = math.radians(box.yaw)
    c, s = math.cos(ps), math.sin(ps)
    # world x = a c + b s, world z = -a s + b c
    pts = np.stack([local[:, 0] * c + local[:, 1] * s, -local[:, 0] * s + local[:, 1] * c], axis=1)
    pts += np.array([box.center[0], box.center[2]])
    if _area(pts) < 0:
        pts = pts[::-1]
    return pts


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _clip(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: part of convex polygon `subject` inside convex ccw polygon `clip`."""
    out = subject
    for i in range(len(clip)):
        if len(out) == 0:
            break
        a, b = clip[i], clip[(i + 1) % len(clip)]
        edge = b - a

        def inside(p: np.ndarray, a: np.ndarray = a, edge: np.ndarray = edge) -> bool:
            return edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) >= 0

        def cross(p: np.ndarray, q: np.ndarray, a: np.ndarray = a, edge: np.ndarray = edge) -> np.ndarray:
            d = q - p
            den = edge[0] * d[1] - edge[1] * d[0]
            t = (edge[1] * (p[0] - a[0]) - edge[0] * (p[1] - a[1])) / den
            return p + t * d

        new = []
        for j in range(len(out)):
            cur, prev = out[j], out[j - 1]
            if inside(cur):
                if not inside(prev):
                    new.append(cross(prev, cur))
                new.append(cur)
            elif inside(prev):
                new.append(cross(prev, cur))
        out = np.array(new)
    return out


def box_intersection(a: Box, b: Box) -> float:
    """Volume shared by two yaw-oriented boxes (footprint polygon overlap times vertical overlap)."""
    reach = math.hypot(a.size[0], a.size[2]) / 2.0 + math.hypot(b.size[0], b.size[2]) / 2.0
    if math.hypot(a.center[0] - b.center[0], a.center[2] - b.center[2]) >= reach:  # footprints apart
        return 0.0
    inter_poly = _clip(_footprint(a), _footprint(b))
    area = abs(_area(inter_poly)) if len(inter_poly) >= 3 else 0.0
    ya = (a.center[1] - a.size[1] / 2, a.center[1] + a.size[1] / 2)
    yb = (b.center[1] - b.size[1] / 2, b.center[1] + b.size[1] / 2)
    return area * max(0.0, min(ya[1], yb[1]) - max(ya[0], yb[0]))


def box_iou(a: Box, b: Box) -> float:
    """3D IoU of two yaw-oriented boxes."""
    inter = box_intersection(a, b)
    union = float(np.prod(a.size) + np.prod(b.size)) - inter
    return inter / union if union > 0 else 0.0
