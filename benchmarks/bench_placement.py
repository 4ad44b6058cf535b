"""Object placement and sizes from NETWORK depth on real photos (no depth ground truth except KITTI).

For each sample photo the default networks run once (outputs cached in memory, or on disk with
``--cache DIR``), then the scene engine builds the scene exactly as ``img2maya scene PHOTO`` does
(default 60 deg FOV where the photo has no EXIF focal; KITTI: focal from the calib file's P2 and a
1.65 m camera height). Prints:

- per photo, over people and vehicles (person, car, van, truck, bus) whose ``bbox_px`` is not cut by the
  frame: the median of ``ratio`` = the camera z-depth of the object's box centre / the z-depth its prior
  height implies (focal x prior height / pixel height); 1 = consistent. ``ratio(depth)`` is the same with the
  object's median network depth (``depth_m.median``, what the box fit used to start from);
- the median size [w, h, d] of the cars and of the people against their priors (1.8 x 1.5 x 4.5,
  0.5 x 1.7 x 0.4);
- KITTI: engine objects matched to the ground-truth 3D boxes of label_2 (Car/Van/Truck to vehicles,
  Pedestrian/Person_sitting/Cyclist to people) by 2D IoU >= 0.3 of bbox_px and the label's 2D box: the error of
  the box centre's z-depth, the 3D centre error, and the size errors (height; footprint long/short side).

    .venv/bin/python benchmarks/bench_placement.py [--shared ../shared] [--cache /tmp/place_cache] [--json out.json]
    .venv/bin/python benchmarks/bench_placement.py --no-placement   # the engine without analysis/placement.py
    .venv/bin/python benchmarks/bench_placement.py --instances none # without the instance model
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference_server import pipeline  # noqa: E402
from inference_server.analysis.camera import euler_xyz_to_matrix  # noqa: E402
from inference_server.analysis.engine import SceneOptions  # noqa: E402
from inference_server.analysis.shapes import load_table  # noqa: E402
from inference_server.imageio import load_photo  # noqa: E402
from inference_server.inference.types import DepthMap, Segmentation  # noqa: E402

PHOTOS = [
    ("london", "street_london_bus.jpg", None),
    ("nyc", "street_nyc.jpg", None),
    ("aachen_0", "cityscapes_aachen_000000_000019_leftImg8bit.jpg", None),
    ("aachen_1", "cityscapes_aachen_000001_000019_leftImg8bit.jpg", None),
    ("aachen_3", "cityscapes_aachen_000003_000019_leftImg8bit.jpg", None),
    ("kitti_0", "kitti_000000_rgb.png", "kitti_000000"),
    ("kitti_1", "kitti_000001_rgb.png", "kitti_000001"),
]
CHECK_LABELS = ("person", "car", "van", "truck", "bus")
KITTI_CLASSES = {"Car": "vehicle", "Van": "vehicle", "Truck": "vehicle", "Pedestrian": "person",
                 "Person_sitting": "person", "Cyclist": "person"}
KITTI_CAMERA_HEIGHT_M = 1.65


def kitti_focal(calib: Path) -> float:
    for line in calib.read_text().splitlines():
        if line.startswith("P2:"):
            return float(line.split()[1])
    raise ValueError(f"no P2 in {calib}")


def kitti_labels(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        f = line.split()
        if not f or f[0] not in KITTI_CLASSES:
            continue
        h, w, ln = (float(x) for x in f[8:11])
        x, y, z = (float(x) for x in f[11:14])
        out.append({"type": f[0], "role": KITTI_CLASSES[f[0]], "bbox": [float(b) for b in f[4:8]],
                    "size": (ln, h, w), "center_cam": np.array([x, -(y - h / 2.0), -z])})  # engine camera frame
    return out


def iou2d(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def to_cam(scene: dict[str, Any], p: list[float]) -> np.ndarray:
    cam = scene["camera"]
    R = euler_xyz_to_matrix(*cam["rotate"])
    return (np.asarray(p, dtype=np.float64) - np.asarray(cam["translate"])) @ R


def networks(path: Path, focal_px: float | None, cache: Path | None) -> tuple[Segmentation, DepthMap]:
    photo = load_photo(path)
    f = cache / (path.stem + ".npz") if cache else None
    if f is not None and f.exists():
        z = np.load(f, allow_pickle=False)
        return (Segmentation(labels=z["labels"], names=[str(n) for n in z["names"]], model=str(z["seg_model"]),
                             confidence=z["confidence"] if z["confidence"].size else None),
                DepthMap(depth=z["depth"], kind=str(z["kind"]), model=str(z["depth_model"])))
    seg, depth = pipeline.infer(photo, "deeplabv3-mnv2-ade20k150", "pydnet-mobile-v1", focal_px=focal_px)
    assert seg is not None and depth is not None
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, labels=seg.labels, names=np.array(seg.names), seg_model=seg.model,
                 confidence=seg.confidence if seg.confidence is not None else np.zeros(0), depth=depth.depth,
                 kind=depth.kind, depth_model=depth.model)
    return seg, depth


def measure(scene: dict[str, Any], gt: list[dict[str, Any]] | None) -> dict[str, Any]:
    table = load_table()
    cam = scene["camera"]
    f, W, H = cam["focal_px"], cam["width"], cam["height"]
    ratios: list[float] = []
    ratios_depth: list[float] = []
    sizes: dict[str, list[list[float]]] = {"car": [], "person": []}
    for o in scene["objects"]:
        if o["label"] not in CHECK_LABELS:
            continue
        x0, y0, x1, y1 = o["bbox_px"]
        if o["label"] in sizes:
            sizes[o["label"]].append(o["size"])
        if x0 <= 0 or y0 <= 0 or x1 >= W or y1 >= H or y1 - y0 < 8:
            continue
        z_prior = f * table.lookup(o["label"]).size[1] / (y1 - y0)
        ratios.append(-to_cam(scene, o["translate"])[2] / z_prior)
        med = o.get("depth_m", {}).get("median")
        if med is not None:
            ratios_depth.append(med / z_prior)
    out: dict[str, Any] = {
        "n": len(ratios), "ratio": float(np.median(ratios)) if ratios else None,
        "ratio_depth": float(np.median(ratios_depth)) if ratios_depth else None,
        "sizes": {k: (np.median(np.asarray(v), axis=0).round(2).tolist() if v else None) for k, v in sizes.items()},
        "n_sizes": {k: len(v) for k, v in sizes.items()},
    }
    if gt is not None:
        matches = []
        cands = [o for o in scene["objects"] if o["role"] in ("vehicle", "person")]
        for g in gt:
            best = max(cands, key=lambda o: iou2d(o["bbox_px"], g["bbox"]) if o["role"] == g["role"] else 0.0,
                       default=None)
            if best is None or best["role"] != g["role"] or iou2d(best["bbox_px"], g["bbox"]) < 0.3:
                matches.append({"gt": g["type"], "matched": None, "gt_z": round(-float(g["center_cam"][2]), 2)})
                continue
            c = to_cam(scene, best["translate"])
            sx, sy, sz = best["size"]
            ln, h, w = g["size"]
            matches.append({
                "gt": g["type"], "matched": best["name"], "gt_z": round(-float(g["center_cam"][2]), 2),
                "z": round(-float(c[2]), 2), "dz": round(-float(c[2]) + float(g["center_cam"][2]), 2),
                "dctr": round(float(np.linalg.norm(c - g["center_cam"])), 2),
                "dh": round(sy - h, 2), "dlong": round(max(sx, sz) - max(ln, w), 2),
                "dshort": round(min(sx, sz) - min(ln, w), 2),
                "size": [round(s, 2) for s in best["size"]], "gt_size": [w, h, ln]})
        out["kitti"] = matches
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--cache", type=Path, default=None, help="folder caching the network outputs (npz)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-placement", action="store_true", help="disable analysis/placement.py (the 'before')")
    ap.add_argument("--instances", default=None, metavar="none|MODEL",
                    help="instance model fused with the labels (default: the registry's when installed)")
    args = ap.parse_args()
    if args.no_placement:
        try:
            from inference_server.analysis import placement
            placement.ENABLED = False
        except ImportError:
            pass
    samples = args.shared / "samples"
    results: dict[str, Any] = {}
    for key, name, kitti in PHOTOS:
        path = samples / name
        if not path.exists():
            print(f"{key}: {path} missing, skipped")
            continue
        focal = kitti_focal(samples / f"{kitti}_calib.txt") if kitti else None
        seg, depth = networks(path, focal, args.cache)
        options = SceneOptions(camera_height_m=KITTI_CAMERA_HEIGHT_M if kitti else 1.6,
                               camera_height_from_objects=not kitti)
        photo = load_photo(path)
        instances, _ = pipeline.detect_instances(photo, args.instances, str(args.shared / "models"))
        scene = pipeline.analyse(photo, seg, depth, options, focal_px=focal, instances=instances)
        gt = kitti_labels(samples / f"{kitti}_label_2.txt") if kitti else None
        results[key] = measure(scene, gt)
    print("| photo | n | median ratio (box centre) | median ratio (network median depth) "
          "| car size (median w,h,d) | person size |")
    print("|---|---|---|---|---|---|")
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    for key, r in results.items():
        print(f"| {key} | {r['n']} | {fmt(r['ratio'])} | {fmt(r['ratio_depth'])} | "
              f"{r['sizes']['car']} ({r['n_sizes']['car']}) | {r['sizes']['person']} ({r['n_sizes']['person']}) |")
    print()
    print("KITTI matches (z: camera z-depth of the box centre, m; sizes [w, h, l]):")
    for key, r in results.items():
        for m in r.get("kitti", []):
            print(f"  {key} {m}")
    kit = [m for r in results.values() for m in r.get("kitti", []) if m.get("matched")]
    if kit:
        print(f"KITTI matched {len(kit)}: mean |dz| {np.mean([abs(m['dz']) for m in kit]):.2f} m, mean centre error "
              f"{np.mean([m['dctr'] for m in kit]):.2f} m, mean |dh| {np.mean([abs(m['dh']) for m in kit]):.2f}, "
              f"|dlong| {np.mean([abs(m['dlong']) for m in kit]):.2f}, |dshort| {np.mean([abs(m['dshort']) for m in kit]):.2f} m")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "inference_server"], capture_output=True,
                           text=True).stdout.strip()
    print(f"commit {commit}{' (inference_server/ has uncommitted edits)' if dirty else ''}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
