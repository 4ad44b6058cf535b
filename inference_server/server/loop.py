"""The NDJSON loop: `Server` reads request lines, answers `hello`/`cancel`/`shutdown` at once and hands
jobs to one worker thread (jobs.JobBoard, runner.Runner); every reply is one line on `out`."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import IO, Any

from .. import SCHEMA_ID, __version__
from ..errors import UserError
from ..limits import REQUEST_MAX_BYTES
from .adapter import Pipeline, RealPipeline
from .checks import RequestError, check_job_fields
from .jobs import JOB_TYPES, Cancelled, Job, JobBoard
from .runner import Runner
from .warm import ENGINE_MAX_BYTES, WarmEngines
from .wire import bounded_lines, encode_reply, one_line, parse_request

PROTOCOL_VERSION = 1


class Server:
    """One server instance: reads requests, runs jobs on a worker thread, writes replies to `out`."""

    def __init__(self, pipeline: Pipeline | None = None, cache: Any = None, models_dir: str | None = None,
                 out: IO[str] | None = None, photo_memory: int = 2, engine_memory: int = 3,
                 engine_max_bytes: int = ENGINE_MAX_BYTES) -> None:
        self.pipeline: Pipeline = pipeline if pipeline is not None else RealPipeline(models_dir)
        if cache is None:
            from ..cache import NetworkCache

            cache = NetworkCache()
        self.cache = cache
        self.models_dir = models_dir
        self.out = out if out is not None else sys.stdout
        self._out_lock = threading.Lock()
        self.board = JobBoard(self.send)
        # Prepared analyses (SceneEngine.prepare: everything but the recursion), the last few, so that a
        # regenerate that changes only `recursion` (the panel's slider) assembles the scene from them.
        self.engines = WarmEngines(engine_memory, engine_max_bytes)
        self.runner = Runner(self.pipeline, cache, self.board, self.engines, photo_memory)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="img2maya-worker", daemon=True)

    # ---------------------------------------------------------------- output
    def send(self, message: dict[str, Any]) -> None:
        """Write one protocol line (thread-safe; one line per message, flushed at once)."""
        line = encode_reply(message)
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
            for raw in bounded_lines(stdin, REQUEST_MAX_BYTES):
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
            req = parse_request(text)
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
        return self._dispatch(req_id, req)

    def _dispatch(self, req_id: Any, req: dict[str, Any]) -> bool:
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
                check_job_fields(req)
            except RequestError as exc:
                self.error(req_id, exc.code, str(exc))
                return True
            self._start_worker()
            if kind == "regenerate" and req.get("supersede"):
                self.board.supersede()
            self.board.submit(Job(id=req_id, type=kind, request=req))
        else:
            self.error(req_id, "unknown_type", f"unknown request type {kind!r}; expected one of "
                                               "hello, analyze, regenerate, cancel, shutdown")
        return True

    def hello(self, req_id: Any) -> dict[str, Any]:
        return {"type": "hello", "id": req_id, "version": __version__, "protocol": PROTOCOL_VERSION,
                "schema": SCHEMA_ID, "models": self.pipeline.models(), "devices": _devices(),
                "pid": os.getpid(), "python": sys.version.split()[0], "cache": str(self.cache.root)}

    def cancel(self, req_id: Any, target: Any) -> None:
        """Cancel `target` (a job id) or, when absent, every queued and running job (jobs.JobBoard.cancel:
        each victim answered `cancelled` at once), then `ack` with the target's state."""
        state = self.board.cancel(target)
        self.send({"type": "ack", "id": req_id, "target": target, "state": state})

    def stop(self) -> None:
        """Cancel every queued and running job (each answered `cancelled`) and let the worker finish,
        with a bounded wait: shutdown must not hang on a network that ignores cancellation."""
        if self._stopping.is_set() and not self._worker.is_alive():
            return
        self._stopping.set()
        self.board.close()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)

    # ---------------------------------------------------------------- worker
    def _start_worker(self) -> None:
        """Start the worker once (also on the first job when the server is driven by handle_line)."""
        with self.board.lock:
            if not self._worker.is_alive() and not self._worker.ident:
                self._worker.start()

    def _work(self) -> None:
        while (job := self.board.next()) is not None:
            self.board.finish(job, self._run(job))

    def _run(self, job: Job) -> dict[str, Any]:
        """The job's terminal message: result, cancelled or error (the server survives any failure)."""
        def error(code: str, message: str) -> dict[str, Any]:
            return {"type": "error", "id": job.id, "code": code, "message": " ".join(message.split())}

        try:
            if self._stopping.is_set():
                raise Cancelled()
            return self.runner.run(job)
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
            return error("internal", f"{type(exc).__name__}: {one_line(exc)}")


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
