"""Vanishing points and the Manhattan frame of a photo's line segments, with the focal length.

The maths (docs/CAMERA.md): image points are taken relative to the principal point (the image centre)
and divided by the image's long side, so that a focal length is a number ``phi`` near 1. A segment of
endpoints ``q1, q2`` has the homogeneous line ``l = (q1, 1) x (q2, 1)``; a vanishing point is a
homogeneous point ``v`` (unit vector, ``v_z = 0`` at infinity). The camera's three Manhattan axes are
the columns of a rotation ``R`` (OpenCV camera frame: x right, y down, z forward); axis ``u`` vanishes
at ``v = (phi u_x, phi u_y, u_z)``.

1. Candidate vanishing points: intersections of random pairs of segments, scored by the length of
   the segments that point at them (the angle between a segment and the line from its midpoint to
   the point below a threshold that widens for short segments); the best is kept, its segments are
   removed, and so on (sequential RANSAC, all hypotheses scored in one vectorised pass).
2. Manhattan hypotheses: a vertical candidate (its image direction within MAX_ROLL_DEG of the image's
   vertical) and a horizontal one, at each focal length the orthogonality of two finite candidates
   gives and at each of a sweep of focal lengths; the frame is completed by a cross product and
   scored on every segment against its three vanishing points.
3. Refinement: robust least squares of the segments' interpretation-plane normals against their axes
   over (log phi, rotation), with a weak prior on phi; the Jacobian gives the focal length's standard
   error, and where the lines do not determine it the prior focal is kept and only the rotation fitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from .segments import Segments

PAIR_SAMPLES = 1500  # random segment pairs proposing vanishing points (per round of the sequential search)
MAX_CANDIDATES = 5  # vanishing points found by the sequential search
ANGLE_MIN_DEG = 1.0  # inlier angle threshold: at least this ...
ANGLE_MAX_DEG = 3.0  # ... at most this ...
ANGLE_PX = 1.5  # ... and in between, the angle an endpoint error of this many pixels makes (detection image)
MIN_SUPPORT_FRAC = 0.15  # a vanishing point needs inlier length >= this fraction of the image diagonal
MAX_ROLL_DEG = 35.0  # the vertical vanishing point is within this of the image's vertical ...
MAX_PITCH_DEG = 50.0  # ... and the camera pitched at most this much
FOV_RANGE_DEG = (15.0, 130.0)  # focal lengths considered (horizontal field of view)
SWEEP_STEPS = 24  # focal lengths of the sweep (log-spaced over FOV_RANGE_DEG)
PRIOR_SIGMA = 0.6  # prior on log focal (weak: about x1.8 at one sigma)
FOCAL_DETERMINED = 0.12  # the lines determine the focal when its log's standard error is below this
MAX_SKY_BELOW = 1 / 3  # the horizon is below most of the sky (a network may call a dark hedge sky) ...
MAX_GROUND_ABOVE = 0.5  # ... and above most of the ground
ASSIGN_ROUNDS = (2.0, 1.0)  # refinement rounds: segments reassigned within this x their threshold, refitted
NOISE = math.radians(1.0)  # expected residual of a segment's normal against its axis


@dataclass(frozen=True)
class Frame:
    """A Manhattan frame: axes (3x3, columns, OpenCV camera frame), the vertical's column, the focal
    in pixels, whether the lines determined it, and per-axis inlier lengths (pixels, each segment's
    length times the trust of its class: segments.ROLE_TRUST)."""

    axes: np.ndarray
    vertical: int
    focal_px: float
    focal_from_lines: bool
    focal_log_std: float
    support_px: tuple[float, float, float]
    segments_per_axis: tuple[int, int, int]
    cost: float
    assignment: np.ndarray  # (N,) each segment's axis 0..2, or -1

@dataclass(frozen=True)
class _Norm:
    """Segments in normalised image coordinates."""

    q1: np.ndarray  # (N, 2)
    q2: np.ndarray
    mid: np.ndarray  # (N, 3) homogeneous
    dirs: np.ndarray  # (N, 2) unit
    lines: np.ndarray  # (N, 3), |l[:2]| = 1
    thresh: np.ndarray  # (N,) sin of the inlier angle
    weight: np.ndarray  # (N,), mean 1
    length_px: np.ndarray  # (N,) photo pixels
    scale: float  # pixels per normalised unit
    trusted_px: np.ndarray  # (N,) length x the trust of the class under the segment (Segments.weight)


def _normalise(seg: Segments, width: int, height: int, detect_scale: float) -> _Norm:
    scale = float(max(width, height))
    c = np.array([width / 2.0, height / 2.0])
    q1 = (seg.xy[:, :2] - c) / scale
    q2 = (seg.xy[:, 2:] - c) / scale
    d = q2 - q1
    ln = np.linalg.norm(d, axis=1)
    dirs = d / ln[:, None]
    h1 = np.column_stack([q1, np.ones(len(q1))])
    h2 = np.column_stack([q2, np.ones(len(q2))])
    lines = np.cross(h1, h2)
    lines /= np.linalg.norm(lines[:, :2], axis=1)[:, None]
    mid = np.column_stack([(q1 + q2) / 2, np.ones(len(q1))])
    length_px = ln * scale
    ang = np.clip(np.arctan2(ANGLE_PX, length_px * detect_scale / 2), math.radians(ANGLE_MIN_DEG),
                  math.radians(ANGLE_MAX_DEG))
    w = seg.weight / max(float(seg.weight.mean()), 1e-12)
    return _Norm(q1, q2, mid, dirs, lines, np.sin(ang), w, length_px, scale, np.asarray(seg.weight, float))


def _sin_angles(n: _Norm, vps: np.ndarray) -> np.ndarray:
    """|sin| of the angle between each segment and the line from its midpoint to each point: (M, N)."""
    a, b, c = vps[:, 0:1], vps[:, 1:2], vps[:, 2:3]
    mx, my = n.mid[None, :, 0], n.mid[None, :, 1]
    g0 = my * c - b  # the line through midpoint and point: (midpoint, 1) x point, first two components
    g1 = a - mx * c
    dot = np.abs(g0 * n.dirs[None, :, 0] + g1 * n.dirs[None, :, 1])
    gn = np.sqrt(g0 * g0 + g1 * g1)
    return np.where(gn > 1e-12, dot / np.maximum(gn, 1e-12), 1.0)


def _soft(n: _Norm, s: np.ndarray) -> np.ndarray:
    """Soft inlier score in [0, 1] of (M, N) sines against each segment's threshold."""
    return np.maximum(0.0, 1.0 - (s / n.thresh[None, :]) ** 2)


