"""Pictures of docs/CAMERA.md: the segments, vanishing directions and horizon img2maya finds.

    .venv/bin/python docs/img/make_camera_picture.py [--shared ../shared] [-o docs/img/camera_london.jpg]

Left: ../shared/samples/street_london_bus.jpg with the LSD segments coloured by the Manhattan axis they
were assigned to (green vertical, red and blue the two horizontals, grey none or dropped by their class),
the horizon (yellow) and the camera line. Right: a rendered block of two perpendicular facades with a
known camera (tests/test_calib.py's renderer), the true horizon (white) under the estimated one (yellow).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from inference_server import pipeline  # noqa: E402
from inference_server.analysis.engine import SceneOptions  # noqa: E402
from inference_server.calib import CameraEstimate, estimate_camera, segments  # noqa: E402
from inference_server.imageio import load_photo  # noqa: E402

COLOURS = {0: (230, 40, 40), 1: (40, 220, 60), 2: (40, 90, 255), -1: (150, 150, 150)}


def _horizon(up: tuple[float, float, float], f: float, w: int, h: int) -> list[tuple[float, float]]:
    """Two image points of the horizon: rays ((u - cx) / f, -(v - cy) / f, -1) perpendicular to up."""
    ux, uy, uz = up
    cx, cy = w / 2, h / 2
    pts = []
    for u in (0.0, float(w)):
        # ux (u - cx) / f - uy (v - cy) / f - uz = 0  ->  v
        v = cy + (ux * (u - cx) / f - uz) * f / uy
        pts.append((u, v))
    return pts


def draw(rgb: np.ndarray, est: CameraEstimate, f: float, trust: np.ndarray | None, truth: tuple | None = None
         ) -> Image.Image:
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb).convert("RGB")
    d = ImageDraw.Draw(img)
    seg = segments.detect(rgb, trust)
    lw = max(2, round(w / 500))
    for (x1, y1, x2, y2), (_, _, _, axis) in zip(seg.xy, est.edges or [(0, 0, 0, -1)] * len(seg), strict=False):
        d.line([x1, y1, x2, y2], fill=COLOURS[int(axis)], width=lw)
    if truth is not None:
        d.line(_horizon(truth, f, w, h), fill=(255, 255, 255), width=lw * 2)
    if est.up is not None:
        d.line(_horizon(est.up, f, w, h), fill=(255, 220, 0), width=lw)
    return img


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "img" / "camera_london.jpg")
    args = ap.parse_args()
    photo = load_photo(args.shared / "samples" / "street_london_bus.jpg")
    seg, _ = pipeline.infer(photo, "deeplabv3-mnv2-ade20k150", None)
    assert seg is not None
    intr, est = pipeline.camera(photo, seg, SceneOptions())
    from inference_server.analysis.shapes import load_table

    table = load_table()
    trust = segments.trust_map(seg.labels, [table.lookup(n).role for n in seg.names])
    left = draw(photo.rgb, est, intr.focal_px, trust)

    from test_calib import H, W, _render_block  # the test's renderer: a known camera

    f, pitch, roll, yaw = 650.0, 4.0, -1.5, 25.0
    rgb = _render_block(f, pitch, roll, yaw)
    est2 = estimate_camera(rgb, W / (2 * math.tan(math.radians(30))))
    p, r = math.radians(pitch), math.radians(roll)
    truth = (math.sin(r), math.cos(r) * math.cos(p), -math.cos(r) * math.sin(p))
    right = draw(rgb, est2, est2.focal_px or f, None, truth)
    height = 540
    left = left.resize((round(left.width * height / left.height), height), Image.LANCZOS)
    right = right.resize((round(W * height / H), height), Image.LANCZOS)
    out = Image.new("RGB", (left.width + right.width + 8, height), (255, 255, 255))
    out.paste(left, (0, 0))
    out.paste(right, (left.width + 8, 0))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.output, quality=82)
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB); London: {intr.source}, "
          f"pitch {est.pitch_deg:.2f} roll {est.roll_deg:.2f}; block: focal {est2.focal_px:.1f} (true {f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
