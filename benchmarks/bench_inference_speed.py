"""Speed of the shipped networks and of the whole `img2maya scene` on a 2 MP photo (CPU, 2 threads).

Stages, in-process: photo load (imageio.load_photo), segmentation (api.segment; its network runs and
post-processing also shown apart), depth (api.estimate_depth with the sky mask), instances
(api.detect_instances, when the instance model is installed), scene analysis (pipeline.analyse, fusing
them). "cold" = the first call in a fresh process (model load included); "warm" = the best of the
following calls. Then the warm SERVER (`python -m inference_server` through the Maya-side client, as
the panel uses it): one analyze to start, then `--repeat` analyzes of photos it has never seen (the photo
with one pixel changed, so the network cache cannot answer), with the server's own stage timings. Last,
the wall time of whole `img2maya scene` processes (interpreter start, imports, model load, everything),
the number a CLI user sees. CPU seconds (all threads) are printed too: unlike wall time they hardly change
when other jobs share the cores.

    .venv/bin/python benchmarks/bench_inference_speed.py [--shared ../shared] [--photo P] [--repeat 3]
                                                        [--no-subprocess] [--no-server]

The photo defaults to ../shared/samples/street_london_bus.jpg resized to 1734x1153 (2.0 MP) in a
temporary folder. Targets: whole scene <= 2 s cold with the three networks, <= 0.8 s warm in the server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


CPU: dict[str, float] = {}  # stage -> CPU seconds (all threads) of the last call


def _timed(fn: Callable[[], Any], stage: str = "") -> tuple[float, Any]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    CPU[stage] = time.process_time() - c0
    return time.perf_counter() - t0, out


def make_photo(src: Path, dst: Path, pixels: int = 2_000_000) -> Path:
    from PIL import Image

    im = Image.open(src).convert("RGB")
    s = (pixels / (im.width * im.height)) ** 0.5
    im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR).save(dst, quality=92)
    return dst


def in_process(photo: Path, models: Path, repeat: int) -> list[dict[str, float]]:
    from inference_server.imageio import load_photo
    from inference_server.inference import api

    try:
        from inference_server import pipeline
        from inference_server.analysis.engine import SceneOptions
    except ImportError:
        pipeline = None  # type: ignore[assignment]
    rows = []
    for _ in range(repeat + 1):
        row: dict[str, float] = {}
        row["load"], ph = _timed(lambda: load_photo(photo), "load")
        row["segment"], seg = _timed(lambda ph=ph: api.segment(ph.rgb, models_dir=models), "segment")
        parts = getattr(api.load_model(api.DEFAULT_SEG, models), "timings", {})
        for part in ("network", "upsample"):  # sub-rows, not added to the total
            if part in parts:
                row[f"  segment: {part}"] = parts[part]
        row["depth"], depth = _timed(lambda ph=ph, seg=seg: api.estimate_depth(ph.rgb, models_dir=models,
                                                                                sky_mask=seg), "depth")
        inst = None
        if api.available(api.DEFAULT_INSTANCES, models):
            row["instances"], inst = _timed(lambda ph=ph: api.detect_instances(ph.rgb, models_dir=models),
                                            "instances")
        if pipeline is not None:
            row["analysis"], _ = _timed(lambda ph=ph, seg=seg, depth=depth, inst=inst: pipeline.analyse(
                ph, seg, depth, SceneOptions(), instances=inst), "analysis")
        row["total"] = sum(v for k, v in row.items() if not k.startswith(" "))
        for k in list(row):
            if k != "total":
                row[k + " cpu"] = CPU.get(k, float("nan"))
        row["total cpu"] = sum(CPU[k] for k in CPU if k in row)
        rows.append(row)
    return rows


def subprocess_runs(photo: Path, models: Path, repeat: int, out_dir: Path) -> list[float]:
    exe = Path(sys.executable).with_name("img2maya")
    cmd = [str(exe) if exe.exists() else "img2maya", "scene", str(photo), "-o", str(out_dir / "scene.json"),
           "--models-dir", str(models), "-q"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            print(f"img2maya scene failed ({r.returncode}): {r.stderr.strip()[-300:]}")
            return []
    return times


def server_runs(photo: Path, models: Path, repeat: int, tmp: Path) -> list[tuple[float, dict[str, float]]]:
    """(client seconds, server stage timings) of a first analyze, then of ``repeat`` never-seen photos."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT / "scripts"))
    from img2maya.client import ServerClient

    base = np.asarray(Image.open(photo).convert("RGB"))
    photos = []
    for i in range(repeat + 1):  # same pixels, other bytes (so another sha256): the cache cannot answer
        photos.append(tmp / f"server_{i}.jpg")
        Image.fromarray(base).save(photos[-1], quality=92, comment=f"img2maya bench {i}")
    env = {**os.environ, "IMG2MAYA_CACHE": str(tmp / "cache"), "IMG2MAYA_MODELS": str(models)}
    client = ServerClient(python=sys.executable, env=env, engine_root=str(ROOT), start_timeout=120)
    out = []
    try:
        client.hello()
        for p in photos:
            t = time.perf_counter()
            res = client.analyze(str(p), out_dir=str(tmp / "server_out"))
            out.append((time.perf_counter() - t, dict(res.get("timings", {}))))
    finally:
        client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--photo", default=None, help="photo to time (default: a 2 MP street photo)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-subprocess", action="store_true", help="skip the whole-process `img2maya scene` runs")
    ap.add_argument("--no-server", action="store_true", help="skip the warm-server runs")
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    models = shared / "models"
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(args.photo) if args.photo else make_photo(shared / "samples" / "street_london_bus.jpg",
                                                                Path(tmp) / "street_2mp.jpg")
        from PIL import Image

        w, h = Image.open(photo).size
        print(f"photo {photo.name}: {w}x{h} ({w * h / 1e6:.2f} MP), cpu count {os.cpu_count()}, "
              f"load average at start {os.getloadavg()[0]:.2f}\n")
        rows = in_process(photo, models, args.repeat)
        stages = [k for k in rows[0] if not k.endswith(" cpu")]
        print("| stage | cold (1st call, s) | warm (best of next, s) | warm (median, s) | warm CPU (median, s) |")
        print("|---|---|---|---|---|")
        for s in stages:
            warm = sorted(r[s] for r in rows[1:])
            cpu = sorted(r[s + " cpu"] for r in rows[1:])
            print(f"| {s} | {rows[0][s]:.3f} | {warm[0]:.3f} | {warm[len(warm) // 2]:.3f} "
                  f"| {cpu[len(cpu) // 2]:.3f} |")
        print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
              "(other jobs share the cores: wall times above it are inflated)")
        if not args.no_server:
            runs = server_runs(photo, models, args.repeat, Path(tmp))
            keys = [k for k in runs[0][1] if k != "total"] + ["total"]
            print("\n| server analyze | client (s) | " + " | ".join(keys) + " |")
            print("|---|---|" + "---|" * len(keys))
            for i, (wall, tm) in enumerate(runs):
                label = "first (after start)" if i == 0 else f"new photo #{i}"
                print(f"| {label} | {wall:.3f} | " + " | ".join(f"{tm.get(k, 0.0):.3f}" for k in keys) + " |")
            warm = sorted(w for w, _ in runs[1:])
            print(f"warm server analyze of a new photo: best {warm[0]:.3f} s, median {warm[len(warm) // 2]:.3f} s "
                  f"(client wall); load average {os.getloadavg()[0]:.2f}")
        if not args.no_subprocess:
            times = subprocess_runs(photo, models, args.repeat, Path(tmp))
            if times:
                print(f"\nwhole `img2maya scene` process, {len(times)} runs (s): "
                      + ", ".join(f"{t:.2f}" for t in times) + f"; best {min(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
