"""The local inference server: newline-delimited JSON over stdin/stdout (see docs/PROTOCOL.md).

Why a subprocess: Maya's Python cannot host torch/TensorFlow/LiteRT reliably (different Python,
clashing Qt/OpenSSL/libstdc++), so Maya starts this server under the system Python, once, and keeps
it: models stay warm between requests, network outputs are cached (inference_server.cache), and
`regenerate` re-runs only the cheap analysis when the user changes options.

Threads: the reader (main thread) parses requests and answers `hello`/`cancel`/`shutdown` at once;
jobs (`analyze`, `regenerate`) go to a FIFO served by one worker thread, so a `cancel` is read while a
job runs. Cancellation is cooperative: the worker checks a flag in every progress callback and between
stages and raises `Cancelled`.

stdout carries protocol lines only. `main()` duplicates the real stdout for the protocol and points
fd 1 at stderr, so anything a library prints (TF/LiteRT banners, print() calls) goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from . import SCHEMA_ID, __version__
from .errors import UserError
from .limits import REQUEST_MAX_BYTES, REQUEST_MAX_DEPTH

PROTOCOL_VERSION = 1
JOB_TYPES = ("analyze", "regenerate")
_PROGRESS_INTERVAL_S = 0.05
ENGINE_MAX_BYTES = 768 * 1024**2  # prepared engines kept warm: at most this much memory (estimated)


class Cancelled(Exception):
    """Raised inside a job when its cancel flag is set (checked in progress callbacks and between stages)."""


class RequestError(Exception):
    """A request the server refuses, with a machine-readable code (sent as an `error` reply)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
        self.code = code


class Pipeline(Protocol):
    """What the server needs from the engine. `RealPipeline` adapts inference_server.pipeline; tests
    inject a fake through `Server(pipeline=...)` or the hidden `--pipeline module:factory` flag."""

    def load_photo(self, path: str) -> Any: ...
    def default_models(self) -> tuple[str, str | None]: ...
    def infer_options(self, photo: Any, depth_model: str | None, focal_px: float | None,
                      fov_deg: float | None) -> dict[str, Any]: ...
    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Callable[[str, float], None],
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]: ...
    def resolve_instances(self, requested: str | None) -> str | None: ...
    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]: ...
    def make_options(self, recursion: int, options: dict[str, Any]) -> Any: ...
    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Callable[[str, float], None],
                resegment: Callable[..., Any] | None, instances: Any = None) -> dict[str, Any]: ...
    def resegmenter(self, seg_model: str) -> Callable[..., Any] | None: ...
    def models(self) -> dict[str, Any]: ...


class RealPipeline:
    """The engine's own pipeline, imported lazily so `hello` answers before any framework loads."""

    def __init__(self, models_dir: str | None = None) -> None:
        self.models_dir = models_dir

    def load_photo(self, path: str) -> Any:
        from .imageio import load_photo

        return load_photo(path)

    def default_models(self) -> tuple[str, str | None]:
        from .inference import api

        return str(api.DEFAULT_SEG), (str(api.DEFAULT_DEPTH) if api.DEFAULT_DEPTH else None)

    def infer_options(self, photo: Any, depth_model: str | None, focal_px: float | None,
                      fov_deg: float | None) -> dict[str, Any]:
        """What the networks' output depends on besides photo and models: the analysed size (set by
        load_photo's downscale) and, with a depth model, the focal length it is given (a metric
        model's scale follows it)."""
        opts: dict[str, Any] = {"shape": list(photo.rgb.shape)}
        if depth_model is not None:
            from . import pipeline

            opts["depth_focal_px"] = round(float(pipeline.intrinsics(photo, focal_px=focal_px,
                                                                     fov_deg=fov_deg).focal_px), 2)
        return opts

    def infer(self, photo: Any, seg_model: str, depth_model: str | None, progress: Callable[[str, float], None],
              focal_px: float | None = None, fov_deg: float | None = None) -> tuple[Any, Any]:
        from . import pipeline

        return pipeline.infer(photo, seg_model, depth_model, models_dir=self.models_dir, progress=progress,
                              focal_px=focal_px, fov_deg=fov_deg)

    def resolve_instances(self, requested: str | None) -> str | None:
        """The instance model an `instances_model` field means (None: none runs): pipeline.resolve_instances."""
        from . import pipeline

        return pipeline.resolve_instances(requested, self.models_dir)

    def detect_instances(self, photo: Any, model: str, *, explicit: bool) -> tuple[Any, str | None]:
        """(instances, warning): an explicit model's problem is a UserError, the default's a warning."""
        from . import pipeline

        return pipeline.detect_instances(photo, model, self.models_dir, explicit=explicit)

    def make_options(self, recursion: int, options: dict[str, Any]) -> Any:
        import dataclasses

        from .analysis.engine import SceneOptions

        known = {f.name: f for f in dataclasses.fields(SceneOptions)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise RequestError("bad_request", f"unknown option(s): {', '.join(unknown)}; "
                                              f"known: {', '.join(sorted(known))}")
        if options.get("shapes_table") is not None:  # checked now: a bad table is one line, never internal
            from .shapes_input import check_shapes_table

            check_shapes_table(options["shapes_table"])
        if "camera_height_m" in options:  # a height the user gives is the height, not a prior
            options = {"camera_height_from_objects": False, **options}
        try:
            return SceneOptions(**{**options, "recursion": recursion})
        except (TypeError, ValueError) as exc:
            raise RequestError("bad_request", f"bad options: {exc}") from None

    def analyse(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Callable[[str, float], None],
                resegment: Callable[..., Any] | None, instances: Any = None) -> dict[str, Any]:
        from . import pipeline

        return pipeline.analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                progress=progress, resegment=resegment, instances=instances)

    def prepare(self, photo: Any, seg: Any, depth: Any, options: Any, *, focal_px: float | None,
                fov_deg: float | None, progress: Callable[[str, float], None],
                resegment: Callable[..., Any] | None, stages: dict[Any, Any] | None = None,
                instances: Any = None) -> Any:
        """`analyse` split: the engine with everything but the recursion done (kept warm by the server);
        `stages`: a warm engine's of the same photo, network output and camera (pipeline.prepare)."""
        from . import pipeline

        return pipeline.prepare(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                progress=progress, resegment=resegment, stages=stages, instances=instances)

    def assemble(self, engine: Any, recursion: int, *, progress: Callable[[str, float], None],
                 resegment: Callable[..., Any] | None) -> dict[str, Any]:
        """The scene of a prepared engine at `recursion` (identical to `analyse`'s)."""
        return engine.assemble(recursion, progress=progress, resegment=resegment)

    def resegmenter(self, seg_model: str) -> Callable[..., Any] | None:
        try:
            from .inference import api
        except ImportError:
            return None
        fn = getattr(api, "resegment", None)
        if fn is None:
            return None
        models_dir = self.models_dir

        def resegment(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("model", seg_model)
            kwargs.setdefault("models_dir", models_dir)
            return fn(*args, **kwargs)

        return resegment

    def warm_up(self) -> None:
        """Load the default networks and run each once on a small grey image, so the first photo pays
        neither the load nor LiteRT's first-run set-up (XNNPACK packs its weights on the first invoke).
        Errors are left for the first analyze to report (e.g. model files not installed)."""
        import numpy as np

        from .inference import api

        grey = np.full((64, 64, 3), 128, np.uint8)
        seg, depth = self.default_models()
        for model in (seg, depth):
            if model is None or not api.available(model, self.models_dir):
                continue
            net = api.load_model(model, self.models_dir)
            one_pass = {"flip": False} if model == seg and hasattr(net, "network_output") else {}
            net.predict(grey, **one_pass)

    def models(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            from .inference import api

            out["defaults"] = {"seg": api.DEFAULT_SEG, "depth": api.DEFAULT_DEPTH,
                               "instances": api.DEFAULT_INSTANCES}
        except Exception as exc:  # noqa: BLE001 - hello must answer even with a broken install
            out["error"] = _one_line(exc)
            return out
        try:
            from .inference import registry

            listed = _jsonable(registry.list_models(self.models_dir))
            out["installed"] = [m["id"] for m in listed if m.get("installed")]
            out["available"] = [m["id"] for m in listed]
            out["models"] = listed
        except Exception as exc:  # noqa: BLE001
            out["error"] = _one_line(exc)
        return out


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of registry objects (dataclasses, paths, tuples) to JSON data."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays and paths in a reply become plain JSON (a pipeline may leak them)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _options_key(options: Any) -> str:
    """The analysis options but `recursion`, as a key (what a prepared engine depends on)."""
    import dataclasses

    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.replace(options, recursion=0)
    return repr(options)


def _nbytes(root: Any, limit: int = 200_000) -> int:
    """Bytes of the numpy arrays reachable from `root` through attributes, lists and tuples (each
    array counted once; a view counts its base). An estimate for the engine memory bound: dicts (the
    engine's scene dicts: rounded numbers, no arrays) are not walked, which keeps it at a few ms."""
    import numpy as np

    seen: set[int] = set()
    total, stack, visited = 0, [root], 0
    while stack and visited < limit:
        obj = stack.pop()
        visited += 1
        if isinstance(obj, np.ndarray):
            base = obj.base if isinstance(obj.base, np.ndarray) else obj
            if id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
            continue
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool) or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple | set):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not callable(obj):
            stack.extend(vars(obj).values())
    return total


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if text else type(exc).__name__