def _refine_point(n: _Norm, inl: np.ndarray) -> np.ndarray:
    """The point closest (weighted algebraic distance) to the inlier segments' lines."""
    lw = n.lines[inl] * np.sqrt(n.weight[inl])[:, None]
    _, _, vt = np.linalg.svd(lw, full_matrices=False)
    return vt[-1]


@dataclass(frozen=True)
class Candidates:
    """What the search needs of a photo's segments whatever the focal: the segments normalised and the
    sequential RANSAC's vanishing points (seeded, so the same for the same segments). A typed FOV
    re-estimates from them (estimate's `found`) without searching again."""

    norm: _Norm
    points: tuple[np.ndarray, ...]
    width: int
    height: int
    detect_scale: float
    seed: int


def find_candidates(seg: Segments, width: int, height: int, *, detect_scale: float = 1.0,
                    seed: int = 0) -> Candidates | None:
    """The focal-free part of `estimate` (None: fewer than 4 segments, nothing to search)."""
    if len(seg) < 4:
        return None
    n = _normalise(seg, width, height, detect_scale)
    return Candidates(n, tuple(candidates(n, np.random.default_rng(seed))), width, height, detect_scale, seed)


def candidates(n: _Norm, rng: np.random.Generator) -> list[np.ndarray]:
    """Vanishing points by sequential RANSAC over segment pairs (unit homogeneous vectors)."""
    diag_units = math.hypot(1.0, 1.0)
    total_len = n.length_px.sum()
    alive = np.ones(len(n.weight), dtype=bool)
    found: list[np.ndarray] = []
    for _ in range(MAX_CANDIDATES):
        idx = np.flatnonzero(alive)
        if len(idx) < 2:
            break
        p = n.weight[idx] / n.weight[idx].sum()
        pairs = rng.choice(idx, size=(PAIR_SAMPLES, 2), p=p)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        v = np.cross(n.lines[pairs[:, 0]], n.lines[pairs[:, 1]])
        vn = np.linalg.norm(v, axis=1)
        v = v[vn > 1e-9] / vn[vn > 1e-9, None]
        if not len(v):
            break
        score = (_soft(n, _sin_angles(n, v)) * (n.weight * alive)[None, :]).sum(axis=1)
        best = v[int(np.argmax(score))]
        inl = alive & (_sin_angles(n, best[None])[0] < n.thresh)
        if inl.sum() < 2:
            break
        best = _refine_point(n, inl)
        inl = alive & (_sin_angles(n, best[None])[0] < n.thresh)
        if n.length_px[inl].sum() < MIN_SUPPORT_FRAC * diag_units * n.scale and n.length_px[inl].sum() < 0.1 * total_len:
            break
        found.append(best)
        alive &= ~inl
    return found


