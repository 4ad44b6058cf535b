"""Speed: the prototype's per-class statistics loop vs the scene engine, on a 12 MP image with 24 labels.

Inputs (generated, deterministic): a 4000 x 3000 photo of 24 classes: sky above, road below (true
ground-plane z-depth for a camera 1.6 m high), and in between Voronoi regions of 22 object classes,
each region a fronto-parallel surface at its own distance (5-60 m); colours per class with shading
and noise. Written to disk as photo.jpg (or .png), labels.png, names.txt, depth.npy.

Timed:
1. prototype (benchmarks/prototype.py): per-pixel Python loops over 24 soft masks, in its two
   variants (numpy indexing per pixel, as a prototype is written; row lists, favourable). It is strictly
   linear in pixel count (the same loop body runs for every pixel and class), so by default it runs
   on a band of rows (--band-frac, default 1% of the image, --repeats times, best kept) and the
   full-image time is extrapolated linearly; --full runs the whole image instead (hours).
2. engine in-process: build_scene on the full 12 MP arrays (same inputs as the prototype).
3. the whole `img2maya scene` process (subprocess wall time: start-up, photo decode and downscale to
   the 4 MP analysis size, labels/depth load, engine, JSON write).
--profile prints cProfile's top entries for build_scene at 12 MP and for the CLI's main() in-process.

    .venv/bin/python benchmarks/bench_speed.py [--width 4000 --height 3000] [--repeats 3]
        [--band-frac 0.01] [--full] [--proto-seconds S] [--png] [--profile] [--keep DIR] [--json FILE]

--proto-seconds S skips the prototype (minutes on a loaded machine) and takes S as its full-image time.

Prints the times, the ratios prototype / engine, and the target (>= 1000x for the whole process).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_synthetic import code_version  # noqa: E402
from prototype import prototype_stats, prototype_stats_numpy, soft_masks  # noqa: E402

from inference_server.analysis.camera import Intrinsics, focal_from_fov  # noqa: E402

NAMES_24 = ["sky", "road", "building", "car", "person", "tree", "wall", "fence", "pole", "truck", "bus",
            "bicycle", "signboard", "box", "plant", "bench", "van", "motorcycle", "door", "windowpane",
            "lamp", "barrel", "column", "traffic light"]
TARGET_RATIO = 1000.0
CAMERA_HEIGHT_M = 1.6


def make_big_inputs(width: int = 4000, height: int = 3000, seed: int = 0, n_cells: int = 90
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(rgb uint8, labels int32, z-depth float32 with NaN sky, focal_px) of the 24-class test image.

    The Voronoi diagram is computed on a 4x coarser grid and repeated (labels stay blocky at 4 px,
    which changes nothing for timing).
    """
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    f = focal_from_fov(width, 60.0)
    horizon = 0.42 * height
    band_top, band_bottom = 0.18 * height, 0.78 * height
    cw, ch = math.ceil(width / 4), math.ceil(height / 4)
    pts = np.stack([rng.uniform(0, width, n_cells), rng.uniform(band_top, band_bottom, n_cells)], axis=1)
    gu, gv = np.meshgrid((np.arange(cw) + 0.5) * 4, (np.arange(ch) + 0.5) * 4)
    _, cell_c = cKDTree(pts).query(np.stack([gu.ravel(), gv.ravel()], axis=1))
    cell = np.repeat(np.repeat(cell_c.reshape(ch, cw), 4, axis=0), 4, axis=1)[:height, :width]
    cell_class = 2 + np.arange(n_cells) % (len(NAMES_24) - 2)
    cell_dist = rng.uniform(5.0, 60.0, n_cells)
    v = np.arange(height, dtype=np.float64)[:, None] + 0.5
    in_band = (v >= band_top) & (v < band_bottom)
    labels = np.where(v < band_top, 0, 1) * np.ones((1, width), dtype=np.int32)
    labels = np.where(in_band, cell_class[cell], labels).astype(np.int32)
    road_depth = np.where(v > horizon, CAMERA_HEIGHT_M * f / np.maximum(v - horizon, 1e-6), np.nan)
    depth = np.where(labels == 1, road_depth, cell_dist[cell]).astype(np.float32)
    depth[labels == 0] = np.nan
    palette = rng.uniform(40, 220, size=(len(NAMES_24), 3))
    shade = 0.75 + 0.25 * np.sin(np.arange(width) / 150.0)[None, :] * np.cos(v / 170.0)
    rgb = palette[labels] * shade[..., None] + rng.normal(0, 3.0, size=(height, width, 3)).astype(np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels, depth, f


def write_big_inputs(folder: Path, rgb: np.ndarray, labels: np.ndarray, depth: np.ndarray, png: bool
                     ) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"image": folder / ("photo.png" if png else "photo.jpg"), "labels": folder / "labels.png",
             "names": folder / "names.txt", "depth": folder / "depth.npy"}
    if png:
        Image.fromarray(rgb).save(paths["image"], compress_level=1)
    else:
        Image.fromarray(rgb).save(paths["image"], quality=92)
    Image.fromarray(labels.astype(np.uint8)).save(paths["labels"])
    paths["names"].write_text("\n".join(NAMES_24) + "\n")
    np.save(paths["depth"], depth)
    return paths