class ResegmentMemo:
    """The re-segmentation network's answers per (cache key, crop), kept in memory.

    Why: `regenerate` must never run a network, yet recursion should give the same sub-objects as the
    `analyze` that ran the network on the same crops. `analyze` records each answer; `regenerate`
    replays them and returns None for a crop never seen (the analysis then falls back to its own
    colour/depth split)."""

    def __init__(self, photos: int = 4) -> None:
        self._tables: OrderedDict[str, dict[bytes, Any]] = OrderedDict()
        self._photos = photos
        self._lock = threading.Lock()

    def _table(self, key: str, create: bool) -> dict[bytes, Any] | None:
        with self._lock:
            table = self._tables.get(key)
            if table is None and create:
                table = self._tables[key] = {}
                while len(self._tables) > self._photos:
                    self._tables.popitem(last=False)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    @staticmethod
    def _crop_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        import hashlib

        import numpy as np

        h = hashlib.blake2b(digest_size=16)
        for value in (*args, *sorted(kwargs.items())):
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
                h.update(value[0].encode())
                value = value[1]
            if isinstance(value, np.ndarray):
                h.update(str((value.shape, value.dtype.str)).encode())
                h.update(np.ascontiguousarray(value).tobytes())
            else:
                h.update(repr(value).encode())
        return h.digest()

    def recording(self, key: str, fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
        """`fn` wrapped so that its answers are remembered under `key` (None passes through)."""
        if fn is None:
            return None
        table = self._table(key, create=True)
        assert table is not None

        def resegment(*args: Any, **kwargs: Any) -> Any:
            crop = self._crop_id(args, kwargs)
            if crop not in table:
                table[crop] = fn(*args, **kwargs)
            return table[crop]

        resegment.memo = table  # type: ignore[attr-defined]  # a warm engine's children are tied to it
        return resegment

    def replaying(self, key: str) -> Callable[..., Any] | None:
        """A network-free resegment that answers only what `analyze` computed for `key`."""
        table = self._table(key, create=False)
        if not table:
            return None

        def resegment(*args: Any, **kwargs: Any) -> Any:
            return table.get(self._crop_id(args, kwargs))

        resegment.memo = table  # type: ignore[attr-defined]
        resegment.replay_only = True  # type: ignore[attr-defined]  # a crop it lacks, a network would answer
        return resegment


@dataclass
class Job:
    id: Any
    type: str
    request: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    answered: bool = False  # its terminal message was sent (guarded by Server._state_lock)


class Server:
    """One server instance: reads requests, runs jobs on a worker thread, writes replies to `out`."""

    def __init__(self, pipeline: Pipeline | None = None, cache: Any = None, models_dir: str | None = None,
                 out: IO[str] | None = None, photo_memory: int = 2, engine_memory: int = 3,
                 engine_max_bytes: int = ENGINE_MAX_BYTES) -> None:
        self.pipeline: Pipeline = pipeline if pipeline is not None else RealPipeline(models_dir)
        if cache is None:
            from .cache import NetworkCache

            cache = NetworkCache()
        self.cache = cache
        self.models_dir = models_dir
        self.out = out if out is not None else sys.stdout
        self._out_lock = threading.Lock()
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._pending: OrderedDict[Any, Job] = OrderedDict()  # queued, not started
        self._current: Job | None = None
        self._state_lock = threading.Lock()
        self._photos: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._photo_memory = photo_memory
        self._done: OrderedDict[str, dict[str, Any]] = OrderedDict()  # request id / sha -> job context
        self._resegment_memo = ResegmentMemo()
        # Prepared analyses (SceneEngine.prepare: everything but the recursion), the last few, so that a
        # regenerate that changes only `recursion` (the panel's slider) assembles the scene from them.
        # key -> (engine, estimated bytes, deepest recursion assembled: bytes re-estimated when it grows)
        self._engines: OrderedDict[tuple[Any, ...], tuple[Any, int, int]] = OrderedDict()
        self._engine_memory, self._engine_max_bytes = max(0, engine_memory), engine_max_bytes
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="img2maya-worker", daemon=True)

    # ---------------------------------------------------------------- output
    def send(self, message: dict[str, Any]) -> None:
        """Write one protocol line (thread-safe; one line per message, flushed at once). A result's
        scene already encoded (`_scene_text`, the text of scene.json) is spliced in, not encoded again."""
        scene_text = message.get("_scene_text")
        try:
            if isinstance(scene_text, str) and "scene" in message:
                rest = {k: v for k, v in message.items() if k not in ("scene", "_scene_text")}
                line = encode_scene(rest)[:-1] + ',"scene":' + scene_text + "}"
            else:
                line = encode_scene(message)
        except (TypeError, ValueError) as exc:
            line = json.dumps({"type": "error", "id": message.get("id"), "code": "internal",
                               "message": f"reply not serialisable: {_one_line(exc)}"})
        with self._out_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._stopping.set()  # nobody is listening any more

    def error(self, req_id: Any, code: str, message: str) -> None:
        self.send({"type": "error", "id": req_id, "code": code, "message": " ".join(message.split())})

    # ----------------------------------------------------------------- input
    def serve(self, stdin: IO[bytes]) -> int:
        """Read requests until `shutdown` or end of input; returns the exit code (0)."""
        self._start_worker()
        try:
            for raw in _bounded_lines(stdin, REQUEST_MAX_BYTES):
                if raw is None:
                    self.error(None, "bad_request", f"request line over the {REQUEST_MAX_BYTES} byte limit "
                                                    f"(skipped up to its end)")
                    continue
                if not self.handle_line(raw):
                    break
                if self._stopping.is_set():
                    break
        except KeyboardInterrupt:
            pass
        self.stop()
        return 0

    def _start_worker(self) -> None:
        """Start the worker once (also on the first job when the server is driven by handle_line)."""
        with self._state_lock:
            if not self._worker.is_alive() and not self._worker.ident:
                self._worker.start()

    def stop(self) -> None:
        """Cancel every queued and running job (each answered `cancelled`) and let the worker finish,
        with a bounded wait: shutdown must not hang on a network that ignores cancellation."""
        if self._stopping.is_set() and not self._worker.is_alive():
            return
        self._stopping.set()
        with self._state_lock:
            victims = list(self._pending.values())
            self._pending.clear()
            running = self._current
            if running is not None and not running.answered:
                running.answered = True
                victims.append(running)
        for job in victims:
            job.cancel.set()
            self.send({"type": "cancelled", "id": job.id})
        self._jobs.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)

    def handle_line(self, raw: bytes | str) -> bool:
        """Handle one request line; returns False when the server should stop reading."""
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self.error(None, "bad_json", "request line is not UTF-8")
                return True
        else:
            text = raw
        text = text.strip()
        if not text:
            return True
        try:
            req = _parse_request(text)
        except RequestError as exc:
            self.error(None, exc.code, str(exc))
            return True
        if not isinstance(req, dict):
            self.error(None, "bad_request", "a request must be a JSON object")
            return True
        req_id = req.get("id")
        if req_id is None or not isinstance(req_id, str | int) or isinstance(req_id, bool):
            self.error(req_id if isinstance(req_id, str | int) else None, "bad_request",
                       "missing or invalid 'id' (a string or integer)")
            return True
        kind = req.get("type")
        if kind == "hello":
            self.send(self.hello(req_id))
        elif kind == "cancel":
            target = req.get("target")
            if target is not None and (not isinstance(target, str | int) or isinstance(target, bool)):
                self.error(req_id, "bad_request", "'target' must be a request id (a string or integer)")
                return True
            self.cancel(req_id, target)
        elif kind == "shutdown":
            self.stop()
            self.send({"type": "bye", "id": req_id})
            return False
        elif kind in JOB_TYPES:
            try:
                _check_job_fields(req)
            except RequestError as exc:
                self.error(req_id, exc.code, str(exc))
                return True
            job = Job(id=req_id, type=kind, request=req)
            self._start_worker()
            if kind == "regenerate" and req.get("supersede"):
                self._supersede()
            with self._state_lock:
                busy = self._current is not None or bool(self._pending)
                self._pending[req_id] = job
            if busy:
                self.send({"type": "queued", "id": req_id})
            self._jobs.put(job)
        else:
            self.error(req_id, "unknown_type", f"unknown request type {kind!r}; expected one of "
                                               "hello, analyze, regenerate, cancel, shutdown")
        return True

    def _supersede(self) -> None:
        """Cancel every queued or running `regenerate` (a slider being dragged: only the latest counts)."""
        with self._state_lock:
            victims = [j for j in self._pending.values() if j.type == "regenerate"]
            for job in victims:
                del self._pending[job.id]
            running = self._current
            if running is not None and running.type == "regenerate" and not running.answered:
                running.answered = True
                victims.append(running)
        for job in victims:
            job.cancel.set()
            self.send({"type": "cancelled", "id": job.id, "superseded": True})

    def hello(self, req_id: Any) -> dict[str, Any]:
        return {"type": "hello", "id": req_id, "version": __version__, "protocol": PROTOCOL_VERSION,
                "schema": SCHEMA_ID, "models": self.pipeline.models(), "devices": _devices(),
                "pid": os.getpid(), "python": sys.version.split()[0], "cache": str(self.cache.root)}

    def cancel(self, req_id: Any, target: Any) -> None:
        """Cancel `target` (a job id) or, when absent, every queued and running job.

        Every victim is answered `cancelled` at once, the running one included: the worker stops it at
        its next check (a progress callback or a stage boundary) and drops what it computed. So the
        client never waits on a network call that cannot be interrupted; only the next job may wait
        for the worker to come free."""
        with self._state_lock:
            if target is None:
                victims = list(self._pending.values())
                self._pending.clear()
                running = self._current
            else:
                victims = [self._pending.pop(target)] if target in self._pending else []
                running = self._current if self._current is not None and self._current.id == target else None
            if running is not None and not running.answered:
                running.answered = True
                victims.append(running)
            else:
                running = None
        for job in victims:
            job.cancel.set()
            self.send({"type": "cancelled", "id": job.id})
        state = "running" if running is not None else ("queued" if victims else "not_found")
        self.send({"type": "ack", "id": req_id, "target": target, "state": state})

    # ---------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._state_lock:
                if self._pending.pop(job.id, None) is not job or job.cancel.is_set():
                    continue  # cancelled while queued (already answered)
                self._current = job
            reply = self._run(job)
            with self._state_lock:  # no longer current *before* the answer: a later cancel says not_found
                self._current = None
                answered, job.answered = job.answered, True
            if not answered:  # else a cancel already answered it
                self.send(reply)

    def _run(self, job: Job) -> dict[str, Any]:
        """The job's terminal message: result, cancelled or error (the server survives any failure)."""
        def error(code: str, message: str) -> dict[str, Any]:
            return {"type": "error", "id": job.id, "code": code, "message": " ".join(message.split())}

        try:
            if self._stopping.is_set():
                raise Cancelled()
            return self.analyze(job) if job.type == "analyze" else self.regenerate(job)
        except Cancelled:
            return {"type": "cancelled", "id": job.id}
        except RequestError as exc:
            return error(exc.code, str(exc))
        except UserError as exc:
            return error("user_error", str(exc))
        except MemoryError:
            return error("out_of_memory", "out of memory: try a smaller photo")
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            return error("internal", f"{type(exc).__name__}: {_one_line(exc)}")

    def _progress(self, job: Job) -> Callable[..., None]:
        """A progress callback that streams events (throttled) and raises Cancelled when asked to stop."""
        last: list[Any] = [0.0, ""]

        def progress(stage: Any = "", fraction: Any = None, *_args: Any, **_kwargs: Any) -> None:
            if job.cancel.is_set():
                raise Cancelled()
            if fraction is None and isinstance(stage, int | float):
                stage, fraction = "", stage
            try:
                frac = min(1.0, max(0.0, float(fraction if fraction is not None else 0.0)))
            except (TypeError, ValueError):
                frac = 0.0
            now = time.monotonic()
            if stage == last[1] and 0.0 < frac < 1.0 and now - last[0] < _PROGRESS_INTERVAL_S:
                return
            last[0], last[1] = now, str(stage)
            with self._state_lock:  # never an event after the job's terminal message
                if job.answered:
                    raise Cancelled()
                self.send({"type": "progress", "id": job.id, "stage": str(stage), "fraction": round(frac, 4)})

        return progress

    def _check(self, job: Job) -> None:
        if job.cancel.is_set():
            raise Cancelled()

    def _load_photo(self, path: str) -> Any:
        """Load (or reuse) a photo; the key includes size and mtime so an edited file is re-read."""
        from .userpaths import check_input_file

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

    def analyze(self, job: Job) -> dict[str, Any]:
        """Network outputs (cached) + analysis + output files."""
        req, timings = job.request, {}
        progress = self._progress(job)
        t0 = time.perf_counter()
        progress("load", 0.0)
        photo = self._load_photo(str(req["photo"]))
        timings["load"] = time.perf_counter() - t0
        _check_focal(photo, req)
        self._check(job)
        seg_model, depth_model = self._models(req)
        inst_model = self._instances_model(req)
        focal_px, fov_deg = _networks_camera(req)
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
                photo, inst_model, explicit=_explicit_instances(req))
            # Cached whatever happens next (a finished network output is never thrown away), on a second
            # thread so that the disk write overlaps the analysis; joined before this job ends.
            meta = {"photo": str(req["photo"]), "sha256": photo.sha256}
            if inst_note:
                meta["instances_warning"] = inst_note
            stored = _Background(self.cache.put, key, seg, depth, meta, instances)
        timings["inference"] = time.perf_counter() - t
        try:
            self._check(job)
            ctx = {"photo": str(req["photo"]), "key": key, "sha256": photo.sha256, "seg_model": seg_model,
                   "depth_model": depth_model, "instances_model": inst_model}
            resegment = self._resegment_memo.recording(key, self.pipeline.resegmenter(seg_model))
            result = self._finish(job, photo, seg, depth, ctx, timings, t0, cached=cached, resegment=resegment,
                                  instances=instances, note=inst_note)
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
        self._progress(job)("load", 0.0)
        t0 = time.perf_counter()
        ctx = self._find_context(req)
        photo = self._load_photo(ctx["photo"])
        timings["load"] = time.perf_counter() - t0
        _check_focal(photo, req)
        if photo.sha256 != ctx["sha256"]:
            raise RequestError("not_cached", f"photo {ctx['photo']} changed since it was analysed: "
                                             "run analyze again")
        t = time.perf_counter()
        entry = self.cache.get(ctx["key"])
        if entry is None:
            raise RequestError("not_cached", "no cached network output for this photo: run analyze first")
        timings["inference"] = time.perf_counter() - t
        return self._finish(job, photo, entry.seg, entry.depth, ctx, timings, t0, cached=True,
                            resegment=self._resegment_memo.replaying(ctx["key"]), instances=entry.instances,
                            note=entry.meta.get("instances_warning"))

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
        inst_model = self._instances_model(req)
        earlier = self._done.get("sha:" + photo.sha256)
        if earlier is not None and (earlier["seg_model"], earlier["depth_model"], earlier.get("instances_model")
                                    ) == (seg_model, depth_model, inst_model):
            # The network output of this server's last analyze of the photo, whatever focal it had.
            return {**earlier, "photo": str(req["photo"])}
        ctx = {"photo": str(req["photo"]), "sha256": photo.sha256, "seg_model": seg_model,
               "depth_model": depth_model, "instances_model": inst_model}
        # Analysed by an earlier server (the cache is on disk): with this request's focal, or the default.
        keys = [self._key(photo, seg_model, depth_model, _num(req, "focal_px"), _num(req, "fov_deg"), inst_model),
                self._key(photo, seg_model, depth_model, None, None, inst_model)]
        for key in keys:
            if self.cache.get(key) is not None:
                return {**ctx, "key": key}
        return {**ctx, "key": keys[0]}

    def _key(self, photo: Any, seg_model: str, depth_model: str | None, focal_px: float | None,
             fov_deg: float | None, instances_model: str | None = None) -> str:
        from .cache import cache_key

        options = self.pipeline.infer_options(photo, depth_model, focal_px, fov_deg)
        return cache_key(photo.sha256, seg_model, depth_model, options, instances_model)

    def _instances_model(self, req: dict[str, Any]) -> str | None:
        """The instance model of a request (`instances_model`: an id, "none", or absent/"auto" = the
        default one when installed), resolved by the pipeline; None = no instances."""
        return self.pipeline.resolve_instances(req.get("instances_model"))

    def _finish(self, job: Job, photo: Any, seg: Any, depth: Any, ctx: dict[str, Any],
                timings: dict[str, float], t0: float, *, cached: bool,
                resegment: Callable[..., Any] | None, instances: Any = None,
                note: str | None = None) -> dict[str, Any]:
        req = job.request
        progress = self._progress(job)
        options = self.pipeline.make_options(_recursion(req), dict(req.get("options") or {}))
        self._check(job)
        # A regenerate writes where the analyze it refers to wrote, unless told otherwise.
        out_dir = Path(req.get("out_dir") or ctx.get("out_dir") or self.cache.out_dir_for(ctx["sha256"][:16]))
        out_dir = out_dir.expanduser()
        _check_out_dir(out_dir, photo, options)
        ctx = {**ctx, "out_dir": str(out_dir)}
        # The image files depend on the network output only: encode them on a second thread while the
        # analysis runs (PNG encoding and numpy release the GIL), and wait for them before answering,
        # so every file named in the result exists when the client reads it.
        with self.cache.pinned(out_dir):  # the cache entry may be stored (and evict) meanwhile
            images = _Background(write_network_outputs, out_dir, photo, seg, depth, ctx["key"])
            t = time.perf_counter()
            try:
                progress("analysis", 0.0)
                scene = self._analyse(req, photo, seg, depth, options, ctx["key"], progress, resegment, timings,
                                      instances)
                if note:
                    scene = {**scene, "warnings": [*scene.get("warnings", []), note]}
                timings["analysis"] = time.perf_counter() - t
                self._check(job)
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
                raise UserError(f"cannot write into out_dir {out_dir}: {exc.strerror or _one_line(exc)}") from None
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
                 progress: Callable[[str, float], None], resegment: Callable[..., Any] | None,
                 timings: dict[str, float], instances: Any = None) -> dict[str, Any]:
        """The scene, from a warm prepared engine when one matches (same network output, photo path,
        camera and options but `recursion`), else from a new one, kept for the next request."""
        focal_px, fov_deg = _num(req, "focal_px"), _num(req, "fov_deg")
        prepare = getattr(self.pipeline, "prepare", None)
        assemble = getattr(self.pipeline, "assemble", None)
        if prepare is None or assemble is None or self._engine_memory <= 0:
            return self.pipeline.analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                                         progress=progress, resegment=resegment, instances=instances)
        recursion = _recursion(req)
        ekey = (key, str(getattr(photo, "path", "")), _options_key(options), focal_px, fov_deg)
        found = self._engines.get(ekey)
        if found is None:
            t = time.perf_counter()
            # an engine of the same network output, photo and camera with other options: its stages
            # that the change does not touch are reused (SceneEngine.stages; the result is the same)
            sibling = next((e[0] for k, e in reversed(self._engines.items())
                            if (k[0], k[1], k[3], k[4]) == (ekey[0], ekey[1], ekey[3], ekey[4])), None)
            stages = getattr(sibling, "stages", None)
            extra = {"stages": stages} if isinstance(stages, dict) else {}
            engine = prepare(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg, progress=progress,
                             resegment=resegment, instances=instances, **extra)  # a cancel raises here: nothing half-made is kept
            timings["prepare"] = time.perf_counter() - t
        else:
            engine = found[0]
            self._engines.move_to_end(ekey)
        try:
            scene = assemble(engine, recursion, progress=progress, resegment=resegment)
        except Cancelled:  # the engine stays consistent: children are published per node when complete
            self._keep_engine(ekey, engine, found, recursion)
            raise
        except BaseException:
            self._engines.pop(ekey, None)  # an engine that failed is not trusted again
            raise
        self._keep_engine(ekey, engine, found, recursion)
        return scene

    def _keep_engine(self, ekey: tuple[Any, ...], engine: Any, found: tuple[Any, int, int] | None,
                     recursion: int) -> None:
        """Keep `engine` (most recent), then drop the oldest beyond the count or the memory bound
        (the newest always stays). Its size is estimated again only when deeper children were made."""
        if found is None or recursion > found[2]:
            self._engines[ekey] = (engine, _nbytes(engine), recursion if found is None else max(recursion, found[2]))
        self._engines.move_to_end(ekey)
        while len(self._engines) > 1 and (len(self._engines) > self._engine_memory or sum(
                e[1] for e in self._engines.values()) > self._engine_max_bytes):
            self._engines.popitem(last=False)

    def _remember(self, req_id: Any, ctx: dict[str, Any]) -> None:
        self._done[str(req_id)] = ctx
        self._done["sha:" + ctx["sha256"]] = ctx
        while len(self._done) > 256:
            self._done.popitem(last=False)


