"""Server timings on a 2 MP photo: start, cold analyze (model load + networks), warm analyze of another
photo (models loaded, nothing cached), cached analyze, and regenerate with recursion 2 (analysis only).

    .venv/bin/python benchmarks/bench_server.py [--photo P] [--photo2 P] [--models-dir D] [--repeat N]

Runs the real server through the Maya-side client (scripts/img2maya/client.py), with a fresh cache in
benchmarks/_out/cache so the first analyze is truly cold. Prints wall-clock seconds seen by the client
and the server's own stage timings.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMG2MAYA_SHARED", ROOT.parent / "shared"))
OUT = ROOT / "benchmarks" / "_out"
sys.path.insert(0, str(ROOT / "scripts"))

from img2maya.client import ServerClient  # noqa: E402


def two_megapixel(src: Path, dst: Path) -> Path:
    """The photo resized to ~2 MP (aspect kept), saved as a high-quality JPEG."""
    from PIL import Image

    with Image.open(src) as im:
        im = im.convert("RGB")
        scale = (2_000_000 / (im.width * im.height)) ** 0.5
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.save(dst, quality=95)
    return dst


def measure_cancel(client: ServerClient, photo: Path) -> float:
    """Seconds from cancel() to the JobCancelled of an analyze cancelled 0.3 s into its networks."""
    import threading

    from img2maya.client import JobCancelled

    sent: list[float] = []

    def on_progress(stage: str, fraction: float) -> None:
        if stage == "segmentation" and not sent:
            def later() -> None:
                time.sleep(0.3)
                sent.append(time.perf_counter())
                client.cancel()
            sent.append(0.0)
            threading.Thread(target=later, daemon=True).start()

    try:
        client.analyze(str(photo), on_progress=on_progress)
    except JobCancelled:
        return time.perf_counter() - sent[-1]
    raise RuntimeError("the analyze finished before the cancel reached it")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=SHARED / "samples" / "street_london_bus.jpg")
    ap.add_argument("--photo2", type=Path, default=SHARED / "samples" / "indoor_room_windows.jpg")
    ap.add_argument("--photo3", type=Path, default=SHARED / "samples" / "indoor_classroom_nyu.jpg",
                    help="photo analysed and cancelled mid-network (cancel latency)")
    ap.add_argument("--models-dir", type=Path, default=SHARED / "models")
    ap.add_argument("--repeat", type=int, default=5, help="regenerate runs (median reported)")
    ap.add_argument("--recursion", type=int, default=2)
    ap.add_argument("--server-arg", action="append", default=[], help="extra server argument (repeatable)")
    args = ap.parse_args()

    photo = two_megapixel(args.photo, OUT / "bench_2mp_a.jpg")
    photo2 = two_megapixel(args.photo2, OUT / "bench_2mp_b.jpg")
    photo3 = two_megapixel(args.photo3, OUT / "bench_2mp_c.jpg")
    cache = OUT / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, IMG2MAYA_CACHE=str(cache), IMG2MAYA_MODELS=str(args.models_dir))
    client = ServerClient(python=sys.executable, extra_args=args.server_arg, env=env, engine_root=str(ROOT))
    rows: list[tuple[str, float, dict]] = []

    def timed(label: str, call, *a, **kw) -> dict:
        t = time.perf_counter()
        res = call(*a, **kw)
        rows.append((label, time.perf_counter() - t, res.get("timings", {})))
        return res

    try:
        timed("start + hello", client.hello)
        first = timed("analyze cold (load models + networks)", client.analyze, str(photo))
        timed("analyze warm, other photo (networks)", client.analyze, str(photo2))
        timed("analyze same photo (cache hit)", client.analyze, str(photo))
        regen = []
        for i in range(args.repeat):
            res = timed(f"regenerate recursion={args.recursion} #{i + 1}", client.regenerate,
                        ref=first["id"], recursion=args.recursion)
            regen.append(rows[-1][1])
        assert res["cached"] is True
        cancel_latency = measure_cancel(client, photo3)
        timed("analyze after a cancel (networks)", client.analyze, str(photo3))
    finally:
        client.close()

    from PIL import Image

    with Image.open(photo) as im:
        size = f"{im.width}x{im.height} ({im.width * im.height / 1e6:.2f} MP)"
    print(f"photo {args.photo.name} -> {size}; python {sys.version.split()[0]}; cpus {os.cpu_count()}")
    print(f"{'step':45s} {'client s':>9s}  server stages (s)")
    for label, wall, timings in rows:
        stages = " ".join(f"{k}={v:.3f}" for k, v in timings.items())
        print(f"{label:45s} {wall:9.3f}  {stages}")
    print(f"regenerate recursion={args.recursion}: median {statistics.median(regen):.3f} s, "
          f"min {min(regen):.3f} s over {len(regen)} runs (target <= 0.2 s)")
    print(f"cancel during the segmentation network: 'cancelled' received {cancel_latency * 1000:.1f} ms after cancel()")
    print(f"objects in the scene: {len(first['scene'].get('objects', []))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
