"""Camera estimation from the photo's pixels against known cameras: FOV, pitch and roll errors.

Photos: the 57 of ``../shared/samples/camera`` (known focal, pitch and roll; CAMERA.md; the YUD JPEGs
carry EXIF, which is IGNORED here: the estimate must come from the pixels) plus the photos of
``../shared/samples`` with known intrinsics (SOURCES.md: KITTI P2, NYU, Cityscapes; FOV only).

For every photo the default networks run once (outputs cached with ``--cache DIR``) and the scene is
built exactly as ``img2maya scene PHOTO --ignore-exif`` builds it, twice:

* ``before``: ``--no-vanishing-points`` (the 60 degree prior, pitch and roll from the ground fit);
* ``after``: the camera from the photo's vanishing points (calib/, docs/CAMERA.md).

The camera's world up in its own frame comes from ``camera.rotate`` and is compared with the ground
truth's ``up_cam`` (CAMERA.md's signs: OpenCV frame, pitch = asin(up.z), roll = atan2(-up.x, -up.y)).
Prints one row per photo and the medians of |FOV error|, |pitch error|, |roll error|, the share within
5 degrees of FOV and the estimator's seconds per photo; ``--split`` also reports the even-indexed
(tuning) and odd-indexed (held-out) halves of the 57 separately. ``--time`` times the estimator alone
on a 2 MP photo (``street_london_bus.jpg``). ``--known-fov`` gives each of the 57 its true FOV, as
``--fov-deg`` (the panel's typed FOV) does: only the orientation is estimated, the FOV error is 0.

    .venv/bin/python benchmarks/bench_camera.py [--shared ../shared] [--cache /tmp/cam_cache] [--json out.json]
    .venv/bin/python benchmarks/bench_camera.py --known-fov --split [--cache /tmp/cam_cache]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
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

# photos of ../shared/samples with known intrinsics (SOURCES.md): file, focal px at full width
FOV_ONLY = [
    ("kitti_000000_rgb.png", 707.0493),
    ("kitti_000001_rgb.png", 721.5377),
    ("indoor_classroom_nyu.jpg", 518.8579),
    ("nyu_raw_basement_rgb.png", 518.8579),
    ("cityscapes_aachen_000000_000019_leftImg8bit.jpg", 2262.52),
    ("cityscapes_aachen_000001_000019_leftImg8bit.jpg", 2262.52),
    ("cityscapes_aachen_000002_000019_leftImg8bit.jpg", 2262.52),
    ("cityscapes_aachen_000003_000019_leftImg8bit.jpg", 2262.52),
]
WITHIN_DEG = 5.0


def networks(path: Path, cache: Path | None) -> tuple[Segmentation, DepthMap]:
    f = cache / (path.stem + ".npz") if cache else None
    if f is not None and f.exists():
        z = np.load(f, allow_pickle=False)
        return (Segmentation(labels=z["labels"], names=[str(n) for n in z["names"]], model=str(z["seg_model"]),
                             confidence=z["confidence"] if z["confidence"].size else None),
                DepthMap(depth=z["depth"], kind=str(z["kind"]), model=str(z["depth_model"])))
    photo = load_photo(path)
    seg, depth = pipeline.infer(photo, "deeplabv3-mnv2-ade20k150", "pydnet-mobile-v1")
    assert seg is not None and depth is not None
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, labels=seg.labels, names=np.array(seg.names), seg_model=seg.model,
                 confidence=seg.confidence if seg.confidence is not None else np.zeros(0), depth=depth.depth,
                 kind=depth.kind, depth_model=depth.model)
    return seg, depth


def up_opencv(scene: dict[str, Any]) -> np.ndarray:
    """World up in the camera's OpenCV frame (x right, y down, z forward)."""
    R = euler_xyz_to_matrix(*scene["camera"]["rotate"])  # camera -> world, engine frame (y up, z back)
    up = R.T @ np.array([0.0, 1.0, 0.0])
    return np.array([up[0], -up[1], -up[2]])