def time_prototype(rgb: np.ndarray, labels: np.ndarray, depth: np.ndarray, band_frac: float, repeats: int,
                   full: bool, fn: Any = prototype_stats_numpy) -> dict[str, Any]:
    """Best time of the loop on a band of rows (soft masks made outside the timing), scaled linearly."""
    h = labels.shape[0]
    rows = h if full else max(1, round(h * band_frac))
    r0 = 0 if full else (h - rows) // 2
    sl = slice(r0, r0 + rows)
    probs = soft_masks(labels, len(NAMES_24), sl)
    times = []
    for _ in range(1 if full else repeats):
        t0 = time.perf_counter()
        fn(rgb[sl], probs, depth[sl], row0=r0)
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"rows": rows, "row0": r0, "band_pixels": rows * labels.shape[1], "band_seconds": times,
            "seconds_full_image": best * h / rows, "extrapolated": not full,
            "ns_per_pixel_class": best / (rows * labels.shape[1] * len(NAMES_24)) * 1e9}


def _source(width: int, height: int) -> dict[str, Any]:
    return {"image": "bench_12mp", "width": width, "height": height, "sha256": "0" * 64}


def time_engine(rgb: np.ndarray, labels: np.ndarray, depth: np.ndarray, f: float, repeats: int
                ) -> dict[str, Any]:
    from inference_server.analysis.engine import SceneOptions, build_scene

    h, w = labels.shape
    intr = Intrinsics(f, w / 2.0, h / 2.0, w, h, "user")
    times, scene = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        scene = build_scene(rgb, labels, list(NAMES_24), depth, intr, SceneOptions(), source=_source(w, h),
                            full_size=(w, h))
        times.append(time.perf_counter() - t0)
    assert scene is not None
    return {"seconds": times, "best": min(times), "objects": len(scene["objects"])}


def cli_argv(paths: dict[str, Path], f: float, out: Path) -> list[str]:
    return ["scene", str(paths["image"]), "--labels", str(paths["labels"]), "--label-names", str(paths["names"]),
            "--depth", str(paths["depth"]), "--focal-px", repr(f), "-q", "-o", str(out)]


def time_cli(paths: dict[str, Path], f: float, out: Path, repeats: int) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("img2maya")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "inference_server.cli"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run([*cmd, *cli_argv(paths, f, out)], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"img2maya failed ({r.returncode}): {r.stderr.strip()}")
    scene = json.loads(out.read_text())
    return {"seconds": times, "best": min(times), "objects": len(scene["objects"]),
            "analysis_width": scene["source"].get("analysis_width"),
            "analysis_height": scene["source"].get("analysis_height"), "command": " ".join([*cmd, *cli_argv(paths, f, out)])}


