"""Metric z-depth from relative depth, calibrated on the ground's own geometry.

A depth network such as PyDNet gives *relative* depth: monotone in the true depth, but with an unknown
scale and, outdoors, a strongly compressed range (far/near ratio ~2 where the truth is ~20). One scale
factor cannot undo that. The ground can: a flat ground seen by a camera at height ``H`` has, at pixel
(u, v) (pixel centre (u + 0.5, v + 0.5), principal point (cx, cy), focal f),

    z_ground(u, v) = H f / (n_y ((v + 0.5 - cy) - h - s (u + 0.5 - cx)))

where ``h`` is the horizon's row offset from cy at the image centre column (pitch: h < 0 when the camera
looks down), ``s`` the horizon's slope in rows per column (roll, s = tan roll), and
``n_y = 1 / sqrt(1 + s^2 + (h / f)^2)`` (the camera-frame up vector is ``n_y (s, 1, -h / f)``).

For every candidate horizon (h, s) a monotone map ``z = F(d)`` from the network value ``d`` to metric
depth is fitted over the ground pixels, for each of two two-parameter families:

* ``power``:   z = exp(b) d^a                 (exact when d = c z^k: range-compressed depth)
* ``affine``:  z = a d + b                    (exact when d = c z + e: depth with an offset)

(an affine map of inverse depth, 1/z = a/d + b, is not offered: on a flat ground its offset b is exactly
confounded with the horizon row, so the ground cannot tell them apart). The fit runs the regression the
other way round, network value from flat-ground depth, so that residuals live in the network's space and
are comparable between horizons (a residual in metric depth favours horizons far above the image, whose
ground depths barely vary). It is a truncated least squares (residuals beyond a threshold, 15 % of the
ground's log-depth spread, count as outliers, MSAC-style cost), vectorised over a grid of horizons,
refined on a finer grid and by Nelder-Mead.

The ground alone pins the horizon down poorly when the network depth is noisy and compressed (PyDNet
outdoors: the cost keeps falling as the horizon rises, a compressed depth looks like a camera looking
down). A prior does: standing objects of trusted height (people 1.7 m, cars 1.5 m, doors, chairs) give
the horizon row directly, feet row minus camera height x pixel height / real height (level camera, no
focal length needed; median over the objects), else the image centre row (level camera). The search
minimises log(cost) + w (tan(pitch - prior))^2 + ROLL_PRIOR tan(roll)^2, w = OBJECT_PITCH_PRIOR[number of
objects] (PITCH_PRIOR when the prior is only the level-camera guess): with the log, the prior matters where
every horizon fits about equally badly and hardly at all where one fits far better (clean depth). Among the
families the lowest total wins.

The map is applied to every pixel (non-ground too) and clamped to a sane range (NEAR_FACTOR x the
nearest ground depth .. FAR_FACTOR x the farthest). ``calibrate`` returns None with a reason when there
is too little ground, the ground spans too few rows, or the fit is poor (fewer than MIN_INLIERS of the
ground pixels within the threshold, or a robust R^2 below MIN_EXPLAINED); the engine then keeps its
single-scale behaviour.

All functions are pure and vectorised over hypotheses x points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

FAMILIES = ("power", "affine")
MIN_GROUND_PIXELS = 400  # fewer valid ground pixels: no calibration
MIN_GROUND_ROWS = 0.06  # the ground must span at least this fraction of the image height (p2..p98 rows)
MAX_POINTS = 2000  # ground samples used for the grid search (evenly strided)
TRUNC_FRAC = 0.15  # outlier threshold in log network depth: this fraction of the ground's log-depth spread
TRUNC_MIN = 0.02  # ... at least this
MIN_INLIERS = 0.3  # fraction of ground pixels within the threshold for a fit to be trusted ...
MIN_EXPLAINED = 0.25  # ... and the robust R^2 of the ground's log network depth explained by the fit
PITCH_RANGE_DEG = 30.0  # horizon search: pitch within +-30 deg
ROLL_RANGE_DEG = 8.0  # ... and roll within +-8 deg
COARSE_H, COARSE_S = 25, 5  # grid sizes
REFINE_STEPS = 2
COARSE_POINTS = 800  # ground samples for the coarse grid
POLISH_EVALS = 50  # Nelder-Mead evaluations
PITCH_PRIOR = 50.0  # added to the log cost per (tan pitch)^2: pulls the horizon toward the image centre
OBJECT_PITCH_PRIOR = (50.0, 200.0, 1000.0)  # the same weight, horizon from 0, 1, >= 2 known-height objects
ROLL_PRIOR = 50.0  # ... and per (tan roll)^2 toward level
COST_FLOOR = 1e-3
Z_MIN_M = 0.2  # clamp range of the calibrated depth
Z_MAX_M = 1000.0
NEAR_FACTOR = 0.25  # clamp: at least NEAR_FACTOR x the nearest ground depth ...
FAR_FACTOR = 4.0  # ... and at most FAR_FACTOR x the farthest (p99.5) calibrated ground depth
GROUND_Z_MAX_M = 1e6  # ground pixels themselves are only clamped here
MIN_HEIGHT_OBJECTS = 3  # the camera height from objects of known height needs at least this many ...
HEIGHT_RANGE_M = (0.3, 100.0)  # ... and is clamped to this range


@dataclass(frozen=True)
class DepthCalibration:
    """A fitted map from network depth to metric z-depth, and the ground geometry it implies."""

    family: str  # "power" | "affine"
    a: float
    b: float  # power: z = exp(b) d^a; affine: z = a d + b
    horizon_px: float  # horizon row offset from cy at the centre column (h)
    slope: float  # horizon rows per column (tan roll)
    camera_height_m: float
    focal_px: float
    inlier_ratio: float  # ground pixels whose fitted depth is within TRUNC (log) of the flat-ground depth
    residual: float  # median |log(F(d) / z_ground)| over the ground inliers
    cost: float  # truncated cost (mean min(r^2, t^2) / t^2), 0 = perfect, 1 = all outliers
    explained: float  # robust R^2: share of the ground's log network-depth spread the fit explains
    scale: float  # median z / d over the ground inliers (the single factor closest to the map)
    n_ground: int  # ground pixels used
    z_clamp: tuple[float, float]  # calibrated depth clamped to this range
    ground_z: tuple[float, float]  # calibrated ground depth, p1 .. p99
    costs: dict[str, float] = field(default_factory=dict)  # best cost of every family tried

    def map(self, d: np.ndarray, ground: np.ndarray | None = None) -> np.ndarray:
        """Metric z for network values (NaN stays NaN), clamped to z_clamp; pixels of the optional
        `ground` mask keep far values up to GROUND_Z_MAX_M (a flat ground reaches the horizon, and
        clamping its far end would tilt the plane fitted through it)."""
        d = np.asarray(d, dtype=np.float64)
        z = map_values(self.family, self.a, self.b, d)
        lo, hi = self.z_clamp
        with np.errstate(invalid="ignore"):
            # outside the map's domain: an affine map goes <= 0 below its zero (nearer than anything)
            z = np.where(np.isfinite(z) & (z > 0), z, np.where(np.isfinite(d), lo, np.nan))
            top = hi if ground is None else np.where(ground, max(hi, GROUND_Z_MAX_M), hi)
            return np.clip(z, lo, top)

    @property
    def normal(self) -> np.ndarray:
        """The ground's unit up vector in the camera frame (x right, y up, z backward)."""
        n = np.array([self.slope, 1.0, -self.horizon_px / self.focal_px])
        return n / np.linalg.norm(n)

    @property
    def pitch_deg(self) -> float:
        """Camera pitch implied by the horizon (negative: looking down), engine convention."""
        n = self.normal
        return math.degrees(math.atan2(-float(n[2]), float(n[1])))

    @property
    def roll_deg(self) -> float:
        return math.degrees(math.asin(max(-1.0, min(1.0, float(self.normal[0])))))

    def record(self) -> dict[str, Any]:
        """JSON-friendly summary for scene["ground"]["depth_calibration"]."""
        def r(x: float, nd: int = 4) -> float:
            return round(float(x), nd) + 0.0

        return {
            "method": "ground-calibrated", "family": self.family, "a": r(self.a, 6), "b": r(self.b, 6),
            "horizon_px": r(self.horizon_px, 2), "slope": r(self.slope, 5), "pitch_deg": r(self.pitch_deg, 3),
            "roll_deg": r(self.roll_deg, 3), "camera_height_m": r(self.camera_height_m),
            "inlier_ratio": r(self.inlier_ratio), "residual_log": r(self.residual), "cost": r(self.cost),
            "explained": r(self.explained), "scale": r(self.scale, 6),
            "ground_pixels": int(self.n_ground), "z_clamp_m": [r(self.z_clamp[0], 3), r(self.z_clamp[1], 3)],
            "ground_z_m": [r(self.ground_z[0], 3), r(self.ground_z[1], 3)],
            "family_costs": {k: r(v) for k, v in self.costs.items()},
        }


