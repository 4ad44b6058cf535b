"""Synthetic scenes with known geometry: boxes standing on a ground plane, ray-cast analytically.

Used by the other test_analysis_* modules as ground truth (camera pose, box sizes and yaws,
per-object colours); the tests here check the renderer itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference_server.analysis.boxes import Box
from inference_server.analysis.camera import Intrinsics, euler_xyz_to_matrix, intrinsics_for
from inference_server.analysis.color import srgb_to_linear

SKY, GROUND = 0, 1


@dataclass
class GTBox:
    label: int
    center_xz: tuple[float, float]
    yaw: float
    size: tuple[float, float, float]
    color_srgb: tuple[float, float, float]
    bottom: float = 0.0

    @property
    def box(self) -> Box:
        cx, cz = self.center_xz
        return Box(center=(cx, self.bottom + self.size[1] / 2, cz), yaw=self.yaw, size=self.size)


@dataclass
class Synth:
    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray  # z-depth, inf for sky
    instance: np.ndarray  # index into boxes, -1 ground, -2 sky
    intr: Intrinsics
    names: list[str]
    boxes: list[GTBox]
    pitch: float
    roll: float
    height: float
    extra: dict = field(default_factory=dict)


def render(boxes: list[GTBox], names: list[str], *, width: int = 320, height: int = 240, hfov: float = 60.0,
           pitch: float = -8.0, roll: float = 1.5, cam_height: float = 1.6,
           ground_srgb: tuple[float, float, float] = (0.35, 0.34, 0.33),
           sky_srgb: tuple[float, float, float] = (0.55, 0.7, 0.9), shade: bool = True) -> Synth:
    """Ray-cast boxes on the ground plane y = 0 seen by a camera at (0, cam_height, 0)."""
    intr = intrinsics_for(width, height, fov_deg=hfov)
    R = euler_xyz_to_matrix(pitch, 0.0, roll)
    T = np.array([0.0, cam_height, 0.0])
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    d_cam = np.stack([(u + 0.5 - intr.cx) / intr.focal_px, -(v + 0.5 - intr.cy) / intr.focal_px,
                      -np.ones_like(u, dtype=float)], axis=-1).reshape(-1, 3)
    d_w = d_cam @ R.T
    n = len(d_w)
    t_best = np.full(n, np.inf)
    inst = np.full(n, -2)
    face_shade = np.ones(n)
    down = d_w[:, 1] < -1e-9
    t_g = np.where(down, -cam_height / np.where(down, d_w[:, 1], -1.0), np.inf)
    hit = t_g < t_best
    t_best[hit], inst[hit] = t_g[hit], -1
    for k, gt in enumerate(boxes):
        b = gt.box
        Rb = b.rotation
        o = (T - np.asarray(b.center)) @ Rb
        dl = d_w @ Rb
        half = np.asarray(b.size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / dl
            t2 = (half - o) / dl
        tmin_axes = np.minimum(t1, t2)
        tmin = np.nanmax(tmin_axes, axis=1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=1)
        ok = (tmax >= tmin) & (tmin > 0) & (tmin < t_best)
        t_best[ok], inst[ok] = tmin[ok], k
        axis = np.nanargmax(tmin_axes, axis=1)
        face_shade[ok] = np.array([0.8, 1.0, 0.65])[axis[ok]] if shade else 1.0
    labels = np.where(inst == -2, SKY, np.where(inst == -1, GROUND, 0))
    lin = np.zeros((n, 3))
    lin[inst == -2] = srgb_to_linear(np.array(sky_srgb))
    lin[inst == -1] = srgb_to_linear(np.array(ground_srgb))
    for k, gt in enumerate(boxes):
        m = inst == k
        labels[m] = gt.label
        lin[m] = srgb_to_linear(np.array(gt.color_srgb)) * face_shade[m, None]
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    rgb = np.round(np.clip(srgb, 0, 1) * 255).astype(np.uint8).reshape(height, width, 3)
    depth = np.where(np.isfinite(t_best), t_best, np.inf).astype(np.float32).reshape(height, width)
    return Synth(rgb=rgb, labels=labels.reshape(height, width).astype(np.int32), depth=depth,
                 instance=inst.reshape(height, width), intr=intr, names=names, boxes=boxes,
                 pitch=pitch, roll=roll, height=cam_height)


def street(**kw) -> Synth:
    """Sky, road, a car, two buildings at different depths and a crate, with a pitched, rolled camera."""
    names = ["sky", "road", "car", "building", "box"]
    boxes = [
        GTBox(2, (2.5, -12.0), 30.0, (1.8, 1.5, 4.5), (0.8, 0.1, 0.1)),
        GTBox(3, (-9.0, -28.0), -20.0, (8.0, 9.0, 7.0), (0.62, 0.45, 0.38)),
        GTBox(3, (4.0, -40.0), 10.0, (10.0, 12.0, 9.0), (0.5, 0.5, 0.6)),
        GTBox(4, (-1.5, -7.0), 55.0, (1.0, 0.8, 1.2), (0.2, 0.6, 0.3)),
    ]
    return render(boxes, names, **kw)


def test_render_ground_depth_matches_plane() -> None:
    s = street()
    ground = s.instance == -1
    assert ground.sum() > 1000
    # every ground pixel's back-projected point lies on y = 0 in the world
    v, u = np.nonzero(ground)
    z = s.depth[ground]
    x = (u + 0.5 - s.intr.cx) * z / s.intr.focal_px
    y = -(v + 0.5 - s.intr.cy) * z / s.intr.focal_px
    world = np.stack([x, y, -z], 1) @ euler_xyz_to_matrix(s.pitch, 0, s.roll).T + [0, s.height, 0]
    assert np.abs(world[:, 1]).max() < 1e-6


def test_render_sees_every_box() -> None:
    s = street()
    for k in range(len(s.boxes)):
        assert (s.instance == k).sum() > 400
