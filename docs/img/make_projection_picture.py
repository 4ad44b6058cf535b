"""Make docs/img/projection.jpg, the README's picture of the projected look (--look projection).

    .venv/bin/python docs/img/make_projection_picture.py [PHOTO] [-o docs/img/projection.jpg]

Left: the photo. Middle: the exported .usda read back (meshes, `st`, the image written beside it, the
file's own camera) and ray-cast through that camera by builders.preview.render_meshes: it gives the photo
back. Right: the same scene from a second camera (raised, swung to the side; no sky) drawn by
builders.preview.render_preview(look="projection"): which part of the photo lands on which box; grey
where the photo does not reach (the object's mean colour). Needs ../shared (photo and model weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "img"))

from make_readme_picture import PANEL_H, caption, fit, oblique  # noqa: E402

from inference_server import pipeline  # noqa: E402
from inference_server.builders import export  # noqa: E402
from inference_server.builders.preview import render_meshes, render_preview  # noqa: E402
from inference_server.builders.readback import read_export  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    shared = ROOT.parent / "shared"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=str(shared / "samples" / "street_london_bus.jpg"))
    ap.add_argument("-o", "--output", default=str(ROOT / "docs" / "img" / "projection.jpg"))
    args = ap.parse_args(argv)
    os.environ.setdefault("IMG2MAYA_MODELS", str(shared / "models"))
    scene = pipeline.run(args.photo)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "scene.usda"
        export(scene, out, look="projection", photo=args.photo)
        meshes, camera = read_export(out)
        through, _hit = render_meshes(meshes, camera, 800)
    through_im = fit(np.clip(np.rint(through * 255), 0, 255).astype(np.uint8), PANEL_H)
    with Image.open(args.photo) as im:
        photo = fit(np.asarray(im.convert("RGB")), PANEL_H)
    side = fit(render_preview(oblique(scene), width=800, look="projection", photo=args.photo,
                              projector=scene["camera"]), PANEL_H)
    caption(photo, "photo")
    caption(through_im, "exported USD through its camera")
    caption(side, "same scene, second camera")
    panels = [photo, through_im, side]
    canvas = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), PANEL_H), (255, 255, 255))
    x = 0
    for p in panels:
        canvas.paste(p, (x, 0))
        x += p.width + 4
    canvas.save(args.output, quality=88, optimize=True)
    print(f"wrote {args.output} ({canvas.width}x{canvas.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
