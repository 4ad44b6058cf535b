"""Server timings on a 2 MP photo: start, cold analyze (model load + networks), warm analyze of another
photo (models loaded, nothing cached), cached analyze, and regenerate (analysis only): repeated at recursion
2, the panel's slider (recursion 0 -> 1 -> 2 -> 1 after new options), a cold 0 -> 2 jump, and new options
straight at recursion 2.

    .venv/bin/python benchmarks/bench_server.py [--photo P] [--photo2 P] [--models-dir D] [--repeat N] [--code DIR]
    .venv/bin/python benchmarks/bench_server.py --regenerate-only [--repeat N] [--code DIR]
    .venv/bin/python benchmarks/bench_server.py --analysis-only [--photo P] [--repeat N] [--recursion N] [--code DIR]

--analysis-only skips the server: the networks run once in-process, then the analysis alone (what a warm
server's `analyze` does after the networks, and what `regenerate` does before writing scene.json) is timed
at recursion 0 and at --recursion, with the engine's own stages (from its progress callback).

Runs the real server through the Maya-side client (scripts/img2maya/client.py), with a fresh cache in
benchmarks/_out/cache so the first analyze is truly cold. Prints wall-clock seconds seen by the client
and the server's own stage timings. --regenerate-only: one analyze, then the regenerate series only.
--code DIR: run the server from another commit's inference_server (before/after in one session).

Regenerate series (each cycle uses a new `camera_height_m`, 1.6 + 0.001 * cycle, so that it starts with
options the server has not prepared - a depth-calibration input, a real change of the analysis):
- "new options, recursion 2": what every regenerate cost before the warm engine (prepare + 2 levels);
- slider "-> 0" (new options: prepare), then "0 -> 1", "1 -> 2", "2 -> 1" on the same options;
- "cold 0 -> 2": recursion 0 with new options, then recursion 2 (two new levels at once): the second timed;
- "new color_stat" / "new min_area_px" at recursion 0 (same camera height): the warm engine's stages that
  the change does not touch are reused (SceneEngine.stages).
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


def analysis_only(photo_path: Path, models_dir: Path, repeat: int, recursion: int, code: Path) -> int:
    """Networks once, then pipeline.analyse + the scene's JSON text, timed (best and median of `repeat`).
    `code`: the folder holding the inference_server package to time (another commit's, for a before/after)."""
    import json

    sys.path.insert(0, str(code))
    from inference_server import pipeline
    from inference_server.analysis.engine import SceneOptions
    from inference_server.imageio import load_photo
    from inference_server.inference import api

    photo = load_photo(str(photo_path))
    t = time.perf_counter()
    seg, depth = pipeline.infer(photo, str(api.DEFAULT_SEG), str(api.DEFAULT_DEPTH) if api.DEFAULT_DEPTH else None,
                                str(models_dir))
    print(f"code {Path(pipeline.__file__).parents[1]}")
    print(f"photo {photo_path.name}: {photo.rgb.shape[1]}x{photo.rgb.shape[0]}; networks {time.perf_counter() - t:.2f} s "
          f"(not timed below); python {sys.version.split()[0]}; cpus {os.cpu_count()}; load {os.getloadavg()[0]:.2f}")
    for rec in sorted({0, recursion}):
        totals: list[float] = []
        stages: dict[str, list[float]] = {}
        scene: dict = {}
        for _ in range(repeat + 1):  # the first run warms caches and is not counted
            marks: list[tuple[str, float]] = []

            def progress(stage: str, fraction: float, marks: list[tuple[str, float]] = marks) -> None:
                if not marks or marks[-1][0] != stage:
                    marks.append((stage, time.perf_counter()))

            t0 = time.perf_counter()
            scene = pipeline.analyse(photo, seg, depth, SceneOptions(recursion=rec), progress=progress)
            t1 = time.perf_counter()
            json.dumps(scene, allow_nan=False, separators=(",", ":"))  # as the server encodes it
            marks.append(("json", t1))
            marks.append(("end", time.perf_counter()))
            totals.append(marks[-1][1] - t0)
            for (a, ta), (_, tb) in zip(marks, marks[1:], strict=False):
                stages.setdefault(a, []).append(tb - ta)
        totals, stages = totals[1:], {k: v[1:] for k, v in stages.items()}

        def count(objs: list) -> int:
            return sum(1 + count(o.get("children", [])) for o in objs)

        print(f"analysis recursion={rec}: best {min(totals):.3f} s, median {statistics.median(totals):.3f} s over "
              f"{len(totals)} runs; {count(scene['objects'])} objects; stages (best): "
              + " ".join(f"{k}={min(v):.3f}" for k, v in stages.items() if k not in ("done", "end")))
    return 0


SLIDER = (0, 1, 2, 1)


def regenerate_series(client: ServerClient, ref: str, repeat: int, timed, rows: list) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """The regenerate cases of the module docstring, `repeat` cycles each; client-side seconds per case."""
    out: dict[str, list[float]] = {}
    cycle = 0

    def regen(case: str, recursion: int, counted: bool = True, **more: object) -> dict:
        res = timed(f"regenerate {case}", client.regenerate, ref=ref, recursion=recursion,
                    options={"camera_height_m": round(1.6 + 0.001 * cycle, 4), **more}, supersede=True)
        if counted:
            out.setdefault(case, []).append(rows[-1][1])
        return res

    for _ in range(repeat):
        cycle += 1
        regen("new options, recursion 2", 2)
        cycle += 1
        for a, b in zip((None, *SLIDER), SLIDER, strict=False):
            regen(f"slider -> {b}" if a is None else f"slider {a} -> {b}", b)
        cycle += 1
        regen("(cold jump: recursion 0, new options)", 0, counted=False)
        regen("cold 0 -> 2", 2)
        regen("new color_stat, recursion 0", 0, color_stat=("median", "trimmed")[cycle % 2])
        regen("new min_area_px, recursion 0", 0, min_area_px=2000 + cycle)
        res = timed("regenerate typed fov_deg, recursion 0", client.regenerate, ref=ref, recursion=0,
                    options={"camera_height_m": round(1.6 + 0.001 * cycle, 4)}, fov_deg=50.0 + 0.1 * cycle,
                    supersede=True)  # the panel's typed FOV: a new camera, the orientation refitted at it
        out.setdefault("typed fov_deg, recursion 0", []).append(rows[-1][1])
        del res
    return out


def print_series(series: dict[str, list[float]]) -> None:
    for case, times in series.items():
        print(f"regenerate {case:28s}: best {min(times):.3f} s, median {statistics.median(times):.3f} s "
              f"over {len(times)} runs")


def regenerate_only(args: argparse.Namespace, photo: Path, env: dict[str, str], root: Path) -> int:
    """One analyze (networks), then the regenerate series only, printed with the load average."""
    client = ServerClient(python=sys.executable, extra_args=args.server_arg, env=env, engine_root=str(root))
    rows: list[tuple[str, float, dict]] = []

    def timed(label: str, call, *a, **kw) -> dict:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        res = call(*a, **kw)
        rows.append((label, time.perf_counter() - t, res.get("timings", {})))
        return res

    try:
        first = timed("analyze", client.analyze, str(photo))
        load0 = os.getloadavg()[0]
        rep = []
        for _ in range(args.repeat):
            timed("regenerate repeated", client.regenerate, ref=first["id"], recursion=args.recursion)
            rep.append(rows[-1][1])
        series = {f"recursion {args.recursion} repeated": rep, **regenerate_series(client, first["id"], args.repeat,
                                                                                    timed, rows)}
    finally:
        client.close()
    print(f"code {root}; photo {photo.name}; python {sys.version.split()[0]}; cpus {os.cpu_count()}; "
          f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}; {len(first['scene']['objects'])} top-level objects")
    print_series(series)
    for label, wall, timings in rows[-12:]:
        print(f"  {label:45s} {wall:7.3f}  " + " ".join(f"{k}={v:.3f}" for k, v in timings.items()))
    return 0


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
    ap.add_argument("--analysis-only", action="store_true", help="time the analysis in-process, no server")
    ap.add_argument("--regenerate-only", action="store_true",
                    help="one analyze, then only the regenerate series (repeated, slider, cold jump, new options)")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="folder holding the inference_server to time, e.g. an older "
                         "commit's from `git archive COMMIT inference_server | tar -x -C DIR` (default: this checkout)")
    args = ap.parse_args()
    if args.analysis_only:
        return analysis_only(two_megapixel(args.photo, OUT / "bench_2mp_a.jpg"), args.models_dir, args.repeat,
                             args.recursion, args.code)

    photo = two_megapixel(args.photo, OUT / "bench_2mp_a.jpg")
    photo2 = two_megapixel(args.photo2, OUT / "bench_2mp_b.jpg")
    photo3 = two_megapixel(args.photo3, OUT / "bench_2mp_c.jpg")
    cache = OUT / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, IMG2MAYA_CACHE=str(cache), IMG2MAYA_MODELS=str(args.models_dir))
    root = args.code.resolve()
    os.chdir(root)  # `python -m` puts the working folder first on sys.path: the code timed is root's
    if args.regenerate_only:
        return regenerate_only(args, photo, env, root)
    client = ServerClient(python=sys.executable, extra_args=args.server_arg, env=env, engine_root=str(root))
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
        series = regenerate_series(client, first["id"], args.repeat, timed, rows)
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
    print(f"regenerate recursion={args.recursion}, repeated: median {statistics.median(regen):.3f} s, "
          f"min {min(regen):.3f} s over {len(regen)} runs (target <= 0.2 s)")
    print_series(series)
    print(f"cancel during the segmentation network: 'cancelled' received {cancel_latency * 1000:.1f} ms after cancel()")
    print(f"objects in the scene: {len(first['scene'].get('objects', []))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
