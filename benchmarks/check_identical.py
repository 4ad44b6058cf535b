"""Byte-identity referee for scene-engine refactors: every scene's JSON text, before and after.

    .venv/bin/python benchmarks/check_identical.py write DIR      # the scenes' texts into DIR
    .venv/bin/python benchmarks/check_identical.py compare DIR    # today's texts against DIR's
        [--only SUBSTRING] [--no-camera-set] [--verify-run N]

Cases: every photo of ../shared/samples (and samples/camera/images) with the default networks, with
and without instances, at recursion 0, 1 and 2; the KITTI frames with their LiDAR depth and focal; the
RGB-D samples with their own depth; the synthetic street scenes of benchmarks/synthetic_gt.py (seeds
0-9: metric, relative, disparity and no depth, through the CLI's pipeline.run with the user's files);
tests/test_analysis_synth.py's `street` with option variants and a resegment hook.

Besides the fresh builds, each photo checks the warm path (one prepared engine assembled at recursion
0, 1, 2, 1: each must equal the fresh build) and engines that share a prepared engine's stages across
option changes (camera height, colour statistic, minimum area: each must equal a fresh build).

The networks run once: their outputs (segmentation, depth, instances) and the re-segmentation
network's answers per crop are cached under --cache (default /tmp/engine_ref_cache), so a rerun runs
only the engine. `compare` never runs a network: a crop the cache lacks is an error (the engine asked
for another crop than before).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

SHARED = Path(os.environ.get("IMG2MAYA_SHARED", ROOT.parent / "shared"))  # samples and models
SAMPLES = SHARED / "samples"
MODELS = SHARED / "models"
INPUTS = Path("/tmp/engine_ref_inputs")  # synthetic inputs: a fixed folder (its paths are in the scenes)


def text(scene: dict[str, Any]) -> str:
    """The scene's JSON text, its one wall-clock number (the camera estimate's seconds) zeroed."""
    calib = scene.get("camera", {}).get("calibration")
    if isinstance(calib, dict) and "seconds" in calib:
        scene = {**scene, "camera": {**scene["camera"], "calibration": {**calib, "seconds": 0.0}}}
    return json.dumps(scene, sort_keys=True, indent=1, allow_nan=False)


# ---------------------------------------------------------------------------- network output cache
class Hook:
    """The re-segmentation network's answers per crop: replayed from the cache, else (live) computed
    and recorded. Behaves like pipeline.run's hook (no replay_only, no memo attribute)."""

    def __init__(self, answers: dict[str, Any], live: Callable[..., Any] | None) -> None:
        self.answers, self.live = answers, live

    def __call__(self, crop_rgb: np.ndarray, crop_mask: np.ndarray) -> Any:
        h = hashlib.sha1()
        for a in (crop_rgb, crop_mask):
            a = np.ascontiguousarray(a)
            h.update(repr((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
        key = h.hexdigest()
        if key not in self.answers:
            if self.live is None:
                raise KeyError("the engine asked the resegment hook for a crop the cache lacks")
            self.answers[key] = self.live(crop_rgb, crop_mask)
        return self.answers[key]


@dataclass
class Net:
    photo: Any
    seg: Any
    depth: Any
    instances: Any
    note: str | None
    answers: dict[str, Any]
    path: Path


def load_net(cache: Path, name: str, photo_path: Path, *, depth_path: Path | None = None,
             depth_scale: float | None = None, focal_px: float | None = None) -> Net:
    """The photo and its network outputs (cached), as pipeline.run makes them."""
    from inference_server import pipeline
    from inference_server.imageio import DEFAULT_DEPTH_PNG_SCALE, load_depth, load_photo
    from inference_server.inference.types import DepthMap
    from inference_server.limits import clip_metric_depth

    photo = load_photo(photo_path)
    f = cache / f"{name}.pkl"
    if f.exists():
        data = pickle.loads(f.read_bytes())
    else:
        from inference_server.inference import api

        depth_id = None if depth_path is not None else api.DEFAULT_DEPTH
        seg, depth = pipeline.infer(photo, api.DEFAULT_SEG, depth_id, models_dir=str(MODELS),
                                    focal_px=focal_px)
        if depth_path is not None:
            d = load_depth(depth_path, photo.shape, photo.full_shape,
                           png_scale=depth_scale if depth_scale is not None else DEFAULT_DEPTH_PNG_SCALE)
            depth = DepthMap(depth=clip_metric_depth(d, f"depth {depth_path}"), kind="metric", model="user")
        instances, note = pipeline.detect_instances(photo, None, str(MODELS))
        data = {"seg": seg, "depth": depth, "instances": instances, "note": note, "answers": {}}
        f.write_bytes(pickle.dumps(data))
    return Net(photo, data["seg"], data["depth"], data["instances"], data["note"], data["answers"], f)


def save_answers(net: Net) -> None:
    data = pickle.loads(net.path.read_bytes())
    data["answers"] = net.answers
    net.path.write_bytes(pickle.dumps(data))


# ----------------------------------------------------------------------------------------- cases
def photo_cases(camera_set: bool) -> list[tuple[str, Path, dict[str, Any]]]:
    skip = ("_label", "_depth", "labelIds", "labelTrainIds", "_palette")
    photos = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".jpg", ".png")
                    and not any(s in p.name for s in skip))
    out = [(p.stem, p, {}) for p in photos]
    out += [("kitti_000000_lidar", SAMPLES / "kitti_000000_rgb.png",
             {"depth_path": SAMPLES / "kitti_000000_depth_lidar.png", "focal_px": 707.0493}),
            ("kitti_000001_lidar", SAMPLES / "kitti_000001_rgb.png",
             {"depth_path": SAMPLES / "kitti_000001_depth_lidar.png", "focal_px": 721.5377}),
            ("nyu_bookstore_depth", SAMPLES / "nyu_bookstore_small_rgb.jpg",
             {"depth_path": SAMPLES / "nyu_bookstore_small_depth.png", "depth_scale": 1000.0}),
            ("redwood_livingroom_depth", SAMPLES / "redwood_livingroom_synthetic_rgb.jpg",
             {"depth_path": SAMPLES / "redwood_livingroom_synthetic_depth.png", "depth_scale": 1000.0}),
            ("nyu_raw_basement_depth", SAMPLES / "nyu_raw_basement_rgb.png",
             {"depth_path": SAMPLES / "nyu_raw_basement_depth_mm.png", "depth_scale": 1000.0}),
            ("tum_office_depth", SAMPLES / "tum_office_rgb.png",
             {"depth_path": SAMPLES / "tum_office_depth.png", "depth_scale": 5000.0})]
    if camera_set:
        out += [(f"camera_{p.stem}", p, {}) for p in sorted((SAMPLES / "camera" / "images").iterdir())
                if p.suffix in (".jpg", ".png")]
    return out


def photo_scenes(net: Net, focal_px: float | None, full: bool, live: Callable[..., Any] | None = None,
                 inputs: dict[str, Any] | None = None) -> Iterator[tuple[str, str]]:
    """(suffix, text) of one photo's scenes: fresh builds, the warm path and shared stages."""
    from inference_server import pipeline
    from inference_server.analysis.engine import SceneOptions

    hook = Hook(net.answers, live)

    def fresh(inst: Any, **opts: Any) -> str:
        o = SceneOptions(**opts)
        scene = pipeline.analyse(net.photo, net.seg, net.depth, o, focal_px=focal_px, instances=inst,
                                 resegment=hook if o.recursion > 0 else None, inputs=inputs)
        if net.note and inst is not None:
            scene.setdefault("warnings", []).append(net.note)
        return text(scene)

    variants = [("inst", net.instances)] + ([("noinst", None)] if net.instances is not None else [])
    for tag, inst in variants:
        fr = {r: fresh(inst, recursion=r) for r in (0, 1, 2)}
        for r, t in fr.items():
            yield f"{tag}_r{r}", t
        if not full:
            continue
        engine = pipeline.prepare(net.photo, net.seg, net.depth, SceneOptions(), focal_px=focal_px,
                                  instances=inst, resegment=hook, inputs=inputs)
        for j, r in enumerate((0, 1, 2, 1)):
            scene = engine.assemble(r)
            if net.note and inst is not None:
                scene.setdefault("warnings", []).append(net.note)
            t = text(scene)
            assert t == fr[r], f"warm assemble({r}) differs from the fresh build"
            yield f"{tag}_warm{j}_r{r}", t
        stages = engine.stages
        for j, opts in enumerate(({"camera_height_m": 1.3, "camera_height_from_objects": False},
                                  {"camera_height_m": 1.9, "camera_height_from_objects": False},
                                  {"color_stat": "median"}, {"min_area_px": 600},
                                  {"camera_height_m": 1.3, "camera_height_from_objects": False})):
            shared = pipeline.prepare(net.photo, net.seg, net.depth, SceneOptions(**opts), focal_px=focal_px,
                                      instances=inst, resegment=hook, inputs=inputs, stages=stages)
            stages = shared.stages
            for r in (0, 2):
                scene = shared.assemble(r)
                if net.note and inst is not None:
                    scene.setdefault("warnings", []).append(net.note)
                t = text(scene)
                assert t == fresh(inst, recursion=r, **opts), f"shared stages {opts} differ at recursion {r}"
                yield f"{tag}_shared{j}_r{r}", t
        for fov in (45.0, 70.0, 45.0):  # a typed FOV: another camera on the same stages (checked, not kept)
            typed = pipeline.prepare(net.photo, net.seg, net.depth, SceneOptions(), fov_deg=fov, instances=inst,
                                     resegment=hook, inputs=inputs, stages=stages)
            stages = typed.stages
            o = SceneOptions()
            alone = pipeline.analyse(net.photo, net.seg, net.depth, o, fov_deg=fov, instances=inst, inputs=inputs)
            assert text(typed.assemble(0)) == text(alone), f"shared stages with a typed FOV of {fov} differ"


def synthetic_scenes(seeds: range) -> Iterator[tuple[str, str]]:
    from bench_synthetic import relative_depth
    from synthetic_gt import make_scene, write_inputs

    from inference_server import pipeline
    from inference_server.analysis.engine import SceneOptions

    for seed in seeds:
        scene = make_scene(seed)
        folder = INPUTS / f"synth_{seed}"
        paths = write_inputs(scene, folder)
        np.save(folder / "relative.npy", relative_depth(scene.depth, "pow:0.5"))
        with np.errstate(divide="ignore"):
            np.save(folder / "disparity.npy", (1.0 / scene.depth).astype(np.float32))
        f = scene.intrinsics.focal_px
        base = {"labels_path": paths["labels"], "names_path": paths["names"], "focal_px": f}
        for kind, depth in (("metric", paths["depth"]), ("relative", folder / "relative.npy"),
                            ("disparity", folder / "disparity.npy"), ("none", None)):
            for r in (0, 2):
                kw: dict[str, Any] = dict(base)
                if depth is None:
                    kw["depth_model"] = "none"
                else:
                    kw.update(depth_path=depth, depth_kind=kind)
                out = pipeline.run(paths["image"], options=SceneOptions(recursion=r), **kw)
                yield f"synth{seed}_{kind}_r{r}", text(out)


def street_scenes() -> Iterator[tuple[str, str]]:
    from test_analysis_synth import street
    from test_server_warm import network

    from inference_server.analysis.engine import SceneOptions, build_scene

    src = {"image": "street.png", "width": 320, "height": 240, "sha256": "0" * 64}
    for size in ((320, 240), (1280, 960)):
        s = street(width=size[0], height=size[1])
        disparity = (1.0 / s.depth).astype(np.float32)
        for name, depth, opts in (
                ("metric", s.depth, {}), ("median", s.depth, {"color_stat": "median"}),
                ("trimmed", s.depth, {"color_stat": "trimmed"}),
                ("relative", s.depth, {"depth_kind": "relative"}),
                ("disparity", disparity, {"depth_kind": "disparity"}), ("nodepth", None, {}),
                ("minarea", s.depth, {"min_area_px": 300}), ("grid", s.depth, {"max_pixels": 10_000}),
                ("nocam", s.depth, {"estimate_camera": False}), ("h12", s.depth, {"depth_kind": "relative",
                                                                                  "camera_height_m": 1.2})):
            for r in (0, 2, 3):
                for hook_name, hook in (("", None), ("_hook", network)):
                    if hook is not None and r == 0:
                        continue
                    o = SceneOptions(recursion=r, **opts)
                    scene = build_scene(s.rgb, s.labels, s.names, depth, s.intr, o, source=dict(src),
                                        resegment=hook)
                    yield f"street{size[0]}_{name}_r{r}{hook_name}", text(scene)


# ----------------------------------------------------------------------------------------- main
def all_scenes(a: argparse.Namespace, live: bool) -> Iterator[tuple[str, str]]:
    from inference_server import pipeline

    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    for name, path, kw in photo_cases(not a.no_camera_set):
        if a.only and a.only not in name:
            continue
        net = load_net(cache, name, path, **kw)
        hook_live = None
        if live:
            from inference_server.inference import api

            hook_live = pipeline._resegmenter(api, api.DEFAULT_SEG, str(MODELS))
        known = len(net.answers)
        inputs = {} if "depth_path" not in kw else {"depth": str(kw["depth_path"])}
        if "depth_scale" in kw:
            inputs["depth_scale"] = kw["depth_scale"]
        full = not name.startswith("camera_")
        for suffix, t in photo_scenes(net, kw.get("focal_px"), full, hook_live, inputs):
            yield f"{name}__{suffix}", t
        if len(net.answers) != known:
            save_answers(net)
    if not a.only or "synth" in a.only:
        yield from synthetic_scenes(range(10))
    if not a.only or "street" in a.only:
        yield from street_scenes()


def verify_run(a: argparse.Namespace, n: int) -> None:
    """The cached path gives what pipeline.run gives (the networks run for real)."""
    from inference_server import pipeline
    from inference_server.analysis.engine import SceneOptions

    for name, path, kw in photo_cases(False)[:n]:
        net = load_net(Path(a.cache), name, path, **kw)
        for r in (0, 2):
            ref = pipeline.run(path, models_dir=str(MODELS), options=SceneOptions(recursion=r))
            mine = dict(photo_scenes(net, None, False))[f"inst_r{r}"]
            assert text(ref) == mine, f"{name}: the cached path differs from pipeline.run at recursion {r}"
            print(f"verified {name} r{r} against pipeline.run")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("write", "compare"))
    ap.add_argument("dir")
    ap.add_argument("--cache", default="/tmp/engine_ref_cache")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-camera-set", action="store_true")
    ap.add_argument("--verify-run", type=int, default=0, metavar="N")
    a = ap.parse_args(argv)
    out = Path(a.dir)
    t0 = time.perf_counter()
    if a.verify_run:
        verify_run(a, a.verify_run)
    n = same = 0
    bad: list[str] = []
    if a.mode == "write":
        out.mkdir(parents=True, exist_ok=True)
    for key, t in all_scenes(a, live=a.mode == "write"):
        n += 1
        f = out / f"{key}.json"
        if a.mode == "write":
            f.write_text(t)
            continue
        if not f.exists():
            bad.append(f"{key}: not in {out}")
        elif f.read_text() != t:
            bad.append(f"{key}: differs")
        else:
            same += 1
    dt = time.perf_counter() - t0
    if a.mode == "write":
        print(f"{n} scene texts written to {out} in {dt:.0f} s")
        return 0
    for b in bad:
        print(b)
    print(f"{same} of {n} scenes byte-identical to {out} ({len(bad)} differ) in {dt:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