_FILE_NAMES = {"preview": "preview.png", "labels": "labels.png", "label_names": "labels.json",
               "confidence": "confidence.png", "depth": "depth.npy", "depth_preview": "depth_preview.png",
               "scene_json": "scene.json"}


class _Background:
    """``fn(*args)`` on a daemon thread; ``join()`` waits and re-raises its exception; ``seconds`` = its time."""

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


def _check_out_dir(out_dir: Path, photo: Any, options: Any) -> None:
    """The job's output folder: usable (UserError otherwise), none of its files an input of the job (the
    photo, the shapes table), and cleared of temporary files a killed server left there long ago."""
    from .scene import remove_stale_temps
    from .userpaths import check_folder, check_outputs_spare_inputs

    check_folder(out_dir, "out_dir")
    files = [out_dir / name for name in (*_FILE_NAMES.values(), ".key")]
    check_outputs_spare_inputs(files, [("photo", getattr(photo, "path", None)),
                                       ("shapes table", getattr(options, "shapes_table", None))])
    remove_stale_temps(out_dir)


def _output_files(out_dir: Path, seg: Any, depth: Any) -> dict[str, str | None]:
    files: dict[str, str | None] = {k: str(out_dir / v) for k, v in _FILE_NAMES.items()}
    if seg.confidence is None:
        files["confidence"] = None
    if depth is None:
        files["depth"] = files["depth_preview"] = None
    return files