def map_values(family: str, a: float | np.ndarray, b: float | np.ndarray, d: np.ndarray) -> np.ndarray:
    """z = F(d) for one family; a, b may be arrays broadcasting against d (hypotheses x points).
    Non-positive results (outside the map's domain) come back as NaN."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if family == "power":
            z = np.exp(b + a * np.log(d))
        elif family == "affine":
            z = a * d + b
        else:
            raise ValueError(f"unknown family {family!r}")
    return np.where(z > 0, z, np.nan)


def ground_inverse_depth(u: np.ndarray, v: np.ndarray, horizon: np.ndarray, slope: np.ndarray, focal: float,
                         cx: float, cy: float, height: float) -> np.ndarray:
    """1 / z of a flat ground at `height` below the camera, per (horizon, slope) hypothesis x pixel.

    `horizon`, `slope` broadcast against each other (hypotheses, as (k, 1) arrays); `u`, `v` are pixel
    indices (N,). Values <= 0 mean the pixel is at or above that horizon (no ground there)."""
    uc = np.asarray(u, dtype=np.float64) + 0.5 - cx
    vc = np.asarray(v, dtype=np.float64) + 0.5 - cy
    ny = 1.0 / np.sqrt(1.0 + slope ** 2 + (horizon / focal) ** 2)
    return ny * (vc - horizon - slope * uc) / (height * focal)


def _fit_family(family: str, d: np.ndarray, q: np.ndarray, trunc: float,
                iters: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated least squares of one family, all hypotheses at once.

    d: (N,) network values; q: (k, N) flat-ground inverse depths (<= 0: above the horizon).
    The regression runs the other way round, network value from flat-ground depth, so that residuals
    live in the network's space (the same for every horizon hypothesis; a residual in metric depth
    would favour horizons far above the image, whose ground depths barely vary):
    power: log d = alpha + beta log z; affine: d = alpha + beta z, residual relative to d.
    Returns (a, b, cost) of z = F(d) per hypothesis; cost = mean(min(r^2, trunc^2)) / trunc^2.
    """
    valid = q > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        zg = np.where(valid, 1.0 / np.where(valid, q, 1.0), 0.0)
    if family == "power":
        x = np.where(valid, np.log(np.where(valid, zg, 1.0)), 0.0)
        y = np.log(d)
        base = np.ones(len(d))
    elif family == "affine":
        x, y = zg, d
        base = 1.0 / (d * d)
    else:
        raise ValueError(f"unknown family {family!r}")
    w = base * valid
    cost = np.full(q.shape[0], np.inf)
    alpha = beta = np.zeros(q.shape[0])
    t1, t2 = np.empty(q.shape), np.empty(q.shape)  # (k, N) work arrays: the same operations, in place
    invalid = ~valid
    for it in range(iters):
        last = it == iters - 1
        sw = w.sum(1)
        mx = np.multiply(w, x, out=t1).sum(1) / np.maximum(sw, 1e-300)
        my = (w @ y) / np.maximum(sw, 1e-300)
        dx = np.subtract(x, mx[:, None], out=t1)
        wdx = np.multiply(w, dx, out=t2)  # once for both sums: the same products, same order as w * dx * dx
        sxx = np.multiply(wdx, dx, out=t1).sum(1)
        sxy = np.multiply(wdx, np.subtract(y[None, :], my[:, None], out=t1), out=t1).sum(1)
        ok = (sw > 0) & (sxx > 1e-300)
        beta = np.where(ok, sxy / np.where(ok, sxx, 1.0), 0.0)
        alpha = my - beta * mx
        r = np.subtract(y[None, :], alpha[:, None], out=t1)
        r -= np.multiply(beta[:, None], x, out=t2)
        if family == "affine":
            r /= d
        np.copyto(r, np.inf, where=invalid)
        if not last:  # the weights of the next pass (the last pass's cost is the only one returned)
            lim = trunc * (2.0 if it == 0 else 1.0)
            w = base * (np.abs(r, out=t2) < lim)
            continue
        cost = np.minimum(np.multiply(r, r, out=t2), trunc * trunc, out=t2).mean(1) / (trunc * trunc)
        cost = np.where(ok & (beta > 0), cost, np.inf)  # the map must be increasing
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(beta > 0, 1.0 / beta, np.nan)
        b = -alpha * a
    return a, b, cost


