"""Object placement and extents for depth that came from a network (relative depth made metric).

A depth network's values inside one segment are noisy and smeared across occlusion edges: a box fitted to
the back-projected pixels takes that spread as the object's thickness and width (a car 36 m wide and 91 m
deep), and its median depth can be far off where the network gives upright surfaces the wrong value. The
ground is better known (the calibration fits it over thousands of pixels), so for such depth:

1. **Distance.** An object standing on the ground whose lowest pixels adjoin ground pixels (its foot is
   seen: not cut by the frame, not hidden behind a nearer object) is placed where the ray through its
   bottom-centre meets the ground plane (the footprint's z-depth). Where the network's median depth of the
   object agrees within AGREE, the two are blended (mostly footprint); otherwise the footprint wins. A
   standing object whose foot is not seen keeps its network depth, but never farther than where the ground
   meets its lowest visible row (its real foot is lower in the image, so nearer; without a fitted ground
   plane the engine still stands such boxes on y = 0, so the same cap holds there). Other objects (signs,
   lights, anything not standing) keep their network depth.
2. **Extents.** The box faces the camera (its local +Z along the horizontal view ray); its near face is at
   that distance; width and height come from the silhouette (``cover_bbox`` grows a small seed
   box until its projection covers the segment); the thickness along the view ray is the class prior
   (``_prior_depth`` of boxes.py, slabs their own thickness) whenever the measured one is implausible (more
   than PLAUSIBLE x the prior's largest horizontal dimension), else the measured one; classes with no entry of
   their own in the shapes table (default role) are capped at the larger of their width and height and at
   DIST_FRACTION of their distance.

3. **Walls and fences** standing on the ground follow their base line: the columns whose lowest pixel has
   ground right below it give ground points along the wall's foot; the slab runs along their principal
   direction over their robust extent (``place_wall``). With too few such columns they are placed as above
   (a facing slab).

Ceilings, ground, water and sky are left alone. ``place`` returns the box (already covering the segment),
the thickness source and a record (scene object field ``placement``) of which distance was used. Metric
depth (user files, sensors) never comes here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .boxes import Box, _prior_depth, cover_bbox, principal_yaw, robust_span
from .camera import Intrinsics, pixel_rays
from .ground import Pose
from .shapes import ShapeSpec

ENABLED = True  # benchmarks switch it off for the "before" numbers
AGREE = 1.25  # footprint and network distances within this factor: blended
FOOT_WEIGHT = 0.75  # weight of the footprint (in log distance) when blending
PLAUSIBLE = 1.5  # measured thickness beyond this x the prior's largest dimension is depth noise
DIST_FRACTION = 0.25  # classes without a prior: thickness at most this fraction of the distance
SEED = 0.5  # seed box width/height as a fraction of the silhouette's at the chosen distance
FOOT_ROWS = 0.03  # lowest rows of a segment used for its foot column (fraction of its height, >= 1 px)
CONTACT_TOL = 0.05  # the ground must adjoin the segment's bottom within this fraction of its height (>= 2 px)
SKIP_ROLES = ("ground", "water", "sky", "ceiling")
WALL_MIN_COLUMNS = 5


def ground_contact(inst: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """Per instance, the lowest row whose pixel has a ground pixel directly below it (-1 where none).

    `inst` is the instance map (-1 = none), `ground[i]` whether instance i is ground (or water). One
    pass over the image's vertical neighbour pairs; np.maximum.at only on the few contact pixels.
    """
    n = len(ground)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or inst.shape[0] < 2:
        return out
    a, b = inst[:-1], inst[1:]
    touch = (a >= 0) & (b >= 0) & (a != b)
    touch &= ground[np.maximum(b, 0)] & ~ground[np.maximum(a, 0)]
    rows, _ = np.nonzero(touch)
    np.maximum.at(out, a[touch], rows)
    return out


def _ray(u: float, v: float, pose: Pose, intr: Intrinsics) -> np.ndarray:
    """World direction of the ray through continuous pixel (u, v), scaled so its camera-frame z is -1."""
    return pose.R @ np.array([(u - intr.cx) / intr.focal_px, -(v - intr.cy) / intr.focal_px, -1.0])


def foot_column(u: np.ndarray, v: np.ndarray, y0: float, y1: float) -> float:
    """Mean column (continuous, pixel centres) of the segment's lowest rows."""
    lowest = y1 - 1.0 - max(1.0, FOOT_ROWS * (y1 - y0))
    sel = v >= lowest
    return float(np.mean(u[sel]) + 0.5) if sel.any() else float(np.mean(u) + 0.5)


