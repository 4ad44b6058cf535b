"""The projected look (--look projection) on real photos: does the exported file, rendered through its
own camera, give back the photo, and what does the look cost at export?

    .venv/bin/python benchmarks/bench_projection.py [PHOTO ...] [--width 800] [--repeat 3] [--json OUT]

Default photos: four 2-2.8 MP samples of ../shared/samples (streets, a room, a landscape), analysed by
the default networks (weights from ../shared/models or $IMG2MAYA_MODELS). For each photo and each format
(.usda, .usdz, .glb, .gltf) the scene is exported with --look projection, read back from the file
(`builders.readback`: the meshes, their UVs, the embedded or adjacent image and the file's own camera)
and ray-cast through that camera (`preview.render_meshes`, `--width` pixels wide, one mip level, the box
filter); the photo is resized to the render with the same box filter and the mean absolute error (0..1,
RGB) is taken over the pixels the objects cover. Target: MAE <= 0.03.

Cost: the export time of --look projection minus that of --look color (best of --repeat, .usda and .glb),
on the same scene. Target: <= 0.3 s for a 2 MP photo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference_server import pipeline  # noqa: E402
from inference_server.builders import export  # noqa: E402
from inference_server.builders.preview import render_meshes  # noqa: E402
from inference_server.builders.readback import read_export  # noqa: E402
from inference_server.scene import iter_objects  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "samples"
DEFAULT = ["street_london_bus.jpg", "street_nyc.jpg", "indoor_room_windows.jpg",
           "cityscapes_aachen_000000_000019_leftImg8bit.jpg"]
FORMATS = (".usda", ".usdz", ".glb", ".gltf")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", default=[str(SAMPLES / p) for p in DEFAULT])
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    os.environ.setdefault("IMG2MAYA_MODELS", str(ROOT.parent / "shared" / "models"))
    rows = []
    print(f"{'photo':<48} {'MP':>4} {'objs':>4} " + " ".join(f"{'MAE' + f:>10}" for f in FORMATS)
          + f" {'+usda s':>8} {'+glb s':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-projection-") as work:
        for photo in args.photos:
            scene = pipeline.run(photo)
            n = sum(1 for _ in iter_objects(scene["objects"]))
            w, h = scene["source"]["width"], scene["source"]["height"]
            with Image.open(photo) as im:
                full = im.convert("RGB")
            row = {"photo": Path(photo).name, "megapixels": round(w * h / 1e6, 2), "objects": n, "mae": {},
                   "covered": {}, "seconds": {}}
            for suffix in FORMATS:
                out = Path(work) / f"scene{suffix}"
                export(scene, out, look="projection", photo=photo)
                meshes, camera = read_export(out)
                rgb, hit = render_meshes(meshes, camera, args.width)
                ref = np.asarray(full.resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.BOX)) / 255.0
                row["mae"][suffix] = round(float(np.abs(rgb - ref)[hit].mean()), 4)
                row["covered"][suffix] = round(float(hit.mean()), 3)
            for suffix in (".usda", ".glb"):
                out = str(Path(work) / f"timed{suffix}")
                colour = best(lambda o=out, s=scene: export(s, o, look="color"), args.repeat)
                projected = best(lambda o=out, s=scene, p=photo: export(s, o, look="projection", photo=p),
                                 args.repeat)
                row["seconds"][suffix] = {"color": round(colour, 3), "projection": round(projected, 3),
                                          "added": round(projected - colour, 3)}
            rows.append(row)
            print(f"{row['photo'][:48]:<48} {row['megapixels']:>4} {n:>4} "
                  + " ".join(f"{row['mae'][f]:>10.4f}" for f in FORMATS)
                  + f" {row['seconds']['.usda']['added']:>8.3f} {row['seconds']['.glb']['added']:>8.3f}")
    worst = max(max(r["mae"].values()) for r in rows)
    added = max(max(s["added"] for s in r["seconds"].values()) for r in rows)
    print(f"worst MAE {worst:.4f} (target <= 0.03); most added export time {added:.3f} s (target <= 0.3 s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
