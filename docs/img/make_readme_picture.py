"""Make docs/img/result.jpg, the README's picture, from a real photo and the real default networks.

    .venv/bin/python docs/img/make_readme_picture.py [PHOTO] [--recursion N] [-o docs/img/result.jpg]

Top row: the photo, the segmentation, the depth (the server's preview). Bottom row: the scene@1 result
ray-cast through the scene camera, the same over the photo (it lines up), and the scene seen from a second
camera raised and swung to the side, so that positions, sizes and thickness can be judged. The render is
builders.preview's numpy ray caster: what the USD/Maya builders place, not a painted illustration.
Needs ../shared (photo and model weights).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inference_server import pipeline  # noqa: E402
from inference_server.analysis.camera import matrix_to_euler_xyz  # noqa: E402
from inference_server.analysis.engine import SceneOptions  # noqa: E402
from inference_server.builders.preview import render_preview  # noqa: E402
from inference_server.imageio import load_photo  # noqa: E402
from inference_server.inference.preview_img import side_by_side  # noqa: E402
from inference_server.scene import iter_objects  # noqa: E402

PANEL_H = 300


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """xyz Euler degrees of a camera at `eye` looking at `target` (-Z forward, +Y up, no roll)."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return matrix_to_euler_xyz(np.stack([right, up, back], axis=1))


def oblique(scene: dict, swing_deg: float = 35.0) -> dict:
    """The scene without its sky backdrop, seen from a camera orbited about the objects' centroid."""
    out = copy.deepcopy(scene)
    out["objects"] = [o for o in out["objects"] if o["role"] != "sky"]
    solid = [o for o in iter_objects(out["objects"]) if o["role"] not in ("ground", "sky")]
    pts = np.array([o["translate"] for o in solid]) if solid else np.zeros((1, 3))
    target = np.median(pts, axis=0)
    target[1] = max(target[1], 1.0)
    cam = np.asarray(out["camera"]["translate"], float)
    radius = float(np.hypot(*(cam - target)[[0, 2]])) * 1.35 + 5.0
    heading = math.atan2(cam[0] - target[0], cam[2] - target[2]) + math.radians(swing_deg)
    eye = target + np.array([radius * math.sin(heading), 0.45 * radius + 4.0, radius * math.cos(heading)])
    out["camera"]["translate"] = eye.tolist()
    out["camera"]["rotate"] = list(look_at(eye, target))
    out["camera"]["near_clip_m"] = 0.1
    return out


def fit(img: np.ndarray, height: int) -> Image.Image:
    im = Image.fromarray(img)
    return im.resize((max(1, round(im.width * height / im.height)), height), Image.Resampling.LANCZOS)


def caption(im: Image.Image, text: str) -> Image.Image:
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 8 + 7 * len(text), 18], fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255))
    return im


def main(argv: list[str] | None = None) -> int:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=str(shared / "samples" / "street_london_bus.jpg"))
    ap.add_argument("--recursion", type=int, default=0)
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "result.jpg"))
    args = ap.parse_args(argv)
    os.environ.setdefault("IMG2MAYA_MODELS", str(shared / "models"))

    photo = load_photo(args.photo)
    api = pipeline._api()
    seg, depth = pipeline.infer(photo, api.DEFAULT_SEG, api.DEFAULT_DEPTH)
    assert seg is not None
    scene = pipeline.analyse(photo, seg, depth, SceneOptions(recursion=args.recursion))
    top = side_by_side(photo.rgb, seg.labels, len(seg.names), depth.depth if depth else None, max_height=PANEL_H)
    width = top.shape[1]
    through = fit(render_preview(scene, width=800), PANEL_H)
    photo_small = Image.fromarray(photo.rgb).resize(through.size, Image.Resampling.LANCZOS)
    overlay = Image.blend(photo_small, through, 0.55)
    side = fit(render_preview(oblique(scene), width=800), PANEL_H)
    caption(through, "scene through its camera")
    caption(overlay, "over the photo")
    caption(side, "same scene, second camera")
    bottom = [through, overlay, side]
    bottom_w = sum(p.width for p in bottom) + 4 * (len(bottom) - 1)
    canvas = Image.new("RGB", (max(width, bottom_w), 2 * PANEL_H + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(top), (0, 0))
    x = 0
    for p in bottom:
        canvas.paste(p, (x, PANEL_H + 4))
        x += p.width + 4
    canvas.save(args.output, optimize=True, **({"quality": 88} if args.output.lower().endswith((".jpg", ".jpeg")) else {}))
    n = sum(1 for _ in iter_objects(scene["objects"]))
    print(f"wrote {args.output} ({canvas.width}x{canvas.height}, {n} objects)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
