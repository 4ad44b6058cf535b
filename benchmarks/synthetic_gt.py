"""Synthetic street scenes with exact ground truth: upright boxes on a ground plane, ray-cast.

Why: the scene engine turns (photo, labels, z-depth, focal length) into oriented boxes, a camera
pose and colours. On real photos nobody knows the true box of a car; here every number is known, so
the benchmark can score the engine's boxes (oriented 3D IoU), colours and camera pose exactly.

World frame = the scene@1 convention (docs/ARCHITECTURE.md): metres, +Y up, ground plane y = 0,
the camera at [0, h, 0] with rotate [pitch, 0, roll] (Maya xyz Euler, R = Rz @ Ry @ Rx), looking
toward -Z. Camera frame x right, y up, z backward; pixel (u, v) has its centre at (u + 0.5, v + 0.5).
Depth is z-depth (distance along the optical axis), not ray length; NaN where the ray sees sky.

Rendering is analytic: every ray is intersected with the ground plane and, inside the 2D bounding
rectangle of each box's projection, with the box (slab test in the box's own frame); the nearest hit
wins. Faces are Lambert-shaded by a sun so an object's pixels are not one flat colour, then 8-bit
noise is added. The ground-truth colour of an object is the mean of its *rendered* visible pixels
in linear light (exact, from the uint8 image the engine reads), both linear and sRGB-encoded.

    .venv/bin/python benchmarks/synthetic_gt.py OUT_DIR [--seed 0] [--width 960 --height 640]

writes image.png, labels.png, names.txt, depth.npy, instances.npy, gt.json (focal length inside)
and prints the matching `img2maya scene` command.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inference_server.analysis.camera import Intrinsics, euler_xyz_to_matrix, focal_from_fov  # noqa: E402
from inference_server.analysis.color import LINEAR_LUT, linear_to_srgb, srgb_to_linear  # noqa: E402

# Class ids of every synthetic scene (line k of names.txt = name of id k); names the shapes table knows.
NAMES: list[str] = ["sky", "road", "building", "car", "truck", "person", "box"]
SKY, ROAD = 0, 1

# Per class: (min size, max size) as full extents [x width, y height, z length] in metres,
# (min, max) distance from the camera along the ground, and a relative draw weight.
CLASS_SPECS: dict[str, dict[str, Any]] = {
    "car": {"lo": (1.70, 1.40, 4.20), "hi": (1.95, 1.65, 4.90), "dist": (6.0, 30.0), "weight": 4.0},
    "truck": {"lo": (2.40, 3.00, 7.00), "hi": (2.60, 3.60, 9.00), "dist": (10.0, 35.0), "weight": 1.0},
    "building": {"lo": (8.0, 6.0, 8.0), "hi": (20.0, 15.0, 20.0), "dist": (25.0, 40.0), "weight": 2.0},
    "person": {"lo": (0.45, 1.60, 0.30), "hi": (0.60, 1.90, 0.45), "dist": (5.0, 18.0), "weight": 1.5},
    "box": {"lo": (0.60, 0.50, 0.60), "hi": (1.20, 1.00, 1.20), "dist": (5.0, 14.0), "weight": 1.5},
}
GROUND_FAR_M = 1000.0  # the ground ends here (beyond: sky), so depths stay finite and bounded
AMBIENT = 0.35  # Lambert: shade = AMBIENT + (1 - AMBIENT) * max(0, n . sun)


@dataclass
class GTObject:
    """One ground-truth box in the scene@1 world frame (translate = box centre, full extents)."""

    label: str
    label_id: int
    translate: list[float]
    rotate: list[float]  # [0, yaw, 0] degrees
    size: list[float]  # [x, y, z] full extents along the box's own axes
    albedo_srgb: list[float]  # the paint before shading
    color_linear: list[float] = field(default_factory=list)  # mean of the visible rendered pixels
    color_srgb: list[float] = field(default_factory=list)  # linear_to_srgb(color_linear)
    pixels: int = 0
    visible_fraction: float = 1.0  # visible pixels / pixels of the box alone (occlusion by other boxes)
    bbox_px: list[int] = field(default_factory=list)  # [u0, v0, u1, v1), visible pixels

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SyntheticScene:
    rgb: np.ndarray  # (h, w, 3) uint8 sRGB
    labels: np.ndarray  # (h, w) int32 class ids into `names`
    names: list[str]
    depth: np.ndarray  # (h, w) float32 z-depth in metres, NaN for sky
    instances: np.ndarray  # (h, w) int32: index into `objects`, -1 ground, -2 sky
    intrinsics: Intrinsics
    camera: dict[str, Any]  # translate, rotate, height_m, pitch_deg, roll_deg
    objects: list[GTObject]
    seed: int

    def gt_dict(self) -> dict[str, Any]:
        i = self.intrinsics
        return {
            "seed": self.seed,
            "width": i.width, "height": i.height,
            "intrinsics": {"focal_px": i.focal_px, "cx": i.cx, "cy": i.cy, "width": i.width, "height": i.height},
            "camera": self.camera,
            "names": self.names,
            "objects": [o.to_dict() for o in self.objects],
        }


def _footprint(center: np.ndarray, yaw: float, size: np.ndarray) -> np.ndarray:
    """(4, 2) x-z corners of an upright box's footprint (same Ry as the camera maths)."""
    r = euler_xyz_to_matrix(0.0, yaw, 0.0)
    loc = np.array([[sx, 0.0, sz] for sx, sz in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5))]) * size
    w = center + loc @ r.T
    return w[:, [0, 2]]


