"""A fake pipeline for the server/client tests (no tests here; imported by them and by the server
subprocess through the hidden `--pipeline test_server_support:FakePipeline` flag).

It behaves like the real pipeline where the server cares: it counts network runs in the file named by
$IMG2MAYA_FAKE_COUNTER (one line per `infer`), can be slowed down ($IMG2MAYA_FAKE_SLOW seconds of
"inference", reporting progress every 20 ms; $IMG2MAYA_FAKE_BLOCK seconds without any) and returns a small
scene that echoes the options. Its `prepare`/`assemble` (the server's warm path) are `analyse` in two steps.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference.types import DepthMap, Segmentation

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
FAKE = "test_server_support:FakePipeline"


class FakePipeline:
    def load_photo(self, path: str) -> Any:
        from PIL import Image

        data = Path(path).read_bytes()
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        return SimpleNamespace(path=path, rgb=rgb, full_width=w, full_height=h, scale=1.0,
                               sha256=hashlib.sha256(data).hexdigest())

    def default_models(self) -> tuple[str, str | None]:
        return "fake-seg", "fake-depth"

    def infer_options(self, photo: Any, depth_model: str | None, focal_px: float | None,
                      fov_deg: float | None) -> dict[str, Any]:
        return {"shape": list(photo.rgb.shape), "focal": focal_px if depth_model else None}

    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Any,
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]:
        counter = os.environ.get("IMG2MAYA_FAKE_COUNTER")
        if counter:
            with open(counter, "a", encoding="utf-8") as fh:
                fh.write(f"{seg_model} {depth_model}\n")
        time.sleep(float(os.environ.get("IMG2MAYA_FAKE_BLOCK", "0")))  # a network call that cannot stop
        slow = float(os.environ.get("IMG2MAYA_FAKE_SLOW", "0"))
        steps = max(1, int(slow / 0.02))
        for i in range(steps):
            progress("segmentation", i / steps)
            if slow:
                time.sleep(slow / steps)
        rgb = photo.rgb.astype(np.int32)
        labels = (rgb.sum(axis=2) * 3 // (3 * 256)).astype(np.int32)  # 3 brightness classes
        h, w = labels.shape
        far = 10.0 * (focal_px / 100.0 if focal_px else 1.0)  # a "metric" net: scale follows the focal
        depth = np.repeat(np.linspace(far, 1.0, h, dtype=np.float32)[:, None], w, axis=1)
        conf = np.full((h, w), 0.75, np.float32)
        progress("depth", 1.0)
        names = ["dark", "mid", "bright"]
        return (Segmentation(labels=labels, names=names, model=seg_model, confidence=conf),
                DepthMap(depth=depth, kind="metric", model=str(depth_model)))

    def resolve_instances(self, requested: str | None) -> str | None:
        return None if requested in (None, "none", "auto") else requested

    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]:
        return None, f"instances: fake {model} found nothing"

    def make_options(self, recursion: int, options: dict[str, Any]) -> Any:
        known = {"min_area_px", "color_stat", "depth_kind", "camera_height_m", "shapes_table"}
        unknown = set(options) - known
        if unknown:
            raise UserError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return {"recursion": recursion, **options}

    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: Any, fov_deg: Any,
                progress: Any, resegment: Any, instances: Any = None) -> dict[str, Any]:
        progress("objects", 0.5)
        if isinstance(options, dict) and options.get("shapes_table") == "PRINT":
            print("python chatter on stdout")  # what TF/LiteRT banners do
            sys.stdout.flush()
            os.write(1, b"C-level chatter on fd 1\n")
        ids, counts = np.unique(seg.labels, return_counts=True)
        objects = [{"name": seg.names[i], "pixels": int(c)} for i, c in zip(ids, counts, strict=True)]
        recursion = options["recursion"] if isinstance(options, dict) else 0
        if resegment is not None and recursion >= 1:
            for obj, i in zip(objects, ids, strict=True):
                mask = seg.labels == i
                rows, cols = np.nonzero(mask)
                box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
                crops = [(photo.rgb[box], mask[box])]
                if recursion >= 2:  # a deeper level: crops the first analyze never saw
                    crops.append((photo.rgb[box][::2, ::2], mask[box][::2, ::2]))
                answers = [resegment(rgb, m) for rgb, m in crops]
                obj["parts"] = [None if a is None else a[1] for a in answers]
        return {"schema": "img2maya/scene@1", "options": options, "focal_px": focal_px, "objects": objects,
                "depth_max": None if depth is None else float(np.max(depth.depth)),
                "resegment": resegment is not None}

    def prepare(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: Any, fov_deg: Any,
                progress: Any, resegment: Any, instances: Any = None, sibling: Any = None) -> Any:
        """A prepared "engine": what `analyse` needs but the recursion (`assemble` runs `analyse`, so a
        subclass's `analyse` serves the warm path too)."""
        return SimpleNamespace(photo=photo, seg=seg, depth=depth, options=options, focal_px=focal_px,
                               fov_deg=fov_deg, instances=instances, sibling=sibling)

    def assemble(self, engine: Any, recursion: int, *, progress: Any, resegment: Any) -> dict[str, Any]:
        options = engine.options
        if isinstance(options, dict):
            options = {**options, "recursion": recursion}
        return self.analyse(engine.photo, engine.seg, engine.depth, options, focal_px=engine.focal_px,
                            fov_deg=engine.fov_deg, progress=progress, resegment=resegment,
                            instances=engine.instances)

    def resegmenter(self, seg_model: str) -> Any:
        """With $IMG2MAYA_FAKE_RESEGMENT set, a "network" on crops that counts its runs too."""
        if not os.environ.get("IMG2MAYA_FAKE_RESEGMENT"):
            return None

        def resegment(crop_rgb: np.ndarray, crop_mask: np.ndarray) -> Any:
            counter = os.environ.get("IMG2MAYA_FAKE_COUNTER")
            if counter:
                with open(counter, "a", encoding="utf-8") as fh:
                    fh.write(f"resegment {crop_rgb.shape}\n")
            return np.zeros(crop_mask.shape, np.int32), [f"part{crop_rgb.shape[0]}x{crop_rgb.shape[1]}"]

        return resegment

    def models(self) -> dict[str, Any]:
        return {"defaults": {"seg": "fake-seg", "depth": "fake-depth"}, "models": [{"id": "fake-seg"}]}


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a fake-pipeline server subprocess: the tests folder importable, a private cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
    env["IMG2MAYA_CACHE"] = str(tmp_path / "cache")
    env["IMG2MAYA_FAKE_COUNTER"] = str(tmp_path / "network_runs.txt")
    env.update(extra)
    return env


def network_runs(tmp_path: Path) -> int:
    path = tmp_path / "network_runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def make_photo(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def start_server(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "inference_server", "--pipeline", FAKE, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=server_env(tmp_path, **env), cwd=str(ROOT))


class Wire:
    """Talk to a server subprocess line by line, with timeouts (a reader thread feeds a queue)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        import json
        import queue
        import threading

        self.proc = proc
        self._json = json
        self.lines: queue.Queue[Any] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                self.lines.put(raw)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        data = message if isinstance(message, bytes) else (self._json.dumps(message) + "\n").encode()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read(self, timeout: float = 20.0) -> dict[str, Any]:
        raw = self.lines.get(timeout=timeout)
        assert raw is not None, "server closed stdout"
        return self._json.loads(raw)

    def until(self, kind: str, req_id: Any,
              timeout: float = 20.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read until a message of `kind` for `req_id`; returns it and everything read before."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(max(0.1, deadline - time.monotonic()))
            if msg.get("type") == kind and msg.get("id") == req_id:
                return msg, seen
            if msg.get("id") == req_id and msg.get("type") in ("result", "error", "cancelled"):
                raise AssertionError(f"expected {kind!r} for {req_id!r}, the request ended with {msg}")
            seen.append(msg)

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send({"id": "bye", "type": "shutdown"})
            except OSError:
                pass
        try:
            rc = self.proc.wait(timeout=10)
            assert self.proc.stderr is not None
            self.stderr = self.proc.stderr.read().decode("utf-8", "replace")
            return rc
        finally:
            for fh in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if fh:
                    fh.close()