def write_network_outputs(out_dir: Path, photo: Any, seg: Any, depth: Any, key: str) -> bool:
    """Write the image files of ``write_outputs`` unless ``out_dir`` already holds them for ``key``
    (a regenerate); True when written."""
    from .scene import atomic_write_bytes

    files = _output_files(out_dir, seg, depth)
    marker = out_dir / ".key"
    try:
        fresh = marker.read_text(encoding="utf-8").strip() == key and all(
            os.path.exists(p) for k, p in files.items() if p and k != "scene_json")
    except OSError:
        fresh = False
    if fresh:
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_images(out_dir, _FILE_NAMES, photo, seg, depth)
    atomic_write_bytes(marker, key.encode("ascii"))
    return True


def encode_scene(scene: dict[str, Any]) -> str:
    """A scene (or any protocol message) as compact JSON (no NaN): one line, the C encoder (an indented
    dump is ~4x slower)."""
    return json.dumps(scene, allow_nan=False, separators=(",", ":"), default=_json_default)


def write_outputs(out_dir: Path, photo: Any, seg: Any, depth: Any, scene: dict[str, Any] | str,
                  key: str) -> dict[str, str | None]:
    """Write the files a client shows or reuses, atomically; returns their paths.

    preview.png (labels coloured over the photo), labels.png (16-bit ids, reusable as `--labels`),
    labels.json (names), confidence.png (8-bit), depth.npy (float32, reusable as `--depth`),
    depth_preview.png (8-bit, near = bright) and scene.json. The image files depend only on the network
    output, so they are rewritten only when the cache key changes: a regenerate writes scene.json alone
    (compact JSON: `scene` as a dict, or already encoded by encode_scene).
    """
    from .scene import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    write_network_outputs(out_dir, photo, seg, depth, key)
    text = scene if isinstance(scene, str) else encode_scene(scene)
    atomic_write_bytes(out_dir / _FILE_NAMES["scene_json"], text.encode("utf-8"))
    return _output_files(out_dir, seg, depth)


