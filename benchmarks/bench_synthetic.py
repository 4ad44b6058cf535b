"""Scene-engine accuracy on synthetic scenes with exact ground truth (benchmarks/synthetic_gt.py).

For each seed: render a street scene, write its inputs, run the real command line

    img2maya scene image.png --labels labels.png --label-names names.txt --depth depth.npy
                   --focal-px F -o scene.json

and compare the scene's objects with the ground-truth boxes:

- matching: one-to-one, same label, greedy by the 2D IoU of bbox_px (>= 0.1); a ground-truth box
  the engine split in two is matched to its larger piece, the other piece counts as an extra;
- IoU3D: oriented 3D IoU (benchmarks/iou3d.py) for every GT object with >= --min-px visible pixels;
  unmatched GT objects score 0 in the "all" mean;
- baseline: the prototype-style box of the same GT pixels: back-projected with the true depth and the
  TRUE camera pose (a generous baseline), axis-aligned 5..95 percentile box in the world frame;
- colour: max |color_linear - GT| over the channels (GT = mean of the object's rendered pixels in
  linear light) and the same in sRGB; "srgb-avg" is the error of averaging in sRGB (what a naive
  mean does) for reference;
- camera: height, pitch, roll errors; and the engine's world is first aligned to the ground truth by a
  rotation about +Y and a shift in x-z (world yaw and origin on the ground are a free gauge).

    .venv/bin/python benchmarks/bench_synthetic.py [--seeds 10] [--start 0] [--objects 6]
        [--width 960 --height 640] [--min-px 400] [--depth-noise S] [--depth-smooth-noise S]
        [--depth-blur PX] [--depth-relative pow:K|shift:C|scale:S] [--keep DIR] [--json FILE|-]

Prints one row per ground-truth object, a per-class table, and the means against the targets
(mean IoU3D >= 0.6, baseline ~0.3; colour within 0.03).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from iou3d import box_from_aabb, iou3d  # noqa: E402
from synthetic_gt import SyntheticScene, make_scene, write_inputs  # noqa: E402

from inference_server.analysis.camera import backproject, euler_xyz_to_matrix, matrix_to_euler_xyz  # noqa: E402
from inference_server.analysis.color import srgb_to_linear  # noqa: E402

IOU_TARGET, IOU_BASELINE_EXPECTED, COLOUR_TARGET = 0.6, 0.3, 0.03
PLANE_ROLES = {"ground", "sky", "water"}


def img2maya_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m inference_server.cli`."""
    exe = Path(sys.executable).with_name("img2maya")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "inference_server.cli"]


def run_cli(paths: dict[str, Path], focal_px: float, out: Path,
            depth_kind: str = "metric") -> tuple[dict[str, Any], float]:
    cmd = [*img2maya_command(), "scene", str(paths["image"]), "--labels", str(paths["labels"]),
           "--label-names", str(paths["names"]), "--depth", str(paths["depth"]),
           "--focal-px", repr(focal_px), "-q", "-o", str(out)]
    if depth_kind != "metric":
        cmd[-3:-3] = ["--depth-kind", depth_kind]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"img2maya failed ({r.returncode}): {r.stderr.strip()}\n{' '.join(cmd)}")
    return json.loads(out.read_text()), dt


def _heading(rotate: list[float]) -> float:
    """Heading (radians about +Y) of a camera's view direction (-Z) in the x-z plane."""
    f = euler_xyz_to_matrix(*rotate) @ np.array([0.0, 0.0, -1.0])
    return math.atan2(-f[0], -f[2])


def gauge(pred_cam: dict[str, Any], gt_cam: dict[str, Any]) -> tuple[float, np.ndarray]:
    """Yaw (degrees) and x-z shift mapping the engine's world onto the ground truth's.

    p_gt = Ry(yaw) @ (p_pred - [tx, 0, tz]) + [gx, 0, gz], from the two cameras' headings and positions.
    Returns (yaw_deg, pred camera x-z position) and is applied by `to_gt`.
    """
    yaw = math.degrees(_heading(gt_cam["rotate"]) - _heading(pred_cam["rotate"]))
    return yaw, np.array([pred_cam["translate"][0], 0.0, pred_cam["translate"][2]])


def to_gt(obj: dict[str, Any], yaw: float, shift: np.ndarray, gt_origin: np.ndarray) -> dict[str, Any]:
    """The engine's box moved into the ground truth's world (yaw added to its own yaw)."""
    r = euler_xyz_to_matrix(0.0, yaw, 0.0)
    t = r @ (np.asarray(obj["translate"], dtype=float) - shift) + gt_origin
    rx, ry, rz = obj["rotate"]
    return {"translate": list(t), "rotate": [rx, ry + yaw, rz], "size": obj["size"]}


