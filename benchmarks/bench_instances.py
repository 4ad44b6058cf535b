"""One object per car and per person: the scene engine with and without the instance model.

For each photo the default networks run (``pipeline.run``, as ``img2maya scene PHOTO`` does; KITTI: the
focal length of its calib file and a 1.65 m camera height), once with ``--instances none`` (BEFORE: the
semantic labels split by components and depth edges) and once with the instance model (AFTER). Prints:

- KITTI frames with ``label_2``: 2D recall at IoU >= 0.5 of the ground-truth boxes as SEPARATE scene
  objects (each top-level object's ``bbox_px`` matches at most one box, greedily by IoU): cars (Car, Van)
  against vehicle objects, pedestrians (Pedestrian, Person_sitting) against person objects; cyclists
  (KITTI's own class) and trucks are printed beside them.
- London bus and NYC: scene objects per class against a count made by eye (``BY_EYE`` below).
- seconds per photo of each run (the whole ``pipeline.run``: load, three networks, analysis).

    .venv/bin/python benchmarks/bench_instances.py [--shared ../shared] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference_server import pipeline  # noqa: E402
from inference_server.analysis.engine import SceneOptions  # noqa: E402
from inference_server.inference import registry  # noqa: E402

KITTI = ("kitti_000000", "kitti_000001")
KITTI_CAMERA_HEIGHT_M = 1.65
GT_GROUPS = {"car": ("Car", "Van"), "pedestrian": ("Pedestrian", "Person_sitting"), "cyclist": ("Cyclist",),
             "truck": ("Truck",)}
ROLE_OF = {"car": "vehicle", "pedestrian": "person", "cyclist": "person", "truck": "vehicle"}

# Counted by eye on the full-resolution photos (2026-12-03), things a layout artist would block out:
# "clear" = unoccluded enough to recognise at a glance; the riders of bicycles and motorcycles count as
# persons. London (2048x1362): 9 pedestrians on the left pavement, 3 motorcyclists, 2 cyclists; cars:
# the silver Prius, the white car cut by the right edge, the black 4x4, the dark car and the small white
# car beyond it, the white van; buses: the near double-decker (a second one, far and mostly hidden, is
# not counted); 3 motorcycles, 2 bicycles. NYC (1920x1080): cars: the cut taxi on the left, the black
# SUV and two taxis behind it, the big black SUV, the dark car behind the cyclist and the one beyond the
# SUV, the FedEx van; 2 box trucks; persons: the cyclist, the man sitting by the van, the woman on the
# right pavement (one more at the far right edge is half hidden: not counted); 1 bicycle.
BY_EYE: dict[str, dict[str, int]] = {
    "street_london_bus.jpg": {"person": 14, "car": 6, "bus": 1, "motorcycle": 3, "bicycle": 2},
    "street_nyc.jpg": {"person": 3, "car": 8, "truck": 2, "bicycle": 1},
}
# scene labels (ADE20K-150 or COCO, as the engine names them) counted as each by-eye class
SCENE_CLASSES = {"person": ("person",), "car": ("car", "van"), "bus": ("bus",), "truck": ("truck",),
                 "motorcycle": ("motorcycle", "minibike"), "bicycle": ("bicycle",)}


def kitti_focal(calib: Path) -> float:
    for line in calib.read_text().splitlines():
        if line.startswith("P2:"):
            return float(line.split()[1])
    raise ValueError(f"no P2 in {calib}")


def kitti_boxes(path: Path) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = {g: [] for g in GT_GROUPS}
    for line in path.read_text().splitlines():
        f = line.split()
        for g, kinds in GT_GROUPS.items():
            if f and f[0] in kinds:
                out[g].append([float(v) for v in f[4:8]])
    return out


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def recall(gt: list[list[float]], objects: list[dict[str, Any]], role: str) -> tuple[int, list[float]]:
    """(boxes found as separate objects at IoU >= 0.5, best IoU of each box), one object per box."""
    cand = [o["bbox_px"] for o in objects if o.get("role") == role]
    pairs = sorted(((iou(g, c), i, j) for i, g in enumerate(gt) for j, c in enumerate(cand)), reverse=True)
    used_g: set[int] = set()
    used_c: set[int] = set()
    for v, i, j in pairs:
        if v >= 0.5 and i not in used_g and j not in used_c:
            used_g.add(i)
            used_c.add(j)
    best = [max((iou(g, c) for c in cand), default=0.0) for g in gt]
    return len(used_g), best


def counts(objects: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(o.get("label") in labels for o in objects) for k, labels in SCENE_CLASSES.items()}


def run(photo: Path, instances: str, models: Path, focal: float | None) -> tuple[dict[str, Any], float]:
    options = SceneOptions(camera_height_m=KITTI_CAMERA_HEIGHT_M if focal else 1.6,
                           camera_height_from_objects=not focal)
    t = time.perf_counter()
    scene = pipeline.run(photo, models_dir=str(models), options=options, focal_px=focal, instances_model=instances)
    return scene, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    samples, models = args.shared / "samples", args.shared / "models"
    mid = registry.DEFAULT_INSTANCES
    if not (models / mid).is_dir():
        print(f"{mid} not installed in {models}: nothing to compare")
        return 1
    runs = {"before": "none", "after": mid}
    out: dict[str, Any] = {"kitti": {}, "by_eye": {}, "seconds": {}}
    print("## KITTI: ground-truth boxes found as separate objects (2D IoU >= 0.5)\n")
    print("| frame | class | boxes | before: found (best IoU) | after: found (best IoU) |")
    print("|---|---|---|---|---|")
    totals = {k: {g: [0, 0] for g in GT_GROUPS} for k in runs}
    for frame in KITTI:
        photo = samples / f"{frame}_rgb.png"
        if not photo.exists():
            print(f"| {frame} | missing | | | |")
            continue
        gt = kitti_boxes(samples / f"{frame}_label_2.txt")
        focal = kitti_focal(samples / f"{frame}_calib.txt")
        scenes = {}
        for k, inst in runs.items():
            scenes[k], sec = run(photo, inst, models, focal)
            out["seconds"].setdefault(k, {})[frame] = round(sec, 3)
        for g, boxes in gt.items():
            if not boxes:
                continue
            cells = []
            for k in runs:
                found, best = recall(boxes, scenes[k]["objects"], ROLE_OF[g])
                totals[k][g][0] += found
                totals[k][g][1] += len(boxes)
                cells.append(f"{found} ({', '.join(f'{b:.2f}' for b in best)})")
                out["kitti"].setdefault(frame, {}).setdefault(g, {})[k] = {"found": found, "of": len(boxes),
                                                                           "best_iou": best}
            print(f"| {frame} | {g} | {len(boxes)} | " + " | ".join(cells) + " |", flush=True)
    for g in ("car", "pedestrian"):
        b, a = totals["before"][g], totals["after"][g]
        if b[1]:
            print(f"| all | {g} recall | {b[1]} | {b[0] / b[1]:.2f} | {a[0] / a[1]:.2f} |")
    both = {k: sum(totals[k][g][0] for g in ("car", "pedestrian")) / max(1, sum(
        totals[k][g][1] for g in ("car", "pedestrian"))) for k in runs}
    print(f"| all | cars + pedestrians recall | | {both['before']:.2f} | {both['after']:.2f} |")
    out["kitti_recall"] = both

    print("\n## Objects per class against a count by eye\n")
    print("| photo | class | by eye | before | after |")
    print("|---|---|---|---|---|")
    for name, eye in BY_EYE.items():
        photo = samples / name
        if not photo.exists():
            print(f"| {name} | missing | | | |")
            continue
        got = {}
        for k, inst in runs.items():
            scene, sec = run(photo, inst, models, None)
            got[k] = counts(scene["objects"])
            out["seconds"].setdefault(k, {})[name] = round(sec, 3)
        for cls, n in eye.items():
            print(f"| {name} | {cls} | {n} | {got['before'][cls]} | {got['after'][cls]} |", flush=True)
        out["by_eye"][name] = {"eye": eye, **got}
    print("\n## Seconds per photo (pipeline.run: load, networks, analysis)\n")
    print("| photo | before | after |")
    print("|---|---|---|")
    for photo in out["seconds"]["before"]:
        print(f"| {photo} | {out['seconds']['before'][photo]:.2f} | {out['seconds']['after'][photo]:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