def png_bytes(a: Any) -> bytes:
    """A PNG of a uint8 grey (h, w), uint8 RGB (h, w, 3) or uint16 grey (h, w) array, encoded for speed:
    the "Sub" filter on every row and zlib level 1 (which releases the GIL). About half of Pillow's time
    (it tries every filter on every row) for files about 10 % larger."""
    import struct
    import zlib

    import numpy as np

    a = np.asarray(a)
    if a.dtype not in (np.uint8, np.uint16) or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) \
            or (a.ndim == 3 and a.dtype != np.uint8) or a.size == 0:
        raise ValueError(f"png_bytes: unsupported array {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else 3
    bpp = channels * a.itemsize  # bytes per pixel: the Sub filter's distance
    rows = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder(">")).view(np.uint8).reshape(h, w * bpp)
    data = np.empty((h, w * bpp + 1), np.uint8)
    data[:, 0] = 1  # filter type Sub: each byte minus the byte one pixel to the left (mod 256)
    data[:, 1:bpp + 1] = rows[:, :bpp]
    np.subtract(rows[:, bpp:], rows[:, :-bpp], out=data[:, bpp + 1:])

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8 * a.itemsize, 0 if channels == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(data.tobytes(), 1))
            + chunk(b"IEND", b""))


def _write_images(out_dir: Path, names: dict[str, str], photo: Any, seg: Any, depth: Any) -> None:
    import io

    import numpy as np

    from .scene import atomic_write_bytes

    def png(name: str, a: Any) -> None:
        atomic_write_bytes(out_dir / name, png_bytes(a))

    labels = np.asarray(seg.labels)
    # A fixed pseudo-random colour per class id (golden-ratio hue walk): stable across photos.
    n = int(labels.max()) + 1 if labels.size else 1
    k = np.arange(max(n, 1))
    palette = np.stack([(k * 97 + 40) % 256, (k * 57 + 120) % 256, (k * 151 + 200) % 256], axis=1).astype(np.uint16)
    colours = palette[np.clip(labels, 0, None)]  # uint16: the sum with the photo below cannot overflow
    rgb = np.asarray(photo.rgb)
    if rgb.shape[:2] == labels.shape:
        colours += rgb[:, :, :3]
        colours >>= 1
    png(names["preview"], colours.astype(np.uint8))
    png(names["labels"], np.clip(labels, 0, 65535).astype(np.uint16))
    atomic_write_bytes(out_dir / names["label_names"],
                       json.dumps(list(seg.names), ensure_ascii=False).encode("utf-8"))
    if seg.confidence is not None:
        conf = np.nan_to_num(np.asarray(seg.confidence, dtype=np.float32), nan=0.0)
        png(names["confidence"], (np.clip(conf, 0, 1) * 255 + 0.5).astype(np.uint8))
    if depth is not None:
        d = np.asarray(depth.depth, dtype=np.float32)
        buf = io.BytesIO()
        np.save(buf, d)
        atomic_write_bytes(out_dir / names["depth"], buf.getvalue())
        valid = np.isfinite(d) & (d > 0)
        view = np.zeros(d.shape, np.uint8)
        if valid.any():
            v = d[valid]
            if depth.kind == "disparity":
                v = 1.0 / np.maximum(v, 1e-6)
            sample = v[:: max(1, v.size // 250_000)]  # the 1st/99th percentiles of a preview: a sample will do
            lo, hi = (float(q) for q in np.percentile(sample, (1, 99)))
            near = 1.0 - np.clip((v - lo) / max(hi - lo, 1e-6), 0, 1)
            view[valid] = (near * 235 + 20).astype(np.uint8)
        png(names["depth_preview"], view)


def _bounded_lines(stream: Any, limit: int) -> Iterator[bytes | None]:
    """The lines of `stream`, each read with at most `limit` bytes (+ its newline) in memory; None stands
    for a longer line, which is read past in pieces and skipped (never held whole)."""
    readline = getattr(stream, "readline", None)
    if readline is None:  # a plain iterable of lines (tests)
        for line in stream:
            yield None if len(line.rstrip(b"\r\n")) > limit else line
        return
    while True:
        line = readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        yield line


def _parse_request(text: str) -> Any:
    """A request line's JSON, bounded (limits.REQUEST_MAX_*); RequestError `bad_json`/`bad_request`."""
    from .safejson import JsonInputError, decode, nesting_depth

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > REQUEST_MAX_BYTES:
        raise RequestError("bad_request", f"request line of {size} bytes is over the {REQUEST_MAX_BYTES} byte limit")
    depth = nesting_depth(text)
    if depth > REQUEST_MAX_DEPTH:
        raise RequestError("bad_request", f"request nested {depth} levels deep, over the limit of {REQUEST_MAX_DEPTH}")
    try:
        return decode(text)
    except JsonInputError as exc:
        raise RequestError("bad_json", f"malformed JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RequestError("bad_json", f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit integer
        raise RequestError("bad_json", f"unusable JSON: {_one_line(exc)[:200]}") from None


_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "min_area_px": (int,), "color_stat": (str,), "depth_kind": (str,), "camera_height_m": (int, float),
    "shapes_table": (str,), "max_pixels": (int,), "recursion": (int,), "ignore_exif": (bool,),
    "estimate_camera": (bool,), "camera_height_from_objects": (bool,),
}


def _networks_camera(req: dict[str, Any]) -> tuple[float | None, float | None]:
    """(focal_px, fov_deg) the networks are given: the request's, else with options.ignore_exif the
    default field of view (a depth model's metric scale follows the focal; EXIF is not to be trusted)."""
    focal_px, fov_deg = _num(req, "focal_px"), _num(req, "fov_deg")
    if focal_px is None and fov_deg is None and (req.get("options") or {}).get("ignore_exif") is True:
        from .analysis.camera import DEFAULT_HFOV_DEG

        fov_deg = DEFAULT_HFOV_DEG
    return focal_px, fov_deg


def _check_path_field(req: dict[str, Any], name: str) -> None:
    value = req.get(name)
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise RequestError("bad_request", f"'{name}' must be a non-empty string (a path)")
    if "\x00" in value or len(value) > 4096:
        raise RequestError("bad_request", f"'{name}' is not a valid path (a NUL character or over 4096 characters)")


def _check_options_fields(options: dict[str, Any]) -> None:
    """Types and physical ranges of the known analysis options (unknown keys: the pipeline's make_options)."""
    from .limits import check_camera_height

    for name, value in options.items():
        types = _OPTION_TYPES.get(name)
        if types is None or value is None and name == "shapes_table":
            continue
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise RequestError("bad_request", f"option '{name}' must be {' or '.join(t.__name__ for t in types)}, "
                                              f"got {json.dumps(value)[:60]}")
    if "camera_height_m" in options:
        try:
            check_camera_height(options["camera_height_m"], "option 'camera_height_m'")
        except UserError as exc:
            raise RequestError("bad_request", str(exc)) from None
    for name in ("min_area_px", "max_pixels"):
        if name in options and options[name] < 0:
            raise RequestError("bad_request", f"option '{name}' must be >= 0, got {options[name]}")
    _check_path_field(options, "shapes_table")


def _check_job_fields(req: dict[str, Any]) -> None:
    """Reject malformed job requests before queueing them (types, ranges, paths; no file is read)."""
    from .userpaths import check_folder

    kind = req["type"]
    if kind == "analyze" and not isinstance(req.get("photo"), str):
        raise RequestError("bad_request", "analyze needs 'photo' (a file path)")
    _check_path_field(req, "photo")
    if kind == "regenerate" and not any(isinstance(req.get(k), str | int) and not isinstance(req.get(k), bool)
                                        for k in ("photo", "ref", "photo_sha256")):
        raise RequestError("bad_request", "regenerate needs 'photo', 'ref' (a previous request id) "
                                          "or 'photo_sha256'")
    if not isinstance(req.get("supersede", False), bool):
        raise RequestError("bad_request", "'supersede' must be true or false")
    if req.get("look", "color") not in ("color", "projection"):  # applied by the client's builder, echoed
        raise RequestError("bad_request", "'look' must be \"color\" or \"projection\"")
    if "options" in req and req["options"] is not None and not isinstance(req["options"], dict):
        raise RequestError("bad_request", "'options' must be an object")
    if isinstance(req.get("options"), dict):
        _check_options_fields(req["options"])
    _recursion(req)
    for name in ("focal_px", "fov_deg"):
        _num(req, name)
    for name in ("seg_model", "depth_model", "instances_model", "out_dir"):
        if req.get(name) is not None and not isinstance(req[name], str):
            raise RequestError("bad_request", f"'{name}' must be a string")
    _check_path_field(req, "out_dir")
    if req.get("out_dir"):
        try:
            check_folder(req["out_dir"], "out_dir")
        except UserError as exc:
            raise RequestError("user_error", str(exc)) from None


def _explicit_instances(req: dict[str, Any]) -> bool:
    """Whether the request names its instance model (its problems are then errors, not warnings)."""
    value = req.get("instances_model")
    return isinstance(value, str) and value.lower() not in ("", "none", "auto", "default")


def _check_focal(photo: Any, req: dict[str, Any]) -> None:
    """A `focal_px` must give a field of view inside limits.FOV_* on this photo (UserError)."""
    focal = _num(req, "focal_px")
    if focal is not None:
        from .limits import check_focal_px

        check_focal_px(focal, getattr(photo, "full_width", None), "'focal_px'")


def _recursion(req: dict[str, Any]) -> int:
    value = req.get("recursion", (req.get("options") or {}).get("recursion", 0)
                    if isinstance(req.get("options"), dict) else 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise RequestError("bad_request", "'recursion' must be an integer 0..5")
    return value


def _num(req: dict[str, Any], name: str) -> float | None:
    value = req.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RequestError("bad_request", f"'{name}' must be a positive number")
    try:
        v = float(value)
    except OverflowError:
        raise RequestError("bad_request", f"'{name}' is out of range") from None
    if name == "fov_deg":
        from .limits import check_fov_deg

        try:
            check_fov_deg(v, "'fov_deg'")
        except UserError as exc:
            raise RequestError("bad_request", str(exc)) from None
    elif not math.isfinite(v):
        raise RequestError("bad_request", f"'{name}' must be a finite number")
    return v


def _devices() -> dict[str, Any]:
    """CPU always; CUDA only from what is cheap to know: a torch already imported is asked, otherwise
    the NVIDIA driver's /proc entry hints at it ("unknown" = not checked, to keep hello instant)."""
    devices: dict[str, Any] = {"cpu": True}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            devices["cuda"] = bool(torch.cuda.is_available())
        except Exception:  # noqa: BLE001
            devices["cuda"] = "unknown"
    elif os.path.exists("/proc/driver/nvidia/version"):
        devices["cuda"] = "unknown"
    else:
        devices["cuda"] = False if sys.platform.startswith("linux") else "unknown"
    return devices


def _load_factory(spec: str) -> Pipeline:
    """`module:attr` -> attr() (the hidden --pipeline flag used by tests to inject a fake pipeline)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"--pipeline must be module:factory, got {spec!r}")
    module = importlib.import_module(module_name)
    return getattr(module, attr)()


def _megabytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of MB: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 keeps nothing on disk), got {text}")
    return value


def _check_server_paths(args: argparse.Namespace) -> None:
    """--cache-dir (made and written once here) and --models-dir, checked at start: UserError."""
    from .cache import default_cache_dir
    from .userpaths import check_folder, make_folder

    make_folder(args.cache_dir if args.cache_dir is not None else default_cache_dir(), "the cache folder")
    if args.models_dir is not None and os.path.lexists(args.models_dir):
        check_folder(args.models_dir, "--models-dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's options (shared by `python -m inference_server` and `img2maya serve`)."""
    parser.add_argument("--models-dir", default=None, help="folder of the model weights "
                        "(default: $IMG2MAYA_MODELS, else ~/.img2maya/models)")
    parser.add_argument("--cache-dir", default=None, help="network-output cache "
                        "(default: $IMG2MAYA_CACHE, else ~/.cache/img2maya)")
    parser.add_argument("--cache-size-mb", type=_megabytes, default=None,
                        help="cache size cap in MB, least recently used evicted first (default 2048)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="do not load and warm the default networks in the background at start")
    parser.add_argument("--pipeline", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Start serving on this process's stdin/stdout."""
    from .cache import DEFAULT_MAX_BYTES, NetworkCache

    try:
        _check_server_paths(args)
    except UserError as exc:
        print(f"img2maya serve: error: {exc}", file=sys.stderr)
        return 2
    proto_out = _claim_stdout()
    max_bytes = DEFAULT_MAX_BYTES if args.cache_size_mb is None else max(0, args.cache_size_mb) * 1024**2
    cache = NetworkCache(args.cache_dir, max_bytes=max_bytes)
    try:
        pipeline = _load_factory(args.pipeline) if args.pipeline else RealPipeline(args.models_dir)
    except Exception as exc:  # noqa: BLE001
        print(f"img2maya serve: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    server = Server(pipeline=pipeline, cache=cache, models_dir=args.models_dir, out=proto_out)
    print(f"img2maya inference server {__version__} ready (pid {os.getpid()}, cache {cache.root})",
          file=sys.stderr, flush=True)
    if getattr(args, "warm_up", True) and isinstance(pipeline, RealPipeline):
        start_warm_up(pipeline)
    return server.serve(sys.stdin.buffer)


def start_warm_up(pipeline: RealPipeline) -> threading.Thread:
    """``pipeline.warm_up()`` on a daemon thread (requests are served meanwhile; a job that needs a
    network still loading waits for it on the model cache's lock)."""

    def run() -> None:
        t = time.perf_counter()
        try:
            pipeline.warm_up()
        except Exception as exc:  # noqa: BLE001 - the first analyze reports it properly
            print(f"img2maya serve: warm-up skipped: {_one_line(exc)}", file=sys.stderr, flush=True)
            return
        print(f"img2maya serve: networks warm in {time.perf_counter() - t:.2f} s", file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, name="img2maya-warm-up", daemon=True)
    thread.start()
    return thread


def _claim_stdout() -> IO[str]:
    """Keep the real stdout for the protocol and send fd 1 (and sys.stdout) to stderr, so libraries
    that print - in Python or in C - can never corrupt the protocol stream."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return open(proto_fd, "w", encoding="utf-8", newline="\n", buffering=1, closefd=True)  # noqa: SIM115


def register(subparsers: Any) -> None:
    """Add `img2maya serve` to the CLI."""
    p = subparsers.add_parser("serve", help="run the NDJSON inference server on stdin/stdout (for Maya)",
                              description="Run the local inference server (docs/PROTOCOL.md).")
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """`python -m inference_server [--models-dir DIR] [--cache-dir DIR] [--cache-size-mb N]`."""
    parser = argparse.ArgumentParser(prog="python -m inference_server",
                                     description="img2maya local inference server (NDJSON over stdio)")
    add_arguments(parser)
    return run(parser.parse_args(argv))
