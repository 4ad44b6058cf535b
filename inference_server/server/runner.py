"""What a job does: `analyze` (network outputs, cached; the analysis; the files) and `regenerate` (the
analysis again on the cached network output: never a network run)."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import checks
from .adapter import Pipeline, Progress, Resegment
from .checks import RequestError
from .files import check_out_dir, write_network_outputs, write_outputs
from .jobs import Cancelled, Job, JobBoard
from .warm import EngineKey, ResegmentMemo, WarmEngines, options_key
from .wire import encode_scene, one_line


class Runner:
    """The worker's state between jobs: photos loaded, what each finished job analysed (for a
    regenerate's `ref`), the re-segmentation answers and the warm engines."""

    def __init__(self, pipeline: Pipeline, cache: Any, board: JobBoard, engines: WarmEngines,
                 photo_memory: int = 2) -> None:
        self.pipeline, self.cache, self.board, self.engines = pipeline, cache, board, engines
        self._photos: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._photo_memory = photo_memory
        self._done: OrderedDict[str, dict[str, Any]] = OrderedDict()  # request id / "sha:" + sha -> context
        self._memo = ResegmentMemo()

    def run(self, job: Job) -> dict[str, Any]:
        return self.analyze(job) if job.type == "analyze" else self.regenerate(job)

    def analyze(self, job: Job) -> dict[str, Any]:
        """Network outputs (cached) + analysis + output files."""
        req, timings = job.request, {}
        progress = self.board.progress(job)
        t0 = time.perf_counter()
        progress("load", 0.0)
        photo = self._load_photo(str(req["photo"]))
        timings["load"] = time.perf_counter() - t0
        checks.check_focal(photo, req)
        job.check()
        seg_model, depth_model = self._models(req)
        inst_model = self.pipeline.resolve_instances(req.get("instances_model"))
        focal_px, fov_deg = checks.networks_camera(req)
        key = self._key(photo, seg_model, depth_model, focal_px, fov_deg, inst_model)
        t = time.perf_counter()
        entry = self.cache.get(key)
        cached = entry is not None
        stored = None
        if entry is not None:
            seg, depth, instances = entry.seg, entry.depth, entry.instances
            inst_note = entry.meta.get("instances_warning")
        else:
            progress("inference", 0.0)
            seg, depth = self.pipeline.infer(photo, seg_model, depth_model, progress, focal_px, fov_deg)
            instances, inst_note = (None, None) if inst_model is None else self.pipeline.detect_instances(
                photo, inst_model, explicit=checks.explicit_instances(req))
            # Cached whatever happens next (a finished network output is never thrown away), on a second
            # thread so that the disk write overlaps the analysis; joined before this job ends.
            meta = {"photo": str(req["photo"]), "sha256": photo.sha256}
            if inst_note:
                meta["instances_warning"] = inst_note
            stored = Background(self.cache.put, key, seg, depth, meta, instances)
        timings["inference"] = time.perf_counter() - t
        try:
            job.check()
            ctx = {"photo": str(req["photo"]), "key": key, "sha256": photo.sha256, "seg_model": seg_model,
                   "depth_model": depth_model, "instances_model": inst_model}
            resegment = self._memo.recording(key, self.pipeline.resegmenter(seg_model))
            result = self._finish(job, photo, seg, depth, ctx, timings, t0, cached=cached,
                                  resegment=resegment, instances=instances, note=inst_note)
        except BaseException:
            if stored is not None:
                stored.join(raise_error=False)
            raise
        if stored is not None:
            stored.join()
            result["timings"]["cache_write"] = round(stored.seconds, 4)
            result["timings"]["total"] = round(time.perf_counter() - t0, 4)  # the wait included
        return result

    def regenerate(self, job: Job) -> dict[str, Any]:
        """Analysis only, on the cached network output: never runs a network."""
        req, timings = job.request, {}
        self.board.progress(job)("load", 0.0)
        t0 = time.perf_counter()
        ctx = self._find_context(req)
        photo = self._load_photo(ctx["photo"])
        timings["load"] = time.perf_counter() - t0
        checks.check_focal(photo, req)
        if photo.sha256 != ctx["sha256"]:
            raise RequestError("not_cached", f"photo {ctx['photo']} changed since it was analysed: "
                                             "run analyze again")
        t = time.perf_counter()
        entry = self.cache.get(ctx["key"])
        if entry is None:
            raise RequestError("not_cached", "no cached network output for this photo: run analyze first")
        timings["inference"] = time.perf_counter() - t
        return self._finish(job, photo, entry.seg, entry.depth, ctx, timings, t0, cached=True,
                            resegment=self._memo.replaying(ctx["key"]), instances=entry.instances,
                            note=entry.meta.get("instances_warning"))

    # ------------------------------------------------------------------------------------ inputs
    def _load_photo(self, path: str) -> Any:
        """Load (or reuse) a photo; the key includes size and mtime so an edited file is re-read."""
        from ..userpaths import check_input_file

        check_input_file(path, "photo")  # one line for a missing file, a symlink loop, a folder, ...
        try:
            st = os.stat(path)
        except OSError as exc:
            raise UserError(f"cannot read photo {path}: {exc.strerror}") from None
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
        photo = self._photos.get(key)
        if photo is None:
            photo = self.pipeline.load_photo(path)
            self._photos[key] = photo
            while len(self._photos) > self._photo_memory:
                self._photos.popitem(last=False)
        else:
            self._photos.move_to_end(key)
        return photo

    def _models(self, req: dict[str, Any]) -> tuple[str, str | None]:
        seg_default, depth_default = self.pipeline.default_models()
        seg = req.get("seg_model") or seg_default
        depth = req.get("depth_model") or depth_default
        if depth in ("none", ""):
            depth = None
        return str(seg), (str(depth) if depth is not None else None)

    def _key(self, photo: Any, seg_model: str, depth_model: str | None, focal_px: float | None,
             fov_deg: float | None, instances_model: str | None = None) -> str:
        from ..cache import cache_key

        options = self.pipeline.infer_options(photo, depth_model, focal_px, fov_deg)
        return cache_key(photo.sha256, seg_model, depth_model, options, instances_model)

    def _find_context(self, req: dict[str, Any]) -> dict[str, Any]:
        """What a regenerate refers to: a previous request id (`ref`), a photo hash or a photo path."""
        ref = req.get("ref")
        if ref is not None:
            ctx = self._done.get(str(ref))
            if ctx is None:
                raise RequestError("not_cached", f"unknown request id {ref!r}: run analyze first")
            return ctx
        sha = req.get("photo_sha256")
        if sha is not None:
            ctx = self._done.get("sha:" + str(sha))
            if ctx is None:
                raise RequestError("not_cached", f"photo {str(sha)[:12]}... was not analysed by this server")
            return ctx
        photo = self._load_photo(str(req["photo"]))
        seg_model, depth_model = self._models(req)
        inst_model = self.pipeline.resolve_instances(req.get("instances_model"))
        earlier = self._done.get("sha:" + photo.sha256)
        models = (seg_model, depth_model, inst_model)
        if earlier is not None and (earlier["seg_model"], earlier["depth_model"],
                                    earlier.get("instances_model")) == models:
            # The network output of this server's last analyze of the photo, whatever focal it had.
            return {**earlier, "photo": str(req["photo"])}
        ctx = {"photo": str(req["photo"]), "sha256": photo.sha256, "seg_model": seg_model,
               "depth_model": depth_model, "instances_model": inst_model}
        # Analysed by an earlier server (the cache is on disk): with this request's focal, or the default.
        focal_px, fov_deg = checks.num(req, "focal_px"), checks.num(req, "fov_deg")
        keys = [self._key(photo, seg_model, depth_model, focal_px, fov_deg, inst_model),
                self._key(photo, seg_model, depth_model, None, None, inst_model)]
        for key in keys:
            if self.cache.get(key) is not None:
                return {**ctx, "key": key}
        return {**ctx, "key": keys[0]}

    # ------------------------------------------------------------------------------ the analysis
    def _finish(self, job: Job, photo: Any, seg: Any, depth: Any, ctx: dict[str, Any],
                timings: dict[str, float], t0: float, *, cached: bool, resegment: Resegment | None,
                instances: Any = None, note: str | None = None) -> dict[str, Any]:
        req = job.request
        progress = self.board.progress(job)
        options = self.pipeline.make_options(checks.recursion(req), dict(req.get("options") or {}))
        job.check()
        # A regenerate writes where the analyze it refers to wrote, unless told otherwise.
        out_dir = Path(req.get("out_dir") or ctx.get("out_dir") or self.cache.out_dir_for(ctx["sha256"][:16]))
        out_dir = out_dir.expanduser()
        check_out_dir(out_dir, photo, options)
        ctx = {**ctx, "out_dir": str(out_dir)}
        # The image files depend on the network output only: encode them on a second thread while the
        # analysis runs (PNG encoding and numpy release the GIL), and wait for them before answering,
        # so every file named in the result exists when the client reads it.
        with self.cache.pinned(out_dir):  # the cache entry may be stored (and evict) meanwhile
            images = Background(write_network_outputs, out_dir, photo, seg, depth, ctx["key"])
            t = time.perf_counter()
            try:
                progress("analysis", 0.0)
                scene = self._analyse(req, photo, seg, depth, options, ctx["key"], progress, resegment,
                                      timings, instances)
                if note:
                    scene = {**scene, "warnings": [*scene.get("warnings", []), note]}
                timings["analysis"] = time.perf_counter() - t
                job.check()
            except BaseException:
                images.join(raise_error=False)  # the next job must not race this one's files
                raise
            t = time.perf_counter()
            try:
                images.join()
                progress("write", 0.0)
                scene_text = encode_scene(scene)  # once: the same text goes into scene.json and on the wire
                files = write_outputs(out_dir, photo, seg, depth, scene_text, ctx["key"])  # images are fresh
            except OSError as exc:  # out_dir unusable after all (a full disk, /proc, a read-only mount)
                why = exc.strerror or one_line(exc)
                raise UserError(f"cannot write into out_dir {out_dir}: {why}") from None
            if out_dir.parent == self.cache.out_root:
                self.cache.touch_out_dir(out_dir)
        timings["write"] = time.perf_counter() - t
        timings["images"] = images.seconds
        timings["total"] = time.perf_counter() - t0
        progress("done", 1.0)
        self._remember(job.id, ctx)
        return {"type": "result", "id": job.id, "scene": scene, "files": files, "cached": cached,
                "photo_sha256": ctx["sha256"], "look": req.get("look", "color"),
                "timings": {k: round(v, 4) for k, v in timings.items()},
                "_scene_text": scene_text}

    def _analyse(self, req: dict[str, Any], photo: Any, seg: Any, depth: Any, options: Any, key: str,
                 progress: Progress, resegment: Resegment | None, timings: dict[str, float],
                 instances: Any = None) -> dict[str, Any]:
        """The scene, from a warm prepared engine when one matches (same network output, photo path,
        camera and options but `recursion`), else from a new one, kept for the next request."""
        focal_px, fov_deg = checks.num(req, "focal_px"), checks.num(req, "fov_deg")
        if self.engines.count <= 0:
            return self.pipeline.analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                         progress=progress, resegment=resegment, instances=instances)
        recursion = checks.recursion(req)
        ekey = EngineKey(key, str(photo.path), options_key(options), focal_px, fov_deg)
        engine = self.engines.get(ekey)
        if engine is None:
            t = time.perf_counter()
            # a cancel raises here: nothing half-made is kept
            engine = self.pipeline.prepare(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                           progress=progress, resegment=resegment, instances=instances,
                                           sibling=self.engines.sibling(ekey))
            timings["prepare"] = time.perf_counter() - t
        try:
            scene = self.pipeline.assemble(engine, recursion, progress=progress, resegment=resegment)
        except Cancelled:  # the engine stays consistent: children are published per node when complete
            self.engines.keep(ekey, engine, recursion)
            raise
        except BaseException:
            self.engines.drop(ekey)  # an engine that failed is not trusted again
            raise
        self.engines.keep(ekey, engine, recursion)
        return scene

    def _remember(self, req_id: Any, ctx: dict[str, Any]) -> None:
        self._done[str(req_id)] = ctx
        self._done["sha:" + ctx["sha256"]] = ctx
        while len(self._done) > 256:
            self._done.popitem(last=False)


class Background:
    """``fn(*args)`` on a daemon thread; ``join()`` waits and re-raises its exception; ``seconds``: its
    time."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.seconds = 0.0
        self._error: BaseException | None = None

        def run() -> None:
            t = time.perf_counter()
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the joining thread
                self._error = exc
            self.seconds = time.perf_counter() - t

        self._thread = threading.Thread(target=run, name="img2maya-images", daemon=True)
        self._thread.start()

    def join(self, raise_error: bool = True) -> None:
        self._thread.join()
        if self._error is not None and raise_error:
            error, self._error = self._error, None
            raise error