def _is_vertical(v: np.ndarray) -> bool:
    """The candidate's image direction (from the centre) within MAX_ROLL_DEG of the image vertical."""
    x, y = abs(float(v[0])), abs(float(v[1]))
    return math.degrees(math.atan2(x, y)) <= MAX_ROLL_DEG


def _plausible_vertical(a: np.ndarray) -> bool:
    """A camera-frame vertical within MAX_PITCH_DEG of the image plane and MAX_ROLL_DEG of its y axis."""
    return (abs(float(a[2])) <= math.sin(math.radians(MAX_PITCH_DEG))
            and math.degrees(math.atan2(abs(float(a[0])), abs(float(a[1])))) <= MAX_ROLL_DEG)


def _frame(v_vert: np.ndarray, v_hor: np.ndarray, phi: float) -> np.ndarray:
    fr = _frames(v_vert, v_hor, np.array([phi]))[0]
    return fr if np.isfinite(fr).all() else np.full((3, 3), np.nan)


def _dirs(v: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(F, 3) unit camera directions (v_x / phi, v_y / phi, v_z) of one vanishing point at each focal."""
    d = np.empty((len(phi), 3))
    d[:, 0], d[:, 1], d[:, 2] = v[0] / phi, v[1] / phi, v[2]
    return d / np.linalg.norm(d, axis=1)[:, None]


def _frames(v_vert: np.ndarray, v_hor: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(F, 3, 3) frames of a vertical and a horizontal vanishing point at each focal; columns:
    horizontal, vertical, the other horizontal (the horizontal columns NaN where the two points
    coincide; _frame makes that whole frame NaN). Row-wise sums, norms and the cross product written
    out give the same numbers as one frame at a time."""
    a = _dirs(v_vert, phi)
    b = _dirs(v_hor, phi)
    b = b - (b * a).sum(axis=1)[:, None] * a
    nb = np.linalg.norm(b, axis=1)
    b = b / np.where(nb < 1e-9, np.nan, nb)[:, None]
    out = np.empty((len(phi), 3, 3))
    out[:, :, 0], out[:, :, 1] = b, a
    out[:, 0, 2] = b[:, 1] * a[:, 2] - b[:, 2] * a[:, 1]
    out[:, 1, 2] = b[:, 2] * a[:, 0] - b[:, 0] * a[:, 2]
    out[:, 2, 2] = b[:, 0] * a[:, 1] - b[:, 1] * a[:, 0]
    return out


def _phi_range(width: int, height: int) -> tuple[float, float]:
    scale = max(width, height)
    lo, hi = (width / (2 * math.tan(math.radians(a) / 2)) / scale for a in (FOV_RANGE_DEG[1], FOV_RANGE_DEG[0]))
    return lo, hi


def _hypotheses(cands: list[np.ndarray], width: int, height: int,
                fixed_phi: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(phi (H,), axes (H, 3, 3)) Manhattan hypotheses from the candidates; the vertical is column 1.
    `fixed_phi`: the known focal, the only one tried (one frame per vertical and horizontal pair)."""
    lo, hi = _phi_range(width, height)
    sweep = np.exp(np.linspace(math.log(lo), math.log(hi), SWEEP_STEPS))
    phis: list[float] = []
    frames: list[np.ndarray] = []
    for i, vi in enumerate(cands):
        if not _is_vertical(vi):
            continue
        for j, vj in enumerate(cands):
            if j == i:
                continue
            if fixed_phi is not None:
                fr = _frame(vi, vj, fixed_phi)
                if np.isfinite(fr).all() and _plausible_vertical(fr[:, 1]):
                    phis.append(fixed_phi)
                    frames.append(fr)
                continue
            focal = list(sweep)
            if abs(vi[2]) > 1e-9 and abs(vj[2]) > 1e-9:
                f2 = -float(vi[:2] @ vj[:2]) / (vi[2] * vj[2])
                if f2 > 0 and lo <= math.sqrt(f2) <= hi:
                    focal.append(math.sqrt(f2))
            for k, vk in enumerate(cands):  # two horizontals: the focal from their orthogonality
                if k in (i, j) or abs(vj[2]) < 1e-9 or abs(vk[2]) < 1e-9:
                    continue
                f2 = -float(vj[:2] @ vk[:2]) / (vj[2] * vk[2])
                if f2 > 0 and lo <= math.sqrt(f2) <= hi:
                    focal.append(math.sqrt(f2))
            for phi, fr in zip(focal, _frames(vi, vj, np.array(focal)), strict=True):
                if np.isfinite(fr).all() and _plausible_vertical(fr[:, 1]):
                    phis.append(phi)
                    frames.append(fr)
    if not phis:
        return np.zeros(0), np.zeros((0, 3, 3))
    return np.array(phis), np.array(frames)


def _vps(phi: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Image vanishing points (H, 3, 3): [h, k] is axis k's homogeneous point."""
    v = np.swapaxes(axes, 1, 2).copy()  # rows = axes
    v[..., 0] *= phi[:, None]
    v[..., 1] *= phi[:, None]
    return v / np.linalg.norm(v, axis=2, keepdims=True)


def _scores(n: _Norm, phi: np.ndarray, axes: np.ndarray) -> np.ndarray:
    v = _vps(phi, axes).reshape(-1, 3)
    soft = _soft(n, _sin_angles(n, v)).reshape(len(phi), 3, -1)
    return (soft.max(axis=1) * n.weight[None, :]).sum(axis=1)


def _normals(n: _Norm, phi: float) -> np.ndarray:
    """Unit normals (N, 3) of the segments' interpretation planes, (q1 / phi, 1) x (q2 / phi, 1): the
    products np.cross forms, written out (the least squares calls this ~170 times per photo)."""
    a, b = n.q1 / phi, n.q2 / phi
    c = np.empty((len(a), 3))
    c[:, 0] = a[:, 1] - b[:, 1]
    c[:, 1] = b[:, 0] - a[:, 0]
    c[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return c / np.linalg.norm(c, axis=1)[:, None]


def _assign(n: _Norm, phi: float, axes: np.ndarray, k: float = 2.0) -> np.ndarray:
    """Each segment's axis (0..2) or -1 (outlier), by its angle to the three vanishing points."""
    s = _sin_angles(n, _vps(np.array([phi]), axes[None])[0])
    best = np.argmin(s, axis=0)
    ok = s[best, np.arange(s.shape[1])] < k * n.thresh
    return np.where(ok, best, -1)


def _refine(n: _Norm, phi0: float, axes0: np.ndarray, phi_prior: float, free_focal: bool,
            phi_range: tuple[float, float]) -> tuple[float, np.ndarray, float, float]:
    """Least squares over (log phi, rotation), reassigning the segments between rounds."""
    phi, axes, std, cost = phi0, axes0, float("inf"), float("inf")
    for k in ASSIGN_ROUNDS:
        phi, axes, std, cost = _refine_once(n, phi, axes, phi_prior, free_focal, k, phi_range)
    return phi, axes, std, cost


def _refine_once(n: _Norm, phi0: float, axes0: np.ndarray, phi_prior: float, free_focal: bool, k: float,
                 phi_range: tuple[float, float]) -> tuple[float, np.ndarray, float, float]:
    """Least squares over (log phi, rotation) of the assigned segments; (phi, axes, log-phi std, cost)."""
    lab = _assign(n, phi0, axes0, k)
    use = lab >= 0
    sw = np.sqrt(n.weight[use])
    lab_u = lab[use]
    nu = _Norm(n.q1[use], n.q2[use], n.mid[use], n.dirs[use], n.lines[use], n.thresh[use], n.weight[use],
               n.length_px[use], n.scale, n.trusted_px[use])

    def unpack(x: np.ndarray) -> tuple[float, np.ndarray]:
        phi = math.exp(x[0]) if free_focal else phi0
        return phi, Rotation.from_rotvec(x[1:4]).as_matrix() @ axes0

    def resid(x: np.ndarray) -> np.ndarray:
        phi, axes = unpack(x)
        normals = _normals(nu, phi)
        r = np.einsum("ij,ij->i", normals, axes[:, lab_u].T) * sw
        prior = (x[0] - math.log(phi_prior)) / PRIOR_SIGMA * NOISE if free_focal else 0.0
        return np.append(r, prior)

    lo, hi = math.log(phi_range[0]), math.log(phi_range[1])
    x0 = np.array([min(max(math.log(phi0), lo + 1e-9), hi - 1e-9), 0.0, 0.0, 0.0])
    if not use.any():
        return phi0, axes0, float("inf"), float("inf")
    bounds = (np.array([lo, -np.inf, -np.inf, -np.inf]), np.array([hi, np.inf, np.inf, np.inf]))
    sol = least_squares(resid, x0, loss="soft_l1", f_scale=NOISE, max_nfev=60, bounds=bounds,
                        x_scale=np.array([0.1, 0.01, 0.01, 0.01]))
    phi, axes = unpack(sol.x)
    std = float("inf")
    if free_focal:
        jac = sol.jac
        try:
            cov = np.linalg.inv(jac.T @ jac) * NOISE ** 2
            std = float(math.sqrt(max(cov[0, 0], 0.0)))
        except np.linalg.LinAlgError:
            std = float("inf")
    return phi, axes, std, float(sol.cost)


def _up(axes: np.ndarray) -> np.ndarray:
    """(H, 3) world up of each frame's vertical axis: towards the image's top (OpenCV y is down)."""
    up = axes[:, :, 1]
    return up * np.where(up[:, 1] > 0, -1.0, 1.0)[:, None]


def horizon_ok(phi: np.ndarray, axes: np.ndarray, sky: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """(H,) whether each frame's horizon lies below the sky (at most MAX_SKY_BELOW of its points below)
    and above most of the ground (at most MAX_GROUND_ABOVE of it above: a hill may rise above it);
    points are normalised image points (P, 2)."""
    up = _up(axes)
    ok = np.ones(len(phi), dtype=bool)
    for pts, above_ok, limit in ((sky, True, MAX_SKY_BELOW), (ground, False, MAX_GROUND_ABOVE)):
        if len(pts) == 0:
            continue
        # d . up for d = (q / phi, 1): the ray through the point goes up when q . up_xy > -phi up_z
        # (phi > 0); one (P, 2) x (2, H) product for every hypothesis at once
        above = np.count_nonzero((pts @ up[:, :2].T) > -(phi * up[:, 2])[None, :], axis=0)
        bad = len(pts) - above if above_ok else above
        ok &= bad / len(pts) <= limit
    return ok


def estimate(seg: Segments, width: int, height: int, prior_focal_px: float, *, detect_scale: float = 1.0,
             fixed_focal: bool = False, sky: np.ndarray | None = None, ground: np.ndarray | None = None,
             seed: int = 0, found: Candidates | None = None) -> Frame | None:
    """The Manhattan frame of the segments, or None when no vertical vanishing point is found.

    `prior_focal_px`: the focal used where the lines do not determine it (EXIF or the default);
    `fixed_focal`: keep it whatever the lines say (the user's or EXIF's focal); `sky`, `ground`:
    photo pixel positions (P, 2) of sky and ground classes, which must lie above and below the horizon.
    `found`: find_candidates of these segments with the same size, scale and seed, made earlier."""
    if found is None or (found.width, found.height, found.detect_scale, found.seed) != (width, height,
                                                                                      detect_scale, seed):
        found = find_candidates(seg, width, height, detect_scale=detect_scale, seed=seed)
    if found is None:
        return None
    n, cands = found.norm, list(found.points)
    phi_prior = prior_focal_px / n.scale
    phis, frames = _hypotheses(cands, width, height, phi_prior if fixed_focal else None)
    c = np.array([width / 2.0, height / 2.0])
    sky_q = (np.zeros((0, 2)) if sky is None else (np.asarray(sky, float) - c) / n.scale)
    ground_q = (np.zeros((0, 2)) if ground is None else (np.asarray(ground, float) - c) / n.scale)
    if len(phis):
        ok = horizon_ok(phis, frames, sky_q, ground_q)
        phis, frames = phis[ok], frames[ok]
    if not len(phis):
        return None
    score = _scores(n, phis, frames)
    best = int(np.argmax(score))
    phi, axes = float(phis[best]), frames[best]
    phi_range = _phi_range(width, height)
    phi_range = (min(phi_range[0], phi_prior), max(phi_range[1], phi_prior))
    phi, axes, std, cost = _refine(n, phi, axes, phi_prior, not fixed_focal, phi_range)
    determined = (not fixed_focal) and std < FOCAL_DETERMINED
    if not fixed_focal and not determined:  # the lines leave the focal open: keep the prior, fit the rotation
        start = _frame(_vps(np.array([phi]), axes[None])[0][1], _vps(np.array([phi]), axes[None])[0][0], phi_prior)
        phi, axes, _, cost = _refine(n, phi_prior, start, phi_prior, False, phi_range)
    lab = _assign(n, phi, axes)
    if (lab == 1).sum() >= 3:  # the vertical from its own inliers, not bent by orthogonality to the others
        normals = _normals(n, phi)
        up = axes[:, 1]
        for _ in range(3):
            r = np.abs(normals @ up)
            inl = (lab == 1) & (r < n.thresh)
            if inl.sum() < 3:
                break
            up2 = np.linalg.svd(normals[inl] * np.sqrt(n.weight[inl])[:, None], full_matrices=False)[2][-1]
            up = up2 if up2 @ up > 0 else -up2
        axes = axes.copy()
        axes[:, 1] = up
    shown = _assign(n, phi, axes, 1.0)  # what each segment is taken to show: the plain threshold
    if not horizon_ok(np.array([phi]), axes[None], sky_q, ground_q)[0]:
        return None
    support = tuple(float(n.trusted_px[lab == k].sum()) for k in range(3))
    counts = tuple(int((lab == k).sum()) for k in range(3))
    return Frame(axes=axes, vertical=1, focal_px=phi * n.scale, focal_from_lines=bool(determined),
                 focal_log_std=std, support_px=support, segments_per_axis=counts,  # type: ignore[arg-type]
                 cost=cost, assignment=shown)