def _search(family: str, u: np.ndarray, v: np.ndarray, d: np.ndarray, focal: float, cx: float, cy: float,
            height: float, trunc: float, hs: np.ndarray, ss: np.ndarray,
            prior: float = 0.0,
            prior_weight: float = PITCH_PRIOR) -> tuple[float, float, float, float, float]:
    """Best (cost, horizon, slope, a, b) over the grid hs x ss."""
    hh, sg = np.meshgrid(hs, ss, indexing="ij")
    hh, sg = hh.ravel()[:, None], sg.ravel()[:, None]
    q = ground_inverse_depth(u, v, hh, sg, focal, cx, cy, height)
    a, b, cost = _fit_family(family, d, q, trunc)
    # log of the cost (a Gaussian likelihood with unknown noise): the prior weighs more where the data fit
    # any horizon about equally badly (network depth), and little where one horizon fits much better
    total = (np.log(np.minimum(cost, 1e6) + COST_FLOOR) + prior_weight * ((hh[:, 0] - prior) / focal) ** 2
             + ROLL_PRIOR * sg[:, 0] ** 2)
    k = int(np.argmin(total))
    return float(total[k]), float(hh[k, 0]), float(sg[k, 0]), float(a[k]), float(b[k])


def _polish(family: str, u: np.ndarray, v: np.ndarray, d: np.ndarray, focal: float, cx: float, cy: float,
            height: float, trunc: float, start: tuple[float, float, float, float, float], prior: float,
            h_range: tuple[float, float], s_max: float,
            prior_weight: float = PITCH_PRIOR) -> tuple[float, float, float, float, float]:
    """Continuous refinement of (horizon, slope) from the best grid cell (Nelder-Mead): the grid's cost
    valley runs diagonally in (horizon, slope) when the ground lies to one side of the image."""
    from scipy.optimize import minimize

    def total(x: np.ndarray) -> float:
        h, s = float(np.clip(x[0], *h_range)), float(np.clip(x[1], -s_max, s_max))
        return _search(family, u, v, d, focal, cx, cy, height, trunc, np.array([h]), np.array([s]), prior,
                       prior_weight)[0]

    x0 = np.array([start[1], start[2]])
    res = minimize(total, x0, method="Nelder-Mead",
                   options={"initial_simplex": [x0, x0 + [2.0, 0.0], x0 + [0.0, 0.01]], "xatol": 0.05,
                            "fatol": 1e-5, "maxfev": POLISH_EVALS})
    h, s = float(np.clip(res.x[0], *h_range)), float(np.clip(res.x[1], -s_max, s_max))
    cand = _search(family, u, v, d, focal, cx, cy, height, trunc, np.array([h]), np.array([s]), prior,
                   prior_weight)
    return cand if cand[0] <= start[0] else start


