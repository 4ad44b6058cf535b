"""CPU time of the Hugging Face networks on a 2 MP photo, at their real size (random weights).

The compute of a network is the shape of its weights, not their values: each registered model is built
from its published config.json at full size (tests/hf_support.py, ``full=True``) with random weights, its
image processor from its published preprocessor_config.json, and run through the engine's own runner
(inference/hf/runners.py: preprocessing, network, post-processing to the photo's resolution) on a
1632 x 1224 photo (2.0 MP). Printed per model: parameters, seconds per photo (wall, median of the
timed runs after one warm-up) and the process CPU seconds of the same runs (both cores), and the
runner's own split (preprocess / network / postprocess).

    .venv/bin/python benchmarks/bench_hf.py [--runs N] [--only HUB_ID ...] [--threads T] [--json OUT]

The weights are real-size float32 tensors in memory (Depth Pro: 3.8 GB); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import hf_support as hs  # noqa: E402

from inference_server.inference.hf import runners, specs  # noqa: E402

W, H = 1632, 1224


def runner_for(hub_id: str) -> tuple[Any, int]:
    """(runner, parameter count) of a full-size random-weight model with its published processor."""
    import torch
    import transformers

    hf = specs.BY_ID[hub_id]
    model = hs.build_model(hub_id, full=True)
    n_params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "preprocessor_config.json").write_text(json.dumps(hs.PUBLISHED[hub_id][1]), encoding="utf-8")
        model.config.save_pretrained(str(folder))
        processor = runners._processor(transformers, folder, hf)
    cls = {"panoptic": runners.HFPanoptic, "semantic": runners.HFSemantic}.get(hf.output, runners.HFDepth)
    return cls(hf, model, processor, torch), n_params


def time_model(hub_id: str, runs: int) -> dict[str, Any]:
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    net, n_params = runner_for(hub_id)
    build_s = time.perf_counter() - t0

    def once(k: int) -> tuple[float, float, dict[str, float]]:
        a = rgb.copy()
        a[0, 0, 0] = k % 256  # another photo each time: the panoptic runner memoises its last one
        w0, c0 = time.perf_counter(), time.process_time()
        net.run(a) if hasattr(net, "run") else net.predict(a)
        return time.perf_counter() - w0, time.process_time() - c0, dict(net.timings)

    once(0)  # warm-up: first-call allocations
    timed = [once(k + 1) for k in range(runs)]
    walls, cpus = [t[0] for t in timed], [t[1] for t in timed]
    split = {k: round(statistics.median(t[2].get(k, 0.0) for t in timed), 3)
             for k in ("preprocess", "network", "postprocess")}
    return {"model": hub_id, "output": specs.BY_ID[hub_id].output, "params_m": round(n_params / 1e6, 1),
            "photo": f"{W}x{H}", "runs": runs, "wall_s": round(statistics.median(walls), 2),
            "wall_min_s": round(min(walls), 2), "cpu_s": round(statistics.median(cpus), 2), "split_s": split,
            "build_s": round(build_s, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per model after one warm-up (default 3)")
    ap.add_argument("--only", nargs="*", default=None, help="hub ids (default: every registered HF model)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, photo {W}x{H} "
          f"({W * H / 1e6:.1f} MP), {args.runs} timed run(s) after one warm-up", flush=True)
    rows = []
    for hub_id in args.only or [m.id for m in specs.HF_MODELS]:
        row = time_model(hub_id, args.runs)
        rows.append(row)
        print(f"{row['model']:<58} {row['output']:<13} {row['params_m']:>7.1f} M  {row['wall_s']:>7.2f} s wall "
              f"(min {row['wall_min_s']:.2f})  {row['cpu_s']:>7.2f} s CPU  split {row['split_s']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
