"""3D intersection-over-union of boxes: oriented (yaw about +Y) and axis-aligned.

Why oriented: a car seen at 30 degrees has an axis-aligned bounding box up to ~1.6x its real volume,
so an axis-aligned score cannot tell a correctly oriented box from a fat one. The engine's boxes are
upright (rotate [0, yaw, 0]); the oriented IoU is then exact: the footprints are rotated rectangles in
the x-z plane, whose intersection is a convex polygon (Sutherland-Hodgman clipping), and the volume
of the intersection is that area times the overlap of the vertical extents.

Boxes are scene@1 dicts (or anything with) `translate` (centre), `rotate` (xyz degrees, Maya order)
and `size` (full extents along the box axes). A rotate with rx or rz different from zero is read
through its matrix: the yaw is the heading of the box's local x axis in the x-z plane and the box is
still treated as upright (fine for the few-degree tilts the engine may produce; not for lying boxes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inference_server.analysis.camera import euler_xyz_to_matrix


def _yaw_deg(rotate: Sequence[float]) -> float:
    rx, ry, rz = (float(v) for v in rotate)
    if abs(rx) < 1e-9 and abs(rz) < 1e-9:
        return ry
    m = euler_xyz_to_matrix(rx, ry, rz)
    # Ry(yaw) maps local x (1, 0, 0) to (cos yaw, 0, -sin yaw)
    return math.degrees(math.atan2(-m[2, 0], m[0, 0]))


def footprint(box: Mapping[str, Any]) -> np.ndarray:
    """(4, 2) counter-clockwise x-z corners of the box's footprint (as seen with x right, z down)."""
    cx, _, cz = (float(v) for v in box["translate"])
    sx, _, sz = (abs(float(v)) for v in box["size"])
    yaw = math.radians(_yaw_deg(box.get("rotate", (0.0, 0.0, 0.0))))
    c, s = math.cos(yaw), math.sin(yaw)
    # world = Ry @ local: x = c*lx + s*lz, z = -s*lx + c*lz
    loc = np.array([[-sx, -sz], [sx, -sz], [sx, sz], [-sx, sz]]) / 2.0
    x = cx + c * loc[:, 0] + s * loc[:, 1]
    z = cz - s * loc[:, 0] + c * loc[:, 1]
    pts = np.stack([x, z], axis=1)
    return pts if polygon_area(pts) >= 0 else pts[::-1]


def polygon_area(pts: np.ndarray) -> float:
    """Signed shoelace area (positive for counter-clockwise in the (x, z) coordinates)."""
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def clip_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of convex polygon `subject` inside convex CCW polygon `clip`.

    Each clip edge is a half-plane; the subject's vertices are classified against it all at once
    (vectorised over vertices), and the crossing points of the edges that change side are inserted.
    """
    out = np.asarray(subject, dtype=np.float64)
    clip = np.asarray(clip, dtype=np.float64)
    for k in range(len(clip)):
        if len(out) == 0:
            break
        a, b = clip[k], clip[(k + 1) % len(clip)]
        e = b - a
        side = e[0] * (out[:, 1] - a[1]) - e[1] * (out[:, 0] - a[0])  # >= 0: inside (left of a->b)
        nxt = np.roll(out, -1, axis=0)
        side_n = np.roll(side, -1)
        pts: list[np.ndarray] = []
        for p, q, sp, sq in zip(out, nxt, side, side_n, strict=True):
            if sp >= 0:
                pts.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                pts.append(p + t * (q - p))
        out = np.array(pts) if pts else np.zeros((0, 2))
    return out


def _y_range(box: Mapping[str, Any]) -> tuple[float, float]:
    cy, h = float(box["translate"][1]), abs(float(box["size"][1]))
    return cy - h / 2.0, cy + h / 2.0


def _volume(box: Mapping[str, Any]) -> float:
    return float(np.prod([abs(float(v)) for v in box["size"]]))


def iou3d(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Oriented 3D IoU of two upright boxes (0 when either has no volume)."""
    va, vb = _volume(a), _volume(b)
    if va <= 0 or vb <= 0:
        return 0.0
    (a0, a1), (b0, b1) = _y_range(a), _y_range(b)
    dy = min(a1, b1) - max(a0, b0)
    if dy <= 0:
        return 0.0
    inter_area = abs(polygon_area(clip_convex(footprint(a), footprint(b))))
    inter = inter_area * dy
    return float(inter / (va + vb - inter)) if inter > 0 else 0.0


def aabb_of(box: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """World axis-aligned bounds (lo, hi) of an (upright, possibly yawed) box."""
    fp = footprint(box)
    y0, y1 = _y_range(box)
    lo = np.array([fp[:, 0].min(), y0, fp[:, 1].min()])
    hi = np.array([fp[:, 0].max(), y1, fp[:, 1].max()])
    return lo, hi


def iou3d_axis_aligned(a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray) -> float:
    """IoU of two axis-aligned boxes given by their corners (lo, hi), each (3,)."""
    a_lo, a_hi, b_lo, b_hi = (np.asarray(x, dtype=np.float64) for x in (a_lo, a_hi, b_lo, b_hi))
    inter = float(np.prod(np.clip(np.minimum(a_hi, b_hi) - np.maximum(a_lo, b_lo), 0.0, None)))
    va = float(np.prod(np.clip(a_hi - a_lo, 0.0, None)))
    vb = float(np.prod(np.clip(b_hi - b_lo, 0.0, None)))
    union = va + vb - inter
    return inter / union if union > 0 else 0.0


def box_from_aabb(lo: np.ndarray, hi: np.ndarray) -> dict[str, list[float]]:
    """An axis-aligned box as a translate/rotate/size dict (so iou3d can score it against a GT box)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return {"translate": list((lo + hi) / 2.0), "rotate": [0.0, 0.0, 0.0], "size": list(hi - lo)}