def angles(up: np.ndarray) -> tuple[float, float]:
    """(pitch, roll) in CAMERA.md's convention."""
    return math.degrees(math.asin(max(-1.0, min(1.0, float(up[2]))))), math.degrees(math.atan2(-up[0], -up[1]))


def one(path: Path, cache: Path | None, estimate: bool, hfov: float | None = None) -> dict[str, Any]:
    """The scene's camera; `hfov`: typed as the user would (`--fov-deg`), else from the pixels."""
    photo = load_photo(path)
    seg, depth = networks(path, cache)
    opts = SceneOptions(ignore_exif=True, estimate_camera=estimate)
    scene = pipeline.analyse(photo, seg, depth, opts, fov_deg=hfov)
    cam = scene["camera"]
    pitch, roll = angles(up_opencv(scene))
    return {"hfov": cam["fov_horizontal_deg"], "pitch": pitch, "roll": roll, "source": cam["focal_source"],
            "orientation": cam.get("orientation_source"),
            "seconds": cam.get("calibration", {}).get("seconds"), "up": up_opencv(scene).tolist()}


def rows(shared: Path, cache: Path | None, known: bool = False) -> list[dict[str, Any]]:
    """One row per photo; `known`: the ground-truth FOV given (only the orientation estimated)."""
    out = []
    cam_dir = shared / "samples" / "camera"
    for gt_file in sorted((cam_dir / "gt").glob("*.json")):
        gt = json.loads(gt_file.read_text())
        path = cam_dir / gt["image"]
        row: dict[str, Any] = {"photo": gt_file.stem, "gt_hfov": gt["hfov_deg"], "gt_pitch": gt["pitch_deg"],
                               "gt_roll": gt["roll_deg"], "gt_up": gt["up_cam"], "set": "camera"}
        for tag, est in (("before", False), ("after", True)):
            row[tag] = one(path, cache, est, gt["hfov_deg"] if known else None)
        out.append(row)
    if known:  # these have no pitch or roll to measure
        return out
    for name, fx in FOV_ONLY:
        path = shared / "samples" / name
        if not path.exists():
            continue
        w = load_photo(path).full_width
        row = {"photo": path.stem, "gt_hfov": math.degrees(2 * math.atan(w / (2 * fx))), "gt_pitch": None,
               "gt_roll": None, "gt_up": None, "set": "fov-only"}
        for tag, est in (("before", False), ("after", True)):
            row[tag] = one(path, cache, est)
        out.append(row)
    return out


def errors(r: dict[str, Any], tag: str) -> tuple[float, float | None, float | None, float | None]:
    e = r[tag]
    dfov = abs(e["hfov"] - r["gt_hfov"])
    if r["gt_up"] is None:
        return dfov, None, None, None
    dpitch = abs(e["pitch"] - r["gt_pitch"])
    droll = abs((e["roll"] - r["gt_roll"] + 180.0) % 360.0 - 180.0)
    dup = math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(e["up"], r["gt_up"]))))))
    return dfov, dpitch, droll, dup