def bbox_iou(a: list[int], b: list[int]) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(gt: list[dict[str, Any]], pred: list[dict[str, Any]], min_iou: float = 0.1) -> dict[int, int]:
    """Greedy one-to-one matching (same label, best 2D bbox IoU first): GT index -> pred index."""
    pairs = sorted(((bbox_iou(g["bbox_px"], p["bbox_px"]), i, j) for i, g in enumerate(gt)
                    for j, p in enumerate(pred) if p["label"] == g["label"]), reverse=True)
    out: dict[int, int] = {}
    used: set[int] = set()
    for s, i, j in pairs:
        if s < min_iou or i in out or j in used:
            continue
        out[i] = j
        used.add(j)
    return out


def baseline_box(scene: SyntheticScene, k: int) -> dict[str, Any]:
    """Prototype-style box: 5..95 percentile axis-aligned box of the object's back-projected pixels."""
    m = scene.instances == k
    v, u = np.nonzero(m)
    cam = backproject(u, v, scene.depth[m], scene.intrinsics)
    world = cam @ euler_xyz_to_matrix(*scene.camera["rotate"]).T + np.asarray(scene.camera["translate"])
    lo, hi = np.percentile(world, 5, axis=0), np.percentile(world, 95, axis=0)
    return box_from_aabb(lo, hi)


def _footprint_dims(size: list[float], yaw: float) -> tuple[float, float, float]:
    """(long, short) footprint extents and the long axis heading mod 180 (degrees)."""
    sx, sz = abs(size[0]), abs(size[2])
    if sx >= sz:
        return sx, sz, yaw % 180.0
    return sz, sx, (yaw + 90.0) % 180.0


def _angle_diff(a: float, b: float, period: float) -> float:
    d = (a - b) % period
    return min(d, period - d)


def score_scene(scene: SyntheticScene, pred: dict[str, Any], min_px: int) -> dict[str, Any]:
    gt_cam = scene.camera
    pc = pred["camera"]
    yaw, shift = gauge(pc, gt_cam)
    origin = np.array([gt_cam["translate"][0], 0.0, gt_cam["translate"][2]])
    preds = [o for o in pred["objects"] if o.get("role") not in PLANE_ROLES and o.get("shape") != "plane"]
    gts = [o.to_dict() for o in scene.objects]
    m = match(gts, preds)
    rows = []
    for i, g in enumerate(gts):
        if g["pixels"] < min_px:
            continue
        b = baseline_box(scene, i)
        srgb_avg = scene.rgb[scene.instances == i].mean(axis=0) / 255.0
        row: dict[str, Any] = {
            "seed": scene.seed, "label": g["label"], "pixels": g["pixels"], "visible": g["visible_fraction"],
            "gt_size": g["size"],
            "gt_yaw": g["rotate"][1], "baseline_iou": iou3d(g, b),
            "srgb_avg_err": float(np.abs(srgb_avg - np.asarray(g["color_srgb"])).max()),
            "srgb_avg_err_linear": float(np.abs(srgb_to_linear(srgb_avg) - np.asarray(g["color_linear"])).max()),
            "matched": i in m,
        }
        if i in m:
            p = pred["objects"][pred["objects"].index(preds[m[i]])]
            pw = to_gt(p, yaw, shift, origin)
            gl, gs, gh = _footprint_dims(g["size"], g["rotate"][1])
            pl, ps, ph = _footprint_dims(pw["size"], pw["rotate"][1])
            row.update({
                "name": p["name"], "shape": p.get("shape"), "iou": iou3d(g, pw),
                "pred_size": [float(x) for x in pw["size"]], "pred_yaw": float(pw["rotate"][1]),
                "err_long": pl - gl, "err_short": ps - gs, "err_height": float(pw["size"][1] - g["size"][1]),
                "err_yaw": _angle_diff(ph, gh, 180.0),
                "err_centre": float(np.linalg.norm(np.asarray(pw["translate"]) - np.asarray(g["translate"]))),
                "err_centre_y": float(pw["translate"][1] - g["translate"][1]),
                "err_range": float(np.hypot(pw["translate"][0], pw["translate"][2])
                                   - np.hypot(g["translate"][0], g["translate"][2])),
                "color_err_linear": float(np.abs(np.asarray(p["color_linear"]) - g["color_linear"]).max()),
                "color_err_srgb": float(np.abs(np.asarray(p["color_srgb"]) - g["color_srgb"]).max()),
            })
        else:
            row.update({"iou": 0.0, "name": None})
        rows.append(row)
    matched_pred = set(m.values())
    extras = [p["name"] for j, p in enumerate(preds) if j not in matched_pred]
    # pitch and roll of the engine's camera once its world is turned into the ground truth's gauge
    rx, _, rz = matrix_to_euler_xyz(euler_xyz_to_matrix(0.0, yaw, 0.0) @ euler_xyz_to_matrix(*pc["rotate"]))
    cam = {
        "err_height": float(pc["translate"][1] - gt_cam["height_m"]),
        "err_pitch": float(rx - gt_cam["pitch_deg"]),
        "err_roll": float(rz - gt_cam["roll_deg"]),
        "gauge_yaw": yaw,
    }
    return {"seed": scene.seed, "rows": rows, "extras": extras, "camera": cam,
            "warnings": pred.get("warnings", [])}


