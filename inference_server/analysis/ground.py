"""Ground plane and gravity: RANSAC plane through the ground pixels -> camera height, pitch, roll.

The world frame puts the fitted ground at y = 0 with +Y along its normal, the camera at
(0, h, 0), yaw 0 (looking toward world -Z). With R = Rz(roll) @ Rx(pitch) (Maya xyz order, no
yaw) the world up seen from the camera is R^T e_y = (sin roll, cos roll cos pitch, -cos roll sin pitch),
so both angles follow from the plane normal in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import euler_xyz_to_matrix

RANSAC_ITERS = 256
MAX_FIT_POINTS = 20000
SCORE_POINTS = 5000  # RANSAC scores each hypothesis on this many of them; the refit uses all
MIN_GROUND_POINTS = 50
MIN_INLIER_RATIO = 0.3
REL_TOL = 0.015  # inlier band: 1.5 % of the point's depth (depth noise grows with distance) ...
ABS_TOL = 0.003  # ... plus 0.3 % of the median depth


@dataclass
class Pose:
    """Camera-to-world rigid transform: world = R @ cam + T."""

    R: np.ndarray
    T: np.ndarray

    def to_world(self, p_cam: np.ndarray) -> np.ndarray:
        return np.asarray(p_cam, dtype=np.float64) @ self.R.T + self.T

    def to_cam(self, p_world: np.ndarray) -> np.ndarray:
        return (np.asarray(p_world, dtype=np.float64) - self.T) @ self.R

    @property
    def position(self) -> np.ndarray:
        return self.T


@dataclass
class PlaneFit:
    normal: np.ndarray  # unit, camera frame, pointing to the camera's side (d > 0)
    d: float  # n . x + d = 0; d = camera height above the plane (in the depth's units)
    inlier_ratio: float
    n_points: int


def _plane_from_points(p: np.ndarray) -> tuple[np.ndarray, float]:
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - c, full_matrices=False)
    n = vt[-1]
    return n, float(-n @ c)


def fit_plane(points: np.ndarray, seed: int = 0) -> PlaneFit | None:
    """Robust plane through camera-frame points: vectorised RANSAC, then least squares on inliers.

    Returns None when there are too few points or too few inliers to trust a plane.
    """
    p = np.asarray(points, dtype=np.float64)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < MIN_GROUND_POINTS:
        return None
    rng = np.random.default_rng(seed)
    if len(p) > MAX_FIT_POINTS:
        p = p[rng.choice(len(p), MAX_FIT_POINTS, replace=False)]
    dist = np.abs(p[:, 2])
    tol = REL_TOL * dist + ABS_TOL * float(np.median(dist))
    tri = rng.integers(0, len(p), size=(RANSAC_ITERS, 3))
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-12
    if not ok.any():
        return None
    n = n[ok] / norm[ok, None]
    d = -np.einsum("ij,ij->i", n, a[ok])
    m = min(len(p), SCORE_POINTS)  # hypotheses are scored on a (random) part of the points
    res = np.abs(p[:m] @ n.T + d)  # (points, hypotheses)
    score = (res < tol[:m, None]).sum(axis=0)
    best = int(np.argmax(score))
    nb, db = n[best], d[best]
    inl = np.abs(p @ nb + db) < tol
    for _ in range(3):  # least-squares refinement on the current inliers
        if inl.sum() < 3:
            return None
        nb, db = _plane_from_points(p[inl])
        inl = np.abs(p @ nb + db) < tol
    if db < 0:
        nb, db = -nb, -db
    ratio = float(inl.mean())
    if ratio < MIN_INLIER_RATIO or db <= 0:
        return None
    return PlaneFit(normal=nb, d=float(db), inlier_ratio=ratio, n_points=len(p))


def angles_from_normal(n: np.ndarray) -> tuple[float, float]:
    """(pitch, roll) in degrees of a yaw-free camera that sees world up as `n` (camera frame)."""
    nx = max(-1.0, min(1.0, float(n[0])))
    roll = math.degrees(math.asin(nx))
    pitch = math.degrees(math.atan2(-float(n[2]), float(n[1])))
    return pitch, roll


def pose_from_angles(pitch_deg: float, roll_deg: float, height: float) -> Pose:
    return Pose(R=euler_xyz_to_matrix(pitch_deg, 0.0, roll_deg), T=np.array([0.0, float(height), 0.0]))