def fit_ground_calibration(u: np.ndarray, v: np.ndarray, d: np.ndarray, focal: float, cx: float, cy: float,
                           height: float, trunc: float, families: tuple[str, ...] = FAMILIES,
                           horizon_prior: float = 0.0,
                           prior_weight: float = PITCH_PRIOR, horizon: tuple[float, float] | None = None
                           ) -> tuple[str, float, float, float, float, float, dict[str, float]]:
    """Grid search of the horizon (pitch, roll) and the map of each family over ground samples.

    `horizon` (h, s): the horizon is known (the photo's vanishing points): only the maps are fitted.

    `horizon_prior`: the expected horizon offset from cy (pixels), 0 for a level camera; `prior_weight`
    how strongly it pulls (PITCH_PRIOR for a level-camera guess, more when objects of known height gave it).
    Returns (family, horizon, slope, a, b, cost, best cost per family) for the best family."""
    if horizon is not None:
        known = {fam: _search(fam, u, v, d, focal, cx, cy, height, trunc, np.array([horizon[0]]),
                              np.array([horizon[1]]), horizon[0], 0.0) for fam in families}
        fam = min(known, key=lambda f: known[f][0])
        c, h, s, a, b = known[fam]
        return fam, h, s, a, b, c, {f: known[f][0] for f in known}
    vmax = float(np.percentile(v, 2.0)) + 0.5 - cy  # the horizon lies above (nearly) all ground pixels
    h_lo = -focal * math.tan(math.radians(PITCH_RANGE_DEG))
    h_hi = min(focal * math.tan(math.radians(PITCH_RANGE_DEG)), vmax - 1.0)
    s_max = math.tan(math.radians(ROLL_RANGE_DEG))
    if h_hi <= h_lo:
        h_hi = h_lo + 1.0
    best: dict[str, tuple[float, float, float, float, float]] = {}
    k = max(1, len(u) // COARSE_POINTS)  # grid search on a sparser sample, polish on all samples
    us, vs, ds_ = u[::k], v[::k], d[::k]
    for fam in families:
        hs = np.linspace(h_lo, h_hi, COARSE_H)
        ss = np.linspace(-s_max, s_max, COARSE_S)
        res = _search(fam, us, vs, ds_, focal, cx, cy, height, trunc, hs, ss, horizon_prior, prior_weight)
        dh, ds = hs[1] - hs[0], ss[1] - ss[0]
        for _ in range(REFINE_STEPS):  # refine around the best cell
            hs = np.linspace(max(h_lo, res[1] - dh), min(h_hi, res[1] + dh), 9)
            ss = np.linspace(max(-s_max, res[2] - ds), min(s_max, res[2] + ds), 5)
            cand = _search(fam, us, vs, ds_, focal, cx, cy, height, trunc, hs, ss, horizon_prior,
                           prior_weight)
            if cand[0] <= res[0]:
                res = cand
            dh, ds = (hs[-1] - hs[0]) / 8.0, (ss[-1] - ss[0]) / 4.0
        best[fam] = res
    costs = {f: best[f][0] for f in best}
    fam = min(best, key=lambda f: best[f][0])
    res = best[fam]
    start = _search(fam, u, v, d, focal, cx, cy, height, trunc, np.array([res[1]]), np.array([res[2]]),
                    horizon_prior, prior_weight)
    c, h, s, a, b = _polish(fam, u, v, d, focal, cx, cy, height, trunc, start, horizon_prior, (h_lo, h_hi),
                            s_max, prior_weight)
    return fam, h, s, a, b, c, costs


def network_residual(family: str, a: float, b: float, d: np.ndarray, z_ground: np.ndarray) -> np.ndarray:
    """Residual in the network's space: log d - log F^-1(z) (power), (d - F^-1(z)) / d (affine)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "power":
            return np.log(d) - (np.log(z_ground) - b) / a
        return (d - (z_ground - b) / a) / d


@dataclass(frozen=True)
class GroundSamples:
    """calibrate's ground pixels with depth (uu, vv, dg: all n of them) and its samples for the fit
    (u, v, dd), with the outlier threshold `trunc` in log network depth."""

    n: int
    uu: np.ndarray
    vv: np.ndarray
    dg: np.ndarray
    trunc: float
    u: np.ndarray
    v: np.ndarray
    dd: np.ndarray

    @cached_property
    def spread(self) -> float:
        """The ground's log-depth spread (median absolute deviation): what a fit must explain."""
        ld = np.log(self.dg)
        return float(np.median(np.abs(ld - np.median(ld))))


def ground_samples(depth: np.ndarray, ground: np.ndarray) -> GroundSamples | str:
    """The ground samples of a depth map and ground mask, or why there are too few."""
    d = np.asarray(depth, dtype=np.float64)
    g = np.asarray(ground, dtype=bool) & np.isfinite(d) & (d > 0)
    vv, uu = np.nonzero(g)
    n = len(vv)
    if n < MIN_GROUND_PIXELS:
        return f"too little ground with depth ({n} px)"
    rows = np.percentile(vv, [2.0, 98.0])
    if rows[1] - rows[0] < MIN_GROUND_ROWS * d.shape[0]:
        return f"the ground spans too few rows ({rows[1] - rows[0]:.0f} px)"
    dg = d[vv, uu]
    lo5, hi95 = np.percentile(np.log(dg), [5.0, 95.0])
    trunc = max(TRUNC_MIN, TRUNC_FRAC * float(hi95 - lo5))
    stride = max(1, n // MAX_POINTS)
    return GroundSamples(n, uu, vv, dg, trunc, uu[::stride], vv[::stride], dg[::stride])


def calibrate(depth: np.ndarray, ground: np.ndarray, focal: float, cx: float, cy: float, height: float,
              families: tuple[str, ...] = FAMILIES, horizon_prior: float = 0.0,
              prior_weight: float = PITCH_PRIOR, samples: GroundSamples | str | None = None,
              horizon: tuple[float, float] | None = None) -> tuple[DepthCalibration | None, str]:
    """Fit the ground calibration of a relative depth map (larger = farther, NaN = no depth).

    `ground` is a boolean mask of ground-role pixels; `horizon_prior` the expected horizon row offset
    from cy (0: level camera; see horizon_from_objects). Returns (calibration, "") or (None, why not).
    Apply it with ``calibration.map(depth)``. `samples`: ground_samples(depth, ground) when the caller
    has them already (they do not depend on the height or the horizon prior).
    """
    gs = ground_samples(depth, ground) if samples is None else samples
    if isinstance(gs, str):
        return None, gs
    n, uu, vv, dg, trunc, u, v, dd = gs.n, gs.uu, gs.vv, gs.dg, gs.trunc, gs.u, gs.v, gs.dd
    fam, h, s, a, b, cost, costs = fit_ground_calibration(u, v, dd, focal, cx, cy, height, trunc, families,
                                                          horizon_prior, prior_weight, horizon)
    if not np.isfinite(cost):
        return None, "no increasing map fits the ground"
    # statistics on all ground pixels (not just the samples)
    q = ground_inverse_depth(uu, vv, np.array(h), np.array(s), focal, cx, cy, height)
    with np.errstate(divide="ignore"):
        zg = np.where(q > 0, 1.0 / np.where(q > 0, q, 1.0), np.nan)
    r = np.abs(network_residual(fam, a, b, dg, zg))
    r = np.where(np.isfinite(r), r, np.inf)
    inl = r < trunc
    ratio = float(inl.mean())
    full_cost = float(np.minimum(r ** 2, trunc ** 2).mean() / trunc ** 2)
    # the fit must explain a good part of the ground's depth variation (robust R^2 from median absolute
    # deviations); a network depth unrelated to the ground's rows explains none
    spread = gs.spread
    rr = network_residual(fam, a, b, dg, zg)
    rr = rr[np.isfinite(rr)]
    explained = (1.0 - (float(np.median(np.abs(rr - np.median(rr)))) / spread) ** 2 if len(rr) and spread > 0
                 else 0.0)
    if ratio < MIN_INLIERS or explained < MIN_EXPLAINED:
        return None, (f"poor ground fit: {100 * ratio:.0f} % of the ground pixels fit a flat ground, "
                      f"R2 {explained:.2f}")
    zf = map_values(fam, a, b, dg[inl])
    scale = float(np.nanmedian(zf / dg[inl])) if np.isfinite(zf).any() else float("nan")
    zf = zf[np.isfinite(zf)]
    if len(zf) < MIN_GROUND_PIXELS // 2:
        return None, "the fitted map is undefined on most of the ground"
    z_lo, z_hi = np.percentile(zf, [1.0, 99.0])
    clamp = (max(Z_MIN_M, NEAR_FACTOR * float(np.percentile(zf, 0.5))),
             min(Z_MAX_M, FAR_FACTOR * float(np.percentile(zf, 99.5))))
    with np.errstate(divide="ignore", invalid="ignore"):
        metric_res = float(np.nanmedian(np.abs(np.log(map_values(fam, a, b, dg[inl]) / zg[inl]))))
    cal = DepthCalibration(family=fam, a=a, b=b, horizon_px=h, slope=s, camera_height_m=float(height),
                           focal_px=float(focal), inlier_ratio=ratio, residual=metric_res,
                           cost=full_cost, explained=explained, scale=scale, n_ground=n, z_clamp=clamp,
                           ground_z=(float(z_lo), float(z_hi)), costs=costs)
    return cal, ""


def horizon_from_objects(labels: np.ndarray, heights: dict[int, float], camera_height: float,
                         min_px: int = 64) -> np.ndarray:
    """Horizon rows implied by standing objects of trusted height (people, cars, doors): an object of
    real height S whose segment is P pixels tall with its bottom edge at row y1 stands where the
    ground is P H / S rows below the horizon (level camera; H = camera height), whatever the focal
    length. One estimate per connected segment not cut by the image border (continuous row
    coordinates: the top edge of the image is 0)."""
    segments = _standing_segments(labels, heights, min_px)
    return np.asarray([y1 - camera_height * (y1 - y0) / size for y0, y1, size, _ in segments],
                      dtype=np.float64)


def _standing_segments(labels: np.ndarray, heights: dict[int, float],
                       min_px: int = 64) -> list[tuple[int, int, float, float]]:
    """(top row, bottom row, real height, centre column) of each segment horizon_from_objects uses (it
    does not depend on the camera height)."""
    from scipy import ndimage

    lab = np.asarray(labels)
    out: list[tuple[int, int, float, float]] = []
    for cid, size in heights.items():
        m = lab == cid
        if size <= 0 or not m.any():
            continue
        comp, n = ndimage.label(m)
        counts = np.bincount(comp.ravel(), minlength=n + 1)
        for k, sl in enumerate(ndimage.find_objects(comp), start=1):
            if sl is None or counts[k] < min_px:
                continue
            y0, y1 = sl[0].start, sl[0].stop
            cut = y0 <= 0 or y1 >= lab.shape[0] or sl[1].start <= 0 or sl[1].stop >= lab.shape[1]
            if cut or y1 - y0 < 12:
                continue
            out.append((y0, y1, size, (sl[1].start + sl[1].stop) / 2.0))
    return out


def heights_from_horizon(segments: list[tuple[int, int, float, float]], horizon: tuple[float, float],
                         cx: float, cy: float) -> tuple[list[float], list[int]]:
    """Camera heights implied by standing objects of known height under a known horizon, with each
    object's pixel height: an object of real height S spanning rows y0..y1 whose feet are
    D = y1 - (cy + h + s (x - cx)) rows below the horizon stands where the camera is S D / (y1 - y0)
    above the ground (rows measured from the horizon at the object's column). A far object also
    measures the ground's slope and its own pixel rounding: the caller weighs by pixel height."""
    h, s = horizon
    out, tall = [], []
    for y0, y1, size, xc in segments:
        below = y1 - (cy + h + s * (xc - cx))
        if below > 0 and y1 > y0:
            out.append(size * below / (y1 - y0))
            tall.append(int(y1 - y0))
    return out, tall


@dataclass(frozen=True)
class GroundData:
    """What calibrate_depth_map needs besides the camera height, for one depth map, label map and
    shapes table: the ground mask, the standing segments of trusted height and the ground samples."""

    mask: np.ndarray
    segments: list[tuple[int, int, float, float]] | None
    samples: GroundSamples | str


def ground_data(depth: np.ndarray, labels: np.ndarray, specs: list[Any]) -> GroundData:
    """GroundData of a depth map, its class ids (< 0: none) and the shapes-table entry of each id."""
    lab = np.asarray(labels)
    gid = np.array([sp.role == "ground" for sp in specs], dtype=bool)
    mask = (lab >= 0) & gid[np.clip(lab, 0, max(len(gid) - 1, 0))] if len(gid) else np.zeros(lab.shape, bool)
    refs = {i: float(sp.size[1]) for i, sp in enumerate(specs) if sp.ref and sp.standing is True}
    return GroundData(mask, _standing_segments(lab, refs) if refs else None, ground_samples(depth, mask))


def calibrate_depth_map(depth: np.ndarray, labels: np.ndarray, specs: list[Any], focal: float, cx: float,
                        cy: float, height: float, ground: GroundData | None = None,
                        up: tuple[float, float, float] | None = None,
                        estimate_height: bool = False) -> tuple[np.ndarray, DepthCalibration | None, str]:
    """The engine's entry point: (depth to use, calibration or None, one-line warning).

    `labels` are class ids (< 0: none) and `specs` the shapes-table entry of each id (``role``, ``ref``,
    ``standing``, ``size``): ground-role classes give the fit, standing trusted-height classes the
    horizon prior. On success the depth comes back as metric z (float32, NaN kept); otherwise the input
    comes back unchanged and the warning says why, so the caller keeps its single-scale behaviour.
    `ground`: ground_data(depth, labels, specs) when the caller keeps it across camera heights (the
    panel's camera-height field). `up`: the camera-frame up vector the photo's vanishing points give: the
    horizon is then known and only the map is fitted; with `estimate_height` the camera height comes
    from the standing objects of known height under that horizon (heights_from_horizon), `height` being
    only the fallback when fewer than MIN_HEIGHT_OBJECTS are seen.
    """
    data = ground_data(depth, labels, specs) if ground is None else ground
    segments = data.segments
    rows = np.asarray([y1 - height * (y1 - y0) / size for y0, y1, size, _ in segments],
                      dtype=np.float64) if segments is not None else np.zeros(0)
    prior = float(np.median(rows)) - cy if len(rows) else 0.0
    weight = OBJECT_PITCH_PRIOR[min(len(rows), len(OBJECT_PITCH_PRIOR) - 1)]
    horizon = None
    height_note = f"camera height {height:.2f} m assumed"
    if up is not None and up[1] > 1e-6:  # up = n_y (s, 1, -h / f)
        horizon = (-focal * up[2] / up[1], up[0] / up[1])
        if estimate_height and segments:
            heights, tall = heights_from_horizon(segments, horizon, cx, cy)
            if len(heights) >= MIN_HEIGHT_OBJECTS:  # nearer (taller) objects weigh more: weighted median
                order = np.argsort(heights)
                cum = np.cumsum(np.asarray(tall)[order])
                mid = float(np.asarray(heights)[order][np.searchsorted(cum, cum[-1] / 2.0)])
                height = float(np.clip(mid, HEIGHT_RANGE_M[0], HEIGHT_RANGE_M[1]))
                height_note = f"camera height {height:.2f} m from {len(heights)} object(s) of known height"
    cal, why = calibrate(depth, data.mask, focal, cx, cy, height, horizon_prior=prior, prior_weight=weight,
                         samples=data.samples, horizon=horizon)
    if cal is None:
        return depth, None, (f"relative depth not calibrated on the ground ({why}): one scale factor used "
                             "instead")
    z = cal.map(depth, data.mask).astype(np.float32)
    src = ("horizon from the vanishing points" if horizon is not None else
           f"horizon prior from {len(rows)} object(s) of known height" if len(rows)
           else "level-camera horizon prior")
    note = (f"relative depth calibrated on the ground ({cal.family} map, {src}, "
            f"pitch {cal.pitch_deg:.1f} deg, roll {cal.roll_deg:.1f} deg, "
            f"{100 * cal.inlier_ratio:.0f} % of ground pixels fit, {height_note}): "
            f"ground depth {cal.ground_z[0]:.1f}..{cal.ground_z[1]:.1f} m")
    return z, cal, note