def perturb_depth(scene: SyntheticScene, seed: int, iid: float, smooth: float, blur: int,
                  smooth_px: float = 80.0) -> np.ndarray:
    """The scene's z-depth with network-like errors (deterministic in seed); sky stays NaN.

    `blur` first (edges bleed between objects and into the sky, as a network's depth does), then a
    smooth multiplicative error field of std `smooth` (Gaussian-filtered white noise, sigma `smooth_px`
    pixels: object-sized, like a network's scale errors), then independent per-pixel noise of std `iid`.
    """
    from scipy import ndimage

    d = scene.depth.astype(np.float64)
    sky = np.isnan(d)
    rng = np.random.default_rng(seed + 1_000_003)
    if blur > 1:
        d = ndimage.uniform_filter(np.where(sky, 1000.0, d), size=blur, mode="nearest")
    if smooth > 0:
        field = ndimage.gaussian_filter(rng.standard_normal(d.shape), sigma=smooth_px, mode="reflect")
        d = d * (1.0 + smooth * field / (field.std() + 1e-12))
    if iid > 0:
        d = d * (1.0 + iid * rng.standard_normal(d.shape))
    d[sky] = np.nan
    return d.astype(np.float32)


def relative_depth(depth: np.ndarray, mode: str) -> np.ndarray:
    """A relative, range-compressed stand-in for a network's depth: "pow:K" gives d = z^K, "shift:C"
    d = z + C (C in metres), "scale:S" d = S z; "" or "none" leaves metric depth. NaN (sky) stays NaN."""
    if not mode or mode == "none":
        return depth
    kind, _, val = mode.partition(":")
    try:
        x = float(val)
    except ValueError:
        raise SystemExit(f"--depth-relative: bad value in {mode!r} (pow:K, shift:C or scale:S)") from None
    z = depth.astype(np.float64)
    if kind == "pow" and x > 0:
        d = z ** x
    elif kind == "shift" and x >= 0:
        d = z + x
    elif kind == "scale" and x > 0:
        d = z * x
    else:
        raise SystemExit(f"--depth-relative: unknown mode {mode!r} (pow:K, shift:C or scale:S)")
    return d.astype(np.float32)


