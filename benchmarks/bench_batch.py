"""Batch throughput: photos per minute in one process, with `--workers 2` and with `--ray` (local), memory
per worker, and the time to resume a finished batch.

Photos: `--photos` (default 120) made from the photos in ../shared/samples (every *.jpg / *_rgb.png that is
not a label or depth map): crops (60-100 % of each side, at a seeded random place), resizes (long side
384-1024 px) and mirror flips, written as JPEG into a temporary folder (or --keep DIR). Each mode runs the
real command line in a subprocess, into its own empty output folder:

    img2maya scene PHOTOS/ -o OUT/ -q [--workers 2 | --ray] --models-dir ../shared/models

and reports: wall time of the whole command (start-up, worker start, Ray start and model loading
included), photos per minute on that wall time, the steady rate (photos / the manifest's run seconds
minus the first photo's completion, i.e. after every worker is warm), and each process's peak resident
memory (VmHWM, sampled from /proc every 0.2 s: the driver, each worker, Ray's own processes). Then the
resume: the same command again on the finished one-process batch (everything up to date), timed `--resume-runs`
times (median). `--threads-check` adds `--workers 2` with both networks on 2 threads each
(IMG2MAYA_BATCH_THREADS=2; default is the cores shared out: 1 each on 2 cores), to say how much of the
workers' gain is the networks' own threading.

    .venv/bin/python benchmarks/bench_batch.py [--photos 120] [--modes one,workers2,ray] [--threads-check]
        [--keep DIR] [--json FILE]

Linux only (/proc). Needs ../shared (samples, models) and, for --ray, `pip install -e ".[ray]"`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMG2MAYA_SHARED", ROOT.parent / "shared"))
MODES = {"one": [], "workers2": ["--workers", "2"], "ray": ["--ray"]}


def source_photos(samples: Path) -> list[Path]:
    out = []
    for p in sorted(samples.iterdir()):
        name = p.name.lower()
        if any(k in name for k in ("label", "depth", "_gt", "mask", "disp")):
            continue
        if name.endswith(".jpg") or name.endswith("_rgb.png") or name.endswith("leftimg8bit.png"):
            out.append(p)
    return out


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` JPEG photos: random crops, resizes and flips of the sample photos."""
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in source_photos(SHARED / "samples")]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        im = sources[k % len(sources)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = im.crop((x, y, x + cw, y + ch))
        long_side = rng.randint(384, 1024)
        s = long_side / max(cw, ch)
        crop = crop.resize((max(16, round(cw * s)), max(16, round(ch * s))), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            crop = ImageOps.mirror(crop)
        p = folder / f"photo_{k:04d}.jpg"
        crop.save(p, quality=90)
        paths.append(p)
    return paths


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _peak_and_name(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            hwm = next((int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")), 0)
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    return hwm, cmd


def _kind(cmd: str, pid: int, root: int) -> str:
    if pid == root:
        return "driver"
    if "multiprocessing.spawn" in cmd or "multiprocessing.resource_tracker" in cmd:
        return "resource tracker" if "resource_tracker" in cmd else "worker"
    if cmd.startswith("ray::"):
        return "ray worker"
    return "ray system"


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, int, str, dict[int, tuple[str, int]]]:
    """(wall seconds, status, stderr, {pid: (kind, peak KiB)}) of `img2maya ARGS`."""
    exe = Path(sys.executable).with_name("img2maya")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "inference_server.cli"]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*cmd, *args], env=env, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, tuple[str, int]] = {}
    while proc.poll() is None:
        for pid in _tree(proc.pid):
            got = _peak_and_name(pid)
            if got is not None and got[0] > 0:
                kind = _kind(got[1], pid, proc.pid)
                peaks[pid] = (kind, max(got[0], peaks.get(pid, (kind, 0))[1]))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    return wall, proc.returncode, err, peaks


def _memory(peaks: dict[int, tuple[str, int]]) -> dict[str, list[float]]:
    by: dict[str, list[float]] = {}
    for kind, kib in peaks.values():
        by.setdefault(kind, []).append(round(kib / 1024, 1))
    return {k: sorted(v, reverse=True) for k, v in by.items()}


def steady_rate(manifest: Path) -> float | None:
    """Photos per minute once the first photo is done (every worker warm): from the manifest's times."""
    doc = json.loads(manifest.read_text())
    from datetime import datetime

    times = sorted(datetime.fromisoformat(e["finished"]).timestamp() for e in doc["photos"].values()
                   if e["status"] == "ok")
    if len(times) < 10:
        return None
    k = max(1, len(times) // 10)  # skip the warm-up tenth; the finished times are whole seconds
    span = times[-1] - times[k]
    return 60.0 * (len(times) - 1 - k) / span if span > 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--modes", default="one,workers2,ray")
    ap.add_argument("--threads-check", action="store_true")
    ap.add_argument("--resume-runs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="run every mode this many times, interleaved; the best "
                    "round is reported (the machine is shared: the best is the least disturbed)")
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    if not (SHARED / "samples").is_dir() or not (SHARED / "models").is_dir():
        print(f"needs {SHARED}/samples and {SHARED}/models", file=sys.stderr)
        return 2
    work = a.keep or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    photos = work / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    made = make_photos(photos, a.photos)
    mp = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in made) / len(made) / 1e6
    print(f"{len(made)} photos in {photos} (mean {mp:.2f} MP); {os.cpu_count()} cores")
    env = dict(os.environ, IMG2MAYA_MODELS=str(SHARED / "models"))
    modes = [m for m in a.modes.split(",") if m]
    runs = [(m, MODES[m], {}) for m in modes]
    if a.threads_check:
        runs.append(("workers2_threads2", MODES["workers2"], {"IMG2MAYA_BATCH_THREADS": "2"}))
    report: dict[str, dict[str, object]] = {}
    for round_no, (name, flags, extra) in enumerate(runs * a.rounds):
        out = work / f"out_{name}"
        shutil.rmtree(out, ignore_errors=True)
        wall, rc, err, peaks = run_cli(["scene", str(photos), "-o", f"{out}/", "-q", *flags], {**env, **extra})
        if rc != 0:
            print(f"{name}: exit {rc}\n{err[-2000:]}", file=sys.stderr)
            report[name] = {"status": rc}
            continue
        doc = json.loads((out / "img2maya-batch.json").read_text())
        ok = sum(e["status"] == "ok" for e in doc["photos"].values())
        row = {"wall_s": round(wall, 1), "ok": ok, "photos_per_min": round(60 * ok / wall, 1),
               "steady_photos_per_min": steady_rate(out / "img2maya-batch.json"),
               "mean_photo_s": round(statistics.mean(e["seconds"] for e in doc["photos"].values()), 3),
               "peak_rss_mib": _memory(peaks)}
        previous = report.get(name, {})
        row["rounds_photos_per_min"] = [*previous.get("rounds_photos_per_min", []), row["photos_per_min"]]  # type: ignore[list-item]
        if not previous.get("photos_per_min") or row["photos_per_min"] > previous["photos_per_min"]:  # type: ignore[operator]
            report[name] = row
        else:
            previous["rounds_photos_per_min"] = row["rounds_photos_per_min"]
        print(f"[round {round_no // len(runs) + 1}] {name:>18}: {wall:7.1f} s  {row['photos_per_min']:6.1f} photos/min (steady "
              f"{row['steady_photos_per_min'] or float('nan'):.1f})  mean {row['mean_photo_s']} s/photo  "
              f"peak RSS MiB {row['peak_rss_mib']}")
    base = report.get("one", {}).get("photos_per_min")
    for name in report:
        print(f"{name}: best {report[name].get('photos_per_min')} photos/min of rounds "
              f"{report[name].get('rounds_photos_per_min')}")
    for name in report:
        if base and name != "one" and report[name].get("photos_per_min"):
            print(f"{name} / one: {report[name]['photos_per_min'] / base:.2f}x")  # type: ignore[operator]
    if "workers2" in report and "ray" in report and report["ray"].get("photos_per_min"):
        print(f"ray / workers2: {report['ray']['photos_per_min'] / report['workers2']['photos_per_min']:.2f}")  # type: ignore[operator]
    first = next((work / f"out_{m}" for m in modes if (work / f"out_{m}" / "img2maya-batch.json").exists()), None)
    if first is not None:
        times = []
        for _ in range(a.resume_runs):
            wall, rc, err, _peaks = run_cli(["scene", str(photos), "-o", f"{first}/", "-q"], env)
            times.append(wall)
        doc = json.loads((first / "img2maya-batch.json").read_text())
        report["resume"] = {"seconds": round(statistics.median(times), 2), "all_s": [round(t, 2) for t in times],
                            "skipped": doc["run"].get("skipped"), "photos": len(made)}
        print(f"resume of a finished batch of {len(made)}: {statistics.median(times):.2f} s (median of "
              f"{len(times)}; {doc['run'].get('skipped')} up to date)")
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))
    if a.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