def summary(rs: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    e = [errors(r, tag) for r in rs]
    fov = np.array([x[0] for x in e])
    pr = [x for x in e if x[1] is not None]
    secs = [r[tag]["seconds"] for r in rs if r[tag]["seconds"] is not None]
    return {"n": len(rs), "fov_median": float(np.median(fov)), "within5": float((fov <= WITHIN_DEG).mean()),
            "pitch_median": float(np.median([x[1] for x in pr])) if pr else None,
            "roll_median": float(np.median([x[2] for x in pr])) if pr else None,
            "up_median": float(np.median([x[3] for x in pr])) if pr else None,
            "seconds_median": float(np.median(secs)) if secs else None}


def fmt(s: dict[str, Any]) -> str:
    def f(x: float | None, nd: int = 2) -> str:
        return "-" if x is None else f"{x:.{nd}f}"
    return (f"n={s['n']:3d}  |FOV err| {f(s['fov_median'])}  within {WITHIN_DEG:.0f} deg {100 * s['within5']:.0f} %  "
            f"|pitch err| {f(s['pitch_median'])}  |roll err| {f(s['roll_median'])}  up angle {f(s['up_median'])}  "
            f"s/photo {f(s['seconds_median'], 3)}")


def time_2mp(shared: Path, cache: Path | None, repeat: int) -> dict[str, float]:
    from inference_server.calib import estimate_camera

    path = shared / "samples" / "street_london_bus.jpg"
    photo = load_photo(path)
    seg, _ = networks(path, cache)
    table = load_table()
    roles = [table.lookup(n).role for n in seg.names]
    f = pipeline.intrinsics(photo).focal_px
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        estimate_camera(photo.rgb, f, labels=seg.labels, roles=roles)
        times.append(time.perf_counter() - t)
    return {"pixels": int(photo.rgb.shape[0] * photo.rgb.shape[1]), "best": min(times),
            "median": float(np.median(times))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--cache", type=Path, default=None, help="folder caching the network outputs (npz)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--split", action="store_true", help="also the even (tuning) / odd (held-out) halves")
    ap.add_argument("--time", type=int, default=5, metavar="N", help="time the estimator N times on 2 MP (0: skip)")
    ap.add_argument("--known-fov", action="store_true",
                    help="give each photo its true FOV (as --fov-deg does): pitch and roll with a known focal")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a constant of calib/manhattan.py or calib/estimate.py (choosing a setting on the "
                         "tuning half: --split)")
    args = ap.parse_args()
    for item in args.set:
        from inference_server.calib import estimate as est_mod
        from inference_server.calib import manhattan as man_mod

        name, _, value = item.partition("=")
        mod = man_mod if hasattr(man_mod, name) else est_mod
        if not hasattr(mod, name):
            ap.error(f"--set: no constant {name} in calib/manhattan.py or calib/estimate.py")
        setattr(mod, name, type(getattr(mod, name))(float(value)))
    if not (args.shared / "samples" / "camera" / "gt").is_dir():
        print(f"bench_camera: {args.shared}/samples/camera not found", file=sys.stderr)
        return 2
    rs = rows(args.shared, args.cache, args.known_fov)
    print(f"{'photo':34s} {'FOV gt':>7s} {'before':>7s} {'after':>7s} {'src':>16s}  {'pitch gt':>8s} {'before':>7s} "
          f"{'after':>7s}  {'roll gt':>7s} {'before':>7s} {'after':>7s}  {'s':>6s}")
    for r in rs:
        b, a = r["before"], r["after"]

        def g(x: float | None) -> str:
            return "   -   " if x is None else f"{x:7.2f}"
        print(f"{r['photo']:34s} {r['gt_hfov']:7.2f} {b['hfov']:7.2f} {a['hfov']:7.2f} {a['source']:>16s}  "
              f"{g(r['gt_pitch']):>8s} {b['pitch']:7.2f} {a['pitch']:7.2f}  {g(r['gt_roll'])} {b['roll']:7.2f} "
              f"{a['roll']:7.2f}  {a['seconds'] or 0:6.3f}")
    out: dict[str, Any] = {"rows": rs}
    for label, subset in (("samples/camera (57)", [r for r in rs if r["set"] == "camera"]),
                          ("intrinsics of ../shared/samples (FOV only)", [r for r in rs if r["set"] == "fov-only"]),
                          ("all", rs)):
        if not subset:
            continue
        print(f"\n{label}")
        for tag in ("before", "after"):
            s = summary(subset, tag)
            out.setdefault("summary", {}).setdefault(label, {})[tag] = s
            print(f"  {tag:6s} {fmt(s)}")
    if args.split:
        cam = [r for r in rs if r["set"] == "camera"]
        for label, subset in (("tuning half (even)", cam[0::2]), ("held-out half (odd)", cam[1::2])):
            print(f"\n{label}")
            for tag in ("before", "after"):
                print(f"  {tag:6s} {fmt(summary(subset, tag))}")
    if args.time:
        t = time_2mp(args.shared, args.cache, args.time)
        out["time_2mp"] = t
        print(f"\nestimator alone on a {t['pixels'] / 1e6:.1f} MP photo: best {t['best']:.3f} s, median {t['median']:.3f} s "
              f"({args.time} runs)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