def profile(fn: Any, top: int) -> str:
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf)
    st.sort_stats("cumulative").print_stats(top)
    st.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--band-frac", type=float, default=0.01, help="rows timed for the prototype (default 1%%)")
    ap.add_argument("--full", action="store_true", help="run the prototype over the whole image (very slow)")
    ap.add_argument("--proto-seconds", type=float, metavar="S",
                    help="skip timing the prototype: take S seconds (its numpy-indexed full-image time, e.g. "
                         "from an earlier run) as the reference for the ratios")
    ap.add_argument("--png", action="store_true", help="write the photo as PNG instead of JPEG")
    ap.add_argument("--profile", action="store_true", help="cProfile build_scene and the CLI's main()")
    ap.add_argument("--top", type=int, default=25, help="entries per cProfile listing")
    ap.add_argument("--keep", metavar="DIR", help="keep the generated inputs in DIR")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    rgb, labels, depth, f = make_big_inputs(a.width, a.height)
    mp = a.width * a.height / 1e6
    print(f"inputs: {a.width}x{a.height} ({mp:.1f} MP), {len(NAMES_24)} classes, "
          f"{len(np.unique(labels))} present, generated in {time.perf_counter() - t0:.1f} s")
    res: dict[str, Any] = {"width": a.width, "height": a.height, "classes": len(NAMES_24), "code": code_version()}
    print(f"code: {res['code']}")
    with tempfile.TemporaryDirectory(prefix="img2maya_speed_") as tmp:
        folder = Path(a.keep) if a.keep else Path(tmp)
        paths = write_big_inputs(folder, rgb, labels, depth, a.png)
        sizes = {k: p.stat().st_size / 1e6 for k, p in paths.items()}
        print("files: " + ", ".join(f"{p.name} {sizes[k]:.1f} MB" for k, p in paths.items()))

        protos = {}
        variants = (("numpy-indexed (as written)", prototype_stats_numpy),
                    ("row lists (favourable)", prototype_stats))
        if a.proto_seconds:
            protos["numpy-indexed (given)"] = {"seconds_full_image": a.proto_seconds, "given": True}
            print(f"prototype, numpy-indexed: {a.proto_seconds:.0f} s as given by --proto-seconds (not measured)")
            variants = ()
        for variant, fn in variants:
            proto = time_prototype(rgb, labels, depth, a.band_frac, a.repeats, a.full, fn)
            protos[variant] = proto
            how = ("measured on the whole image" if a.full else
                   f"extrapolated linearly from {proto['rows']} rows = {proto['band_pixels']} px, best of "
                   f"{len(proto['band_seconds'])}: {', '.join(f'{s:.2f}' for s in proto['band_seconds'])} s; "
                   "the loop is strictly linear in pixel count")
            print(f"prototype, {variant}: {proto['seconds_full_image']:.0f} s = "
                  f"{proto['seconds_full_image'] / 60:.1f} min for {mp:.1f} MP x 24 soft masks [{how}]; "
                  f"{proto['ns_per_pixel_class']:.0f} ns per pixel per class")
        res["prototype"] = protos

        eng = time_engine(rgb, labels, depth, f, a.repeats)
        res["engine_inprocess"] = eng
        print(f"engine build_scene in-process at {a.width}x{a.height}: best {eng['best']:.2f} s "
              f"({', '.join(f'{s:.2f}' for s in eng['seconds'])}), {eng['objects']} objects")

        cli = time_cli(paths, f, folder / "scene.json", a.repeats)
        res["cli_process"] = cli
        print(f"img2maya scene process wall time: best {cli['best']:.2f} s "
              f"({', '.join(f'{s:.2f}' for s in cli['seconds'])}), analysed at "
              f"{cli['analysis_width']}x{cli['analysis_height']}, {cli['objects']} objects")
        print(f"  command: {cli['command']}")

        for variant, proto in protos.items():
            r_eng = proto["seconds_full_image"] / eng["best"]
            r_cli = proto["seconds_full_image"] / cli["best"]
            res.setdefault("ratios", {})[variant] = {"engine_inprocess": r_eng, "cli_process": r_cli}
            print(f"speed-up vs prototype {variant}: engine in-process {r_eng:,.0f}x; whole img2maya process "
                  f"{r_cli:,.0f}x (target >= {TARGET_RATIO:,.0f}x: {'met' if r_cli >= TARGET_RATIO else 'NOT met'})")

        if a.profile:
            from inference_server import cli as cli_mod
            from inference_server.analysis.engine import SceneOptions, build_scene

            intr = Intrinsics(f, a.width / 2.0, a.height / 2.0, a.width, a.height, "user")
            print(f"\n==== cProfile: build_scene at {a.width}x{a.height} ====")
            print(profile(lambda: build_scene(rgb, labels, list(NAMES_24), depth, intr, SceneOptions(),
                                              source=_source(a.width, a.height), full_size=(a.width, a.height)),
                          a.top))
            print("\n==== cProfile: img2maya scene (cli.main in-process, after imports) ====")
            print(profile(lambda: cli_mod.main(cli_argv(paths, f, folder / "scene_prof.json")), a.top))
    if a.json:
        Path(a.json + ".tmp").write_text(json.dumps(res, indent=1))
        os.replace(a.json + ".tmp", a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