def _separated(a: np.ndarray, b: np.ndarray, gap: float) -> bool:
    """Separating-axis test of two convex x-z quads, with a safety gap in metres."""
    for poly in (a, b):
        for k in range(4):
            e = poly[(k + 1) % 4] - poly[k]
            n = np.array([-e[1], e[0]]) / (np.hypot(*e) + 1e-12)
            pa, pb = a @ n, b @ n
            if pa.max() + gap < pb.min() or pb.max() + gap < pa.min():
                return True
    return False


def _corners(center: np.ndarray, yaw: float, size: np.ndarray) -> np.ndarray:
    s = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    return center + (s * size) @ euler_xyz_to_matrix(0.0, yaw, 0.0).T


def _project_world(points: np.ndarray, r_cam: np.ndarray, t_cam: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """(N, 3) pixel u, v and z-depth of world points."""
    cam = (points - t_cam) @ r_cam  # world -> camera (R orthonormal)
    d = -cam[:, 2]
    u = cam[:, 0] * intr.focal_px / d + intr.cx
    v = -cam[:, 1] * intr.focal_px / d + intr.cy
    return np.stack([u, v, d], axis=1)


def _distinct_colours(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """n well-separated sRGB albedos (hues spread around the wheel), none too dark or saturated-bright."""
    h0 = rng.uniform(0, 1)
    out = []
    for k in range(n):
        h = (h0 + k / max(n, 1) + rng.uniform(-0.03, 0.03)) % 1.0
        s = rng.uniform(0.45, 0.8)
        v = rng.uniform(0.55, 0.85)
        out.append(np.array(colorsys.hsv_to_rgb(h, s, v)))
    return out


def _place_objects(rng: np.random.Generator, n_objects: int, r_cam: np.ndarray, t_cam: np.ndarray,
                   intr: Intrinsics, classes: list[str]) -> list[tuple[str, np.ndarray, float, np.ndarray]]:
    """Random non-overlapping boxes fully inside the view, at 5-40 m (per-class ranges)."""
    weights = np.array([CLASS_SPECS[c]["weight"] for c in classes], dtype=float)
    weights /= weights.sum()
    placed: list[tuple[str, np.ndarray, float, np.ndarray]] = []
    feet: list[np.ndarray] = []
    half_fov = math.atan(intr.width / 2 / intr.focal_px)
    tries = 0
    while len(placed) < n_objects and tries < 400 * n_objects:
        tries += 1
        cls = classes[int(rng.choice(len(classes), p=weights))]
        spec = CLASS_SPECS[cls]
        size = rng.uniform(spec["lo"], spec["hi"])
        dist = rng.uniform(*spec["dist"])
        az = rng.uniform(-0.85, 0.85) * half_fov
        center = np.array([dist * math.sin(az), size[1] / 2, -dist * math.cos(az)])
        yaw = float(rng.uniform(-90.0, 90.0))
        uvd = _project_world(_corners(center, yaw, size), r_cam, t_cam, intr)
        if (uvd[:, 2] < 1.0).any() or uvd[:, 0].min() < 2 or uvd[:, 0].max() > intr.width - 2:
            continue
        if uvd[:, 1].min() < 2 or uvd[:, 1].max() > intr.height - 2:
            continue
        fp = _footprint(center, yaw, size)
        if not all(_separated(fp, other, 0.5) for other in feet):
            continue
        placed.append((cls, center, yaw, size))
        feet.append(fp)
    return placed


def _cast(d_w: np.ndarray, t_cam: np.ndarray, center: np.ndarray, yaw: float, size: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Slab test of rays (origin t_cam, directions d_w (n, 3)) against one upright box.

    Returns the entry parameter (inf for a miss; the ray parameter equals z-depth because the camera
    direction has z = -1) and the world normal (n, 3) of the entered face.
    """
    rb = euler_xyz_to_matrix(0.0, yaw, 0.0)
    o = (t_cam - center) @ rb  # box-frame origin (one point)
    dl = d_w @ rb  # box-frame directions
    half = size / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dl
        t1 = (-half - o) * inv
        t2 = (half - o) * inv
    lo = np.minimum(t1, t2)
    hi = np.maximum(t1, t2)
    axis = np.argmax(lo, axis=1)
    t_in = lo[np.arange(len(lo)), axis]
    t_out = hi.min(axis=1)
    hit = (t_in <= t_out) & (t_in > 0)
    t_in = np.where(hit, t_in, np.inf)
    n_local = np.zeros_like(dl)
    n_local[np.arange(len(dl)), axis] = -np.sign(dl[np.arange(len(dl)), axis])
    return t_in, n_local @ rb.T


def make_scene(seed: int, width: int = 960, height: int = 640, n_objects: int = 6, *,
               classes: list[str] | None = None, hfov_deg: float | None = None, noise: float = 1.5,
               ) -> SyntheticScene:
    """A random street scene (deterministic in `seed`) with its exact ground truth.

    Camera height 1.4-1.8 m, pitch -3..-12 degrees, roll -2..2 degrees, horizontal FOV 50-70
    degrees unless given; `n_objects` boxes (fewer if they do not fit) of the `classes` (default:
    car, truck, building, person, box). `noise` is the std of the 8-bit Gaussian noise.
    """
    rng = np.random.default_rng(seed)
    classes = classes or list(CLASS_SPECS)
    hfov = hfov_deg if hfov_deg is not None else float(rng.uniform(50.0, 70.0))
    intr = Intrinsics(focal_from_fov(width, hfov), width / 2.0, height / 2.0, width, height, "user")
    cam_h = float(rng.uniform(1.4, 1.8))
    pitch = float(rng.uniform(-12.0, -3.0))
    roll = float(rng.uniform(-2.0, 2.0))
    r_cam = euler_xyz_to_matrix(pitch, 0.0, roll)
    t_cam = np.array([0.0, cam_h, 0.0])
    placed = _place_objects(rng, n_objects, r_cam, t_cam, intr, classes)

    sun = np.array([rng.uniform(-0.6, 0.6), 1.0, rng.uniform(0.1, 0.6)])
    sun /= np.linalg.norm(sun)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    d_cam = np.stack([(u + 0.5 - intr.cx) / intr.focal_px, -(v + 0.5 - intr.cy) / intr.focal_px,
                      -np.ones_like(u)], axis=-1).reshape(-1, 3)
    d_w = d_cam @ r_cam.T
    n = len(d_w)
    t_best = np.full(n, np.inf)
    inst = np.full(n, -2, dtype=np.int32)
    normal = np.zeros((n, 3))
    down = d_w[:, 1] < -1e-12
    t_g = np.where(down, -cam_h / np.where(down, d_w[:, 1], -1.0), np.inf)
    # the ground ends GROUND_FAR_M away along the ground (horizontal distance), so no depth explodes
    far = t_g * np.hypot(d_w[:, 0], d_w[:, 2]) > GROUND_FAR_M
    t_g[far] = np.inf
    g = np.isfinite(t_g)
    t_best[g], inst[g], normal[g] = t_g[g], -1, (0.0, 1.0, 0.0)
    alone: list[int] = []  # pixels of each box if nothing occluded it
    for k, (_, center, yaw, size) in enumerate(placed):
        # only the rays inside the projected box can hit it (all corners are in front of the camera)
        uvd = _project_world(_corners(center, yaw, size), r_cam, t_cam, intr)
        u0, u1 = max(int(uvd[:, 0].min()) - 1, 0), min(int(math.ceil(uvd[:, 0].max())) + 1, width)
        v0, v1 = max(int(uvd[:, 1].min()) - 1, 0), min(int(math.ceil(uvd[:, 1].max())) + 1, height)
        idx = (np.arange(v0, v1)[:, None] * width + np.arange(u0, u1)[None, :]).ravel()
        t, nrm = _cast(d_w[idx], t_cam, center, yaw, size)
        alone.append(int(np.isfinite(t).sum()))
        win = t < t_best[idx]
        sel = idx[win]
        t_best[sel], inst[sel], normal[sel] = t[win], k, nrm[win]

    colours = _distinct_colours(len(placed) + 2, rng)
    ground_srgb = np.array([0.36, 0.35, 0.34]) * rng.uniform(0.8, 1.2)
    sky_top, sky_bottom = np.array([0.35, 0.55, 0.85]), np.array([0.75, 0.85, 0.95])
    albedo_lin = np.zeros((n, 3))
    sky = inst == -2
    sky_t = np.clip((v.ravel()[sky] / height), 0, 1)[:, None]
    albedo_lin[sky] = srgb_to_linear(sky_top * (1 - sky_t) + sky_bottom * sky_t)
    albedo_lin[inst == -1] = srgb_to_linear(ground_srgb)
    for k in range(len(placed)):
        albedo_lin[inst == k] = srgb_to_linear(colours[k])
    shade = np.where(sky, 1.0, AMBIENT + (1.0 - AMBIENT) * np.clip(normal @ sun, 0.0, None))
    lin = albedo_lin * shade[:, None]
    srgb8 = linear_to_srgb(lin) * 255.0 + rng.normal(0.0, noise, size=lin.shape)
    rgb = np.clip(np.round(srgb8), 0, 255).astype(np.uint8).reshape(height, width, 3)

    inst2 = inst.reshape(height, width)
    labels = np.where(inst2 == -2, SKY, ROAD).astype(np.int32)
    depth = np.where(np.isfinite(t_best), t_best, np.nan).astype(np.float32).reshape(height, width)
    objects: list[GTObject] = []
    for k, (cls, center, yaw, size) in enumerate(placed):
        m = inst2 == k
        labels[m] = NAMES.index(cls)
        vv, uu = np.nonzero(m)
        mean_lin = LINEAR_LUT[rgb[m]].mean(axis=0) if m.any() else np.zeros(3)
        objects.append(GTObject(
            label=cls, label_id=NAMES.index(cls), translate=[float(x) for x in center],
            rotate=[0.0, float(yaw), 0.0], size=[float(x) for x in size],
            albedo_srgb=[float(x) for x in colours[k]],
            color_linear=[float(x) for x in mean_lin], color_srgb=[float(x) for x in linear_to_srgb(mean_lin)],
            pixels=int(m.sum()), visible_fraction=float(m.sum() / max(alone[k], 1)),
            bbox_px=[int(uu.min()), int(vv.min()), int(uu.max()) + 1, int(vv.max()) + 1] if m.any() else [0, 0, 0, 0],
        ))
    camera = {"translate": [0.0, cam_h, 0.0], "rotate": [pitch, 0.0, roll], "height_m": cam_h,
              "pitch_deg": pitch, "roll_deg": roll, "hfov_deg": hfov}
    return SyntheticScene(rgb=rgb, labels=labels, names=list(NAMES), depth=depth, instances=inst2,
                          intrinsics=intr, camera=camera, objects=objects, seed=seed)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then os.replace (no half-written files)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_inputs(scene: SyntheticScene, folder: str | Path) -> dict[str, Path]:
    """Write the engine's inputs and the ground truth; returns the paths by role.

    image.png (sRGB), labels.png (8-bit class ids), names.txt (line k = name of id k), depth.npy
    (float32 z-depth, NaN sky), instances.npy (object index per pixel, -1 ground, -2 sky), gt.json
    (camera, intrinsics incl. focal_px for --focal-px, objects).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / n for k, n in (("image", "image.png"), ("labels", "labels.png"), ("names", "names.txt"),
                                      ("depth", "depth.npy"), ("instances", "instances.npy"), ("gt", "gt.json"))}
    _atomic_write(paths["image"], lambda p: Image.fromarray(scene.rgb).save(p, format="PNG"))
    _atomic_write(paths["labels"], lambda p: Image.fromarray(scene.labels.astype(np.uint8)).save(p, format="PNG"))
    _atomic_write(paths["names"], lambda p: Path(p).write_text("\n".join(scene.names) + "\n"))
    _atomic_write(paths["depth"], lambda p: np.save(p, scene.depth))
    _atomic_write(paths["instances"], lambda p: np.save(p, scene.instances))
    _atomic_write(paths["gt"], lambda p: Path(p).write_text(json.dumps(scene.gt_dict(), indent=1)))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="folder for the inputs and gt.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=640)
    ap.add_argument("--objects", type=int, default=6)
    a = ap.parse_args(argv)
    s = make_scene(a.seed, a.width, a.height, a.objects)
    p = write_inputs(s, a.out)
    for o in s.objects:
        print(f"{o.label:9s} size {np.round(o.size, 2)} yaw {o.rotate[1]:6.1f} at {np.round(o.translate, 2)} "
              f"{o.pixels} px")
    print(f"img2maya scene {p['image']} --labels {p['labels']} --label-names {p['names']} --depth {p['depth']} "
          f"--focal-px {s.intrinsics.focal_px:.6f} -o {Path(a.out) / 'scene.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
