"""`OUT/img2maya-batch.json`: what a batch made, photo by photo, and what a rerun may skip.

One JSON document (`img2maya/batch@1`), rewritten whole and atomically (a temporary file, fsync, rename)
as photos complete: a crash or a kill at any moment leaves the previous complete version. Writes are
spaced so that they never cost more than about 5 % of the run (at most `MAX_INTERVAL_S` apart; for a
small manifest that is every photo), and the last one happens at the end, on an error, and on Ctrl-C.

An entry (key: the output's path relative to OUT) holds the photo's `source` path and `sha256`, the
`options` and `models` it was made with, its `output`, `status` (`ok` or `failed`), `seconds`, `error`,
`objects`, `warnings`, `worker` and `finished` time. A photo is up to date, and skipped, when its entry
is `ok` with the same sha256, options and models, and its output exists. Entries of photos that are not
in this run are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__, interrupts
from ..errors import UserError
from .plan import Job
from .work import Request, Result

SCHEMA = "img2maya/batch@1"
MAX_BYTES = 1 << 30
MAX_INTERVAL_S = 2.0
COST_FACTOR = 20.0  # the next write waits this many times the last write's duration (<= 5 % of the time)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _file_sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """The value as JSON reads it back (tuples -> lists), so that a stored and a new value compare equal."""
    return json.loads(json.dumps(value, allow_nan=False, default=str))


def options_of(req: Request, fmt: str) -> dict[str, Any]:
    """Every SceneOptions field, the camera flags, the format and the user's own input files (hashed)."""
    doc: dict[str, Any] = dataclasses.asdict(req.options)
    doc.update(format=fmt, look=req.look, focal_px=req.focal_px, fov_deg=req.fov_deg)
    if req.options.shapes_table is not None:
        doc["shapes_table_sha256"] = _file_sha256(req.options.shapes_table)
    for name, path in (("labels", req.labels), ("label_names", req.label_names), ("depth_file", req.depth_file)):
        if path is not None:
            doc[name] = {"path": path, "sha256": _file_sha256(path)} if os.path.isfile(path) else path
    if req.depth_file is not None:
        doc["depth_scale"] = req.depth_scale
    return _plain(doc)


def models_of(req: Request) -> dict[str, Any]:
    """The networks a photo will go through (ids; `user` for the user's own files) and their weights' sha256."""
    try:
        from ..inference import registry
    except ImportError:
        registry = None  # type: ignore[assignment]
    no_depth = req.depth_model is not None and req.depth_model.lower() in ("none", "")
    seg = "user" if req.labels else (req.seg_model or (registry.DEFAULT_SEG if registry else "default"))
    depth = ("user" if req.depth_file else "none" if no_depth
             else req.depth_model or (registry.DEFAULT_DEPTH if registry else "default"))
    weights: dict[str, str | None] = {}
    for model_id in (seg, depth):
        if registry is not None and model_id in registry.MODELS:
            weights[model_id] = registry.MODELS[model_id].main_file.sha256
    return {"segmentation": seg, "depth": depth, "weights": weights}


class Manifest:
    def __init__(self, path: Path, photos: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.photos: dict[str, dict[str, Any]] = photos if photos is not None else {}
        self.run: dict[str, Any] = {}
        self._last_write = 0.0
        self._last_cost = 0.0
        self._dirty = False

    @classmethod
    def load(cls, path: Path, force: bool = False) -> Manifest:
        """The manifest at `path` (a new one when absent). UserError for a file that is not one, unless
        `force` (every photo is redone then, so its entries do not matter)."""
        from ..safejson import JsonInputError, load_file

        if not os.path.lexists(path):
            return cls(path)
        try:
            doc = load_file(path, "batch manifest", max_bytes=MAX_BYTES, max_depth=32)
        except (JsonInputError, OSError, UnicodeDecodeError, ValueError) as exc:
            if force:
                return cls(path)
            raise UserError(f"cannot read the batch manifest {path}: {' '.join(str(exc).split())}; move it away or "
                            f"rerun with --force (every photo is made again)") from None
        if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA and isinstance(doc.get("photos"), dict)):
            if force:
                return cls(path)
            raise UserError(f"{path} is not an {SCHEMA} manifest; move it away or rerun with --force "
                            f"(every photo is made again)")
        photos = {k: v for k, v in doc["photos"].items() if isinstance(v, dict)}
        return cls(path, photos)

    def up_to_date(self, job: Job, sha256: str | None, options: dict[str, Any], models: dict[str, Any]) -> bool:
        e = self.photos.get(job.key)
        return (e is not None and sha256 is not None and e.get("status") == "ok" and e.get("sha256") == sha256
                and e.get("options") == options and e.get("models") == models and os.path.isfile(job.output))

    def record(self, job: Job, result: Result, options: dict[str, Any], models: dict[str, Any]) -> None:
        self.photos[job.key] = {
            "source": job.source, "sha256": result.sha256, "options": options, "models": models,
            "output": job.key, "status": "ok" if result.ok else "failed", "seconds": round(result.seconds, 3),
            "error": result.error, "objects": result.objects, "warnings": list(result.warnings),
            "worker": result.worker, "finished": now_iso(),
        }
        self._dirty = True

    def document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "img2maya": __version__, "updated": now_iso(), "run": self.run,
                "photos": dict(sorted(self.photos.items()))}

    def save(self, final: bool = True, register: bool = True) -> None:
        """Write the manifest now (`final`), or when the last write is long enough ago. `register=False`
        in the interrupt handler, which must not take the temp registry's lock."""
        now = time.monotonic()
        if not final and now - self._last_write < min(MAX_INTERVAL_S, COST_FACTOR * self._last_cost):
            self._dirty = True
            return
        data = json.dumps(self.document(), indent=1, allow_nan=False).encode("utf-8")
        _write_atomic(self.path, data, register)
        self._last_write = time.monotonic()
        self._last_cost = self._last_write - now
        self._dirty = False

    def flush(self) -> None:
        """Save if something is not written yet (Ctrl-C: no lock taken, see save)."""
        if self._dirty:
            self.save(final=True, register=False)


def _write_atomic(path: Path, data: bytes, register: bool) -> None:
    """A temporary file named like scene.atomic_path's (a killed run's is removed as stale later), fsync,
    rename; the previous manifest is untouched on any failure."""
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}")
    if register:
        interrupts.register_temp(tmp)
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        with interrupts.held() if register else contextlib.nullcontext():
            os.replace(tmp, path)
            if register:
                interrupts.forget_temp(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        if register:
            interrupts.forget_temp(tmp)