def ground_pixels(labels: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Boolean map of ground (or water) pixels from class ids (-1 = none) and `flat[class id]`."""
    return np.append(np.asarray(flat, dtype=bool), False)[labels]  # id -1 picks the appended False


def place_wall(box: Box, spec: ShapeSpec, u: np.ndarray, v: np.ndarray, ground_px: np.ndarray, z_net: float,
               *, pose: Pose, intr: Intrinsics) -> tuple[Box, dict[str, Any]] | None:
    """Walls and fences on network depth: their base line on the ground, from the columns whose lowest
    pixel has a ground pixel right below it (the ray there meets the ground where the wall stands).
    The slab runs along the principal direction of those ground points over their robust (p2..p98,
    widened) extent, its face on their median line, its thickness the class's; None when fewer than
    WALL_MIN_COLUMNS columns (and a fifth of the segment's columns) touch the ground."""
    h, w = ground_px.shape
    low = np.full(w, -1, dtype=np.int64)
    np.maximum.at(low, u, v)
    cols = np.flatnonzero((low >= 0) & (low + 1 < h))
    if len(cols) == 0:
        return None
    cols = cols[ground_px[low[cols] + 1, cols]]
    n_cols = int(np.count_nonzero(low >= 0))
    if len(cols) < max(WALL_MIN_COLUMNS, 0.2 * n_cols):
        return None
    cam = np.asarray(pose.T, dtype=np.float64)
    rays = pixel_rays(cols + 0.5, low[cols] + 1.0, intr, pose.R)  # through the columns' bottom edges
    down = rays[:, 1] < -1e-9
    if np.count_nonzero(down) < WALL_MIN_COLUMNS:
        return None
    t = -cam[1] / rays[down, 1]
    xz = (cam + rays[down] * t[:, None])[:, [0, 2]]
    yaw = principal_yaw(xz)
    ps = math.radians(yaw)
    c, s = math.cos(ps), math.sin(ps)
    along = xz[:, 0] * c - xz[:, 1] * s  # local x (world x = a c + b s, z = -a s + b c)
    across = xz[:, 0] * s + xz[:, 1] * c
    a_lo, a_hi = robust_span(along)
    b_face = float(np.median(across))
    b_cam = cam[0] * s + cam[2] * c
    thick = float(spec.size[2])
    b_mid = b_face + (thick / 2.0 if b_face >= b_cam else -thick / 2.0)  # the slab lies behind its face
    am = (a_lo + a_hi) / 2.0
    height = 0.05
    centre = (am * c + b_mid * s, height / 2.0, -am * s + b_mid * c)
    seed = Box(center=centre, yaw=yaw, size=(max(a_hi - a_lo, 0.01), height, thick))
    rec = {"network_z_m": round(z_net, 3), "distance_from": "footprint line", "columns": int(len(t)),
           "z_m": round(float(np.median(t)), 3), "thickness_m": round(thick, 3)}
    return seed, rec


def place(box: Box, source: str, spec: ShapeSpec, bbox: np.ndarray, foot_u: float, z_net: float, *,
          contact_row: int, limited: bool, pose: Pose, intr: Intrinsics, has_ground: bool,
          u: np.ndarray | None = None, v: np.ndarray | None = None,
          ground_px: np.ndarray | None = None) -> tuple[Box, str, dict[str, Any] | None]:
    """The box of an object with network depth (see the module doc), its thickness_source and a
    placement record; the input box unchanged (record None) for roles this does not apply to.

    `box`/`source`: the engine's fit of the back-projected pixels; `bbox`: [x0, y0, x1, y1) in the
    camera's pixels; `foot_u`: column of its lowest pixels; `z_net`: median network z-depth of its
    pixels; `contact_row`: lowest row adjoining ground pixels (-1 none); `limited`: its bottom is cut by
    the frame or hidden behind a nearer object.
    """
    if not (math.isfinite(z_net) and z_net > 0):
        return box, source, None
    if spec.role == "wall" and has_ground and spec.standing is not False and u is not None and v is not None \
            and ground_px is not None:
        wall = place_wall(box, spec, u, v, ground_px, z_net, pose=pose, intr=intr)
        if wall is not None:
            return cover_bbox(wall[0], bbox, pose, intr, keep_bottom=True, frozen=(2,)), "prior", wall[1]
    if spec.role in SKIP_ROLES or spec.flat:
        return box, source, None
    x0, y0, x1, y1 = (float(b) for b in bbox)
    f = intr.focal_px
    cam = np.asarray(pose.T, dtype=np.float64)
    # standing: on the ground by class, or an "auto" class the fit put there (never a class that floats,
    # whose fitted bottom may only have been clamped at the ground)
    standing = spec.standing is True or (spec.standing == "auto" and box.bottom <= 1e-6)
    record: dict[str, Any] = {"network_z_m": round(z_net, 3)}
    z, how = z_net, "depth"
    foot_ray = _ray(foot_u, y1, pose, intr)
    z_foot = -cam[1] / foot_ray[1] if foot_ray[1] < -1e-9 else math.inf
    if standing and math.isfinite(z_foot):  # without a ground plane y = 0 is still where standing boxes stand
        record["footprint_z_m"] = round(z_foot, 3)
        tol = max(2.0, CONTACT_TOL * (y1 - y0))
        if has_ground and not limited and contact_row >= 0 and contact_row + 1.0 >= y1 - tol:
            if abs(math.log(z_foot / z_net)) <= math.log(AGREE):
                z = math.exp(FOOT_WEIGHT * math.log(z_foot) + (1.0 - FOOT_WEIGHT) * math.log(z_net))
                how = "footprint+depth"
            else:
                z, how = z_foot, "footprint"
        elif z_net > z_foot:
            z, how = z_foot, "depth, capped by the ground"
    record["distance_from"] = how
    record["z_m"] = round(z, 3)

    # the front point: on the ground under the foot column for standing objects, else the segment's centre ray
    if standing:
        front = cam + foot_ray * z
        front[1] = 0.0
    else:
        front = cam + _ray((x0 + x1) / 2.0, (y0 + y1) / 2.0, pose, intr) * z
    view = front - cam
    view[1] = 0.0
    norm = float(np.linalg.norm(view))
    view = view / norm if norm > 1e-9 else np.array([0.0, 0.0, -1.0])
    yaw = math.degrees(math.atan2(view[0], view[2]))  # local +Z along the view ray (away from the camera)

    w_sil, h_sil = (x1 - x0) * z / f, (y1 - y0) * z / f  # silhouette extents at the chosen distance
    # measured thickness: the fitted box's extent along its horizontal axis closest to the view ray
    ps = math.radians(box.yaw)
    along_x = abs(view[0] * math.cos(ps) - view[2] * math.sin(ps))
    along_z = abs(view[0] * math.sin(ps) + view[2] * math.cos(ps))
    measured = float(box.size[0] if along_x > along_z else box.size[2])
    if spec.slab:
        thick, src = float(spec.size[2]), "prior"
    elif spec.matched is None:  # no class prior of its own: capped by its own size and distance
        cap = min(max(w_sil, h_sil), DIST_FRACTION * z)
        thick, src = (cap, "prior") if measured > cap else (measured, source)
    else:
        prior = _prior_depth(spec, w_sil)
        # thickness is horizontal: a pole's 4 m height does not count
        limit = PLAUSIBLE * max(spec.size[0], spec.size[2], prior)
        thick, src = (prior, "prior") if measured > limit else (measured, source)
    thick = max(thick, 0.01)
    record["thickness_m"] = round(thick, 3)

    w, h = max(SEED * w_sil, 0.01), max(SEED * h_sil, 0.01)
    centre = front + view * (thick / 2.0)
    if standing:
        centre[1] = h / 2.0
    seed = Box(center=(float(centre[0]), float(centre[1]), float(centre[2])), yaw=yaw, size=(w, h, thick))
    # grown here (not by the engine, whose rule keeps any box bottom at or below y = 0 fixed): a floating
    # object may move its bottom, a standing one never
    covered = cover_bbox(seed, bbox, pose, intr, keep_bottom=standing, frozen=(2,) if spec.slab else ())
    return covered, src, record