def code_version() -> str:
    """The commit the engine was run from, flagged when inference_server/ has uncommitted edits
    (the checkout is shared: numbers taken on a dirty tree may not reproduce)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "inference_server"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in inference_server/' if dirty else ''}" if head else "unknown"


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for res in results for r in res["rows"]]
    matched = [r for r in rows if r["matched"]]
    per_class: dict[str, dict[str, Any]] = {}
    for lab in sorted({r["label"] for r in rows}):
        rs = [r for r in rows if r["label"] == lab]
        ms = [r for r in rs if r["matched"]]
        per_class[lab] = {
            "n": len(rs), "matched": len(ms), "iou": _mean([r["iou"] for r in rs]),
            "baseline_iou": _mean([r["baseline_iou"] for r in rs]),
            "err_long": _mean([r["err_long"] for r in ms]), "err_short": _mean([r["err_short"] for r in ms]),
            "err_height": _mean([r["err_height"] for r in ms]), "err_yaw": _mean([r["err_yaw"] for r in ms]),
            "err_centre": _mean([r["err_centre"] for r in ms]),
            "err_range_abs": _mean([abs(r["err_range"]) for r in ms]),
            "color_err_linear": _mean([r["color_err_linear"] for r in ms]),
        }
    cams = [res["camera"] for res in results]
    return {
        "objects": len(rows), "matched": len(matched),
        "extras": sum(len(res["extras"]) for res in results),
        "iou_mean_all": _mean([r["iou"] for r in rows]),
        "iou_mean_matched": _mean([r["iou"] for r in matched]),
        "baseline_iou_mean": _mean([r["baseline_iou"] for r in rows]),
        "iou_mean_unoccluded": _mean([r["iou"] for r in rows if r["visible"] >= 0.9]),
        "n_unoccluded": sum(r["visible"] >= 0.9 for r in rows),
        "iou_mean_occluded": _mean([r["iou"] for r in rows if r["visible"] < 0.9]),
        "color_err_linear_mean": _mean([r["color_err_linear"] for r in matched]),
        "color_err_linear_max": max((r["color_err_linear"] for r in matched), default=float("nan")),
        "color_err_srgb_mean": _mean([r["color_err_srgb"] for r in matched]),
        "color_err_srgb_max": max((r["color_err_srgb"] for r in matched), default=float("nan")),
        "srgb_averaging_err_linear_mean": _mean([r["srgb_avg_err_linear"] for r in rows]),
        "camera_height_abs_err_mean": _mean([abs(c["err_height"]) for c in cams]),
        "camera_pitch_abs_err_mean": _mean([abs(c["err_pitch"]) for c in cams]),
        "camera_roll_abs_err_mean": _mean([abs(c["err_roll"]) for c in cams]),
        "per_class": per_class,
    }


def print_report(results: list[dict[str, Any]], summary: dict[str, Any], times: list[float]) -> None:
    hdr = (f"{'seed':>4} {'label':9} {'px':>6} {'vis':>4} {'IoU3D':>6} {'base':>6} {'dLong':>6} {'dShort':>6} {'dH':>6} "
           f"{'dYaw':>5} {'dCtr':>5} {'colLin':>6} {'colS':>6}  name")
    print(hdr)
    print("-" * len(hdr))
    for res in results:
        for r in res["rows"]:
            if r["matched"]:
                print(f"{r['seed']:4d} {r['label']:9} {r['pixels']:6d} {r['visible']:4.2f} {r['iou']:6.3f} "
                      f"{r['baseline_iou']:6.3f} "
                      f"{r['err_long']:+6.2f} {r['err_short']:+6.2f} {r['err_height']:+6.2f} {r['err_yaw']:5.1f} "
                      f"{r['err_centre']:5.2f} {r['color_err_linear']:6.4f} {r['color_err_srgb']:6.4f}  {r['name']}")
            else:
                print(f"{r['seed']:4d} {r['label']:9} {r['pixels']:6d} {r['visible']:4.2f} {0.0:6.3f} "
                      f"{r['baseline_iou']:6.3f}  (no match)")
        c = res["camera"]
        extra = f"; extra objects: {', '.join(res['extras'])}" if res["extras"] else ""
        print(f"     camera: dHeight {c['err_height']:+.3f} m, dPitch {c['err_pitch']:+.2f} deg, "
              f"dRoll {c['err_roll']:+.2f} deg{extra}")
    print()
    print(f"{'class':9} {'n':>3} {'match':>5} {'IoU3D':>6} {'base':>6} {'dLong':>6} {'dShort':>6} {'dH':>6} "
          f"{'dYaw':>5} {'dCtr':>5} {'|dRng|':>6} {'colLin':>6}")
    for lab, c in summary["per_class"].items():
        print(f"{lab:9} {c['n']:3d} {c['matched']:5d} {c['iou']:6.3f} {c['baseline_iou']:6.3f} {c['err_long']:+6.2f} "
              f"{c['err_short']:+6.2f} {c['err_height']:+6.2f} {c['err_yaw']:5.1f} {c['err_centre']:5.2f} "
              f"{c['err_range_abs']:6.2f} {c['color_err_linear']:6.4f}")
    s = summary
    print()
    print(f"objects scored (>= min px): {s['objects']}, matched {s['matched']}, extra engine objects {s['extras']}")
    print(f"mean IoU3D (all GT, unmatched = 0): {s['iou_mean_all']:.3f}   (target >= {IOU_TARGET})")
    print(f"mean IoU3D (matched):               {s['iou_mean_matched']:.3f}")
    print(f"mean IoU3D visible >= 90%: {s['iou_mean_unoccluded']:.3f} ({s['n_unoccluded']} objects); "
          f"partly occluded: {s['iou_mean_occluded']:.3f} ({s['objects'] - s['n_unoccluded']} objects)")
    print(f"baseline AABB 5..95 pct (true camera): {s['baseline_iou_mean']:.3f}   (expected ~{IOU_BASELINE_EXPECTED})")
    print(f"colour error linear: mean {s['color_err_linear_mean']:.4f}, max {s['color_err_linear_max']:.4f}   "
          f"(target <= {COLOUR_TARGET}); sRGB: mean {s['color_err_srgb_mean']:.4f}, max {s['color_err_srgb_max']:.4f}")
    print(f"(averaging in sRGB instead would give a linear error of {s['srgb_averaging_err_linear_mean']:.4f} mean)")
    print(f"camera |error| means: height {s['camera_height_abs_err_mean']:.3f} m, pitch "
          f"{s['camera_pitch_abs_err_mean']:.2f} deg, roll {s['camera_roll_abs_err_mean']:.2f} deg")
    print(f"img2maya scene wall time per image: mean {np.mean(times):.2f} s, max {np.max(times):.2f} s")
    d = s["depth_perturbation"]
    print(f"code: {s['code_version']}; depth perturbation: iid {d['iid']}, smooth {d['smooth']} "
          f"(sigma {d['smooth_px']} px), "
          f"blur {d['blur_px']} px, relative {d.get('relative', 'none')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="number of scenes (default 10)")
    ap.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--objects", type=int, default=6)
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=640)
    ap.add_argument("--min-px", type=int, default=400, help="score GT objects with at least this many pixels")
    ap.add_argument("--depth-noise", type=float, default=0.0, metavar="S",
                    help="multiply depth by (1 + S * N(0, 1)) independently per pixel (default 0: exact depth)")
    ap.add_argument("--depth-smooth-noise", type=float, default=0.0, metavar="S",
                    help="multiply depth by (1 + e), e a smooth random field of std S (see --depth-smooth-px)")
    ap.add_argument("--depth-smooth-px", type=float, default=80.0, metavar="PX",
                    help="correlation length (Gaussian sigma, pixels) of the smooth field (default 80)")
    ap.add_argument("--depth-blur", type=int, default=0, metavar="PX",
                    help="box-blur depth over PX x PX pixels (sky counted as 1000 m), as networks bleed edges")
    ap.add_argument("--depth-relative", default="none", metavar="MODE",
                    help="feed the (perturbed) depth as --depth-kind relative after a monotone distortion: "
                         "pow:K (d = z^K, e.g. pow:0.5), shift:C (d = z + C metres), scale:S (d = S z)")
    ap.add_argument("--keep", metavar="DIR", help="keep inputs and scene.json per seed under DIR/seed_N")
    ap.add_argument("--json", metavar="FILE", help="write per-object rows and the summary as JSON ('-' = stdout)")
    a = ap.parse_args(argv)
    results, times = [], []
    with tempfile.TemporaryDirectory(prefix="img2maya_bench_") as tmp:
        base = Path(a.keep) if a.keep else Path(tmp)
        for seed in range(a.start, a.start + a.seeds):
            scene = make_scene(seed, a.width, a.height, a.objects)
            scene.depth = perturb_depth(scene, seed, a.depth_noise, a.depth_smooth_noise, a.depth_blur,
                                        a.depth_smooth_px)
            metric_depth = scene.depth
            scene.depth = relative_depth(metric_depth, a.depth_relative)
            folder = base / f"seed_{seed}"
            paths = write_inputs(scene, folder)
            scene.depth = metric_depth  # the baseline box uses metric depth
            kind = "metric" if a.depth_relative in ("", "none") else "relative"
            pred, dt = run_cli(paths, scene.intrinsics.focal_px, folder / "scene.json", kind)
            times.append(dt)
            results.append(score_scene(scene, pred, a.min_px))
    summary = summarise(results)
    summary["cli_seconds_mean"] = float(np.mean(times))
    summary["code_version"] = code_version()
    summary["depth_perturbation"] = {"iid": a.depth_noise, "smooth": a.depth_smooth_noise,
                                      "smooth_px": a.depth_smooth_px, "blur_px": a.depth_blur,
                                      "relative": a.depth_relative}
    if a.json != "-":
        print_report(results, summary, times)
    if a.json:
        text = json.dumps({"summary": summary, "scenes": results}, indent=1)
        if a.json == "-":
            print(text)
        else:
            tmpf = a.json + ".tmp"
            Path(tmpf).write_text(text)
            os.replace(tmpf, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
