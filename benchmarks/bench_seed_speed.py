"""Time the seed networks (DeepLab v2 MSC, Monodepth VGG) on a ~2 MP photo, stage by stage.

Real weights are not needed for timing: the script writes random-valued checkpoints with the original names
and shapes (the same files the loaders' tests use), then loads them and runs ``predict``. Output: one line
per stage and iteration, then the medians.

    .venv/bin/python benchmarks/bench_seed_speed.py                  # CPU, 1 timed iteration after a warm-up
    .venv/bin/python benchmarks/bench_seed_speed.py --device cuda --iterations 5
    .venv/bin/python benchmarks/bench_seed_speed.py --only monodepth --photo some.jpg
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference_server.inference.seed import deeplab_v2, monodepth


def _photo(path: str | None, megapixels: float) -> np.ndarray:
    """The given photo, or a smooth synthetic 4:3 image of about ``megapixels``."""
    if path:
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))
    w = int(round(np.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 37.0) * np.cos(yy / 23.0)], axis=2)
    return (img * 255).astype(np.uint8)


def _report(name: str, runs: list[dict[str, float]]) -> None:
    for i, r in enumerate(runs):
        print(f"  {name} iter {i}: " + ", ".join(f"{k} {v:.3f} s" for k, v in r.items()))
    keys = runs[0].keys()
    print(f"  {name} median: " + ", ".join(f"{k} {statistics.median(r[k] for r in runs):.3f} s" for k in keys))


def bench_deeplab(rgb: np.ndarray, work: str, device: str, iterations: int) -> None:
    import torch

    path = os.path.join(work, "cocostuff164k_iter100k.pth")
    t0 = time.perf_counter()
    deeplab_v2.write_random_checkpoint(path, layout="legacy")
    t1 = time.perf_counter()
    model = deeplab_v2.DeepLabV2(path, device=device)
    t2 = time.perf_counter()
    print(f"DeepLab v2 (torch {torch.__version__}, device {model.device}, threads {torch.get_num_threads()}): "
          f"write checkpoint {t1 - t0:.2f} s ({os.path.getsize(path) / 1e6:.0f} MB), load {t2 - t1:.2f} s")
    model.predict(rgb)  # warm-up (allocator, cuDNN autotune)
    runs = []
    for _ in range(iterations):
        t = time.perf_counter()
        seg = model.predict(rgb)
        runs.append({**model.timings, "total": time.perf_counter() - t})
    assert seg.labels.shape == rgb.shape[:2]
    _report("deeplab", runs)


def bench_monodepth(rgb: np.ndarray, work: str, device: str, iterations: int) -> None:
    import tensorflow as tf

    prefix = os.path.join(work, "model_cityscapes")
    t0 = time.perf_counter()
    monodepth.write_random_checkpoint(prefix, with_optimizer_slots=True)
    t1 = time.perf_counter()
    model = monodepth.Monodepth(prefix, dataset="cityscapes", device=device)
    t2 = time.perf_counter()
    print(f"Monodepth VGG (tensorflow {tf.__version__}, device {device}): write checkpoint {t1 - t0:.2f} s, "
          f"load {t2 - t1:.2f} s")
    model.predict(rgb)  # warm-up (tf.function tracing)
    runs = []
    for _ in range(iterations):
        t = time.perf_counter()
        depth = model.predict(rgb, focal_px=0.8 * rgb.shape[1])
        runs.append({**model.timings, "total": time.perf_counter() - t})
    assert depth.depth.shape == rgb.shape[:2]
    _report("monodepth", runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--iterations", type=int, default=1, help="timed runs after one warm-up run")
    ap.add_argument("--megapixels", type=float, default=2.0, help="size of the synthetic photo")
    ap.add_argument("--photo", help="time on this image instead of a synthetic one")
    ap.add_argument("--only", choices=["deeplab", "monodepth"])
    args = ap.parse_args(argv)

    rgb = _photo(args.photo, args.megapixels)
    print(f"photo {rgb.shape[1]}x{rgb.shape[0]} ({rgb.shape[0] * rgb.shape[1] / 1e6:.2f} MP), "
          f"{os.cpu_count()} CPUs visible")
    with tempfile.TemporaryDirectory(prefix="img2maya-seed-bench-") as work:
        if args.only in (None, "deeplab"):
            bench_deeplab(rgb, work, args.device, args.iterations)
        if args.only in (None, "monodepth"):
            bench_monodepth(rgb, work, args.device, args.iterations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
