"""The one per-photo code path: what `img2maya scene` does to a photo, whoever runs it.

`build` is pipeline.run + export (the single-photo command calls it too); `process` is `build` timed,
with any error turned into a value, so that an executor (this process, a local worker process, a Ray
task) only moves `Job`s in and `Result`s out. A `Request` holds everything but the photo: the same for
every photo of a batch, small and picklable.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..errors import UserError
from .plan import Job

DEBUG_ENV = "IMG2MAYA_DEBUG"


@dataclass(frozen=True)
class Request:
    """How to turn a photo into a scene (the `scene` command's flags, checked)."""

    options: Any  # analysis.engine.SceneOptions
    labels: str | None = None
    label_names: str | None = None
    depth_file: str | None = None
    depth_kind: str | None = None  # of the depth FILE; None = metric
    depth_scale: float | None = None
    seg_model: str | None = None
    depth_model: str | None = None
    instances_model: str | None = None  # None: the instance model when installed (pipeline.detect_instances)
    models_dir: str | None = None
    focal_px: float | None = None
    fov_deg: float | None = None
    look: str = "color"  # builders.export's look: "color" or "projection" (the photo projected)
    version: str = __version__  # a worker running another img2maya refuses the photo
    debug: bool = False  # send the traceback of an internal error back

    @classmethod
    def from_args(cls, args: argparse.Namespace, depth_file: str | None, depth_model: str | None,
                  options: Any) -> Request:
        models_dir = args.models_dir if args.models_dir is not None else os.environ.get("IMG2MAYA_MODELS")
        return cls(options=options, labels=args.labels, label_names=args.label_names, depth_file=depth_file,
                   depth_kind=args.depth_kind, depth_scale=args.depth_scale, seg_model=args.seg,
                   depth_model=depth_model, models_dir=models_dir, focal_px=args.focal_px, fov_deg=args.fov_deg,
                   look=getattr(args, "look", None) or "color", debug=bool(os.environ.get(DEBUG_ENV)),
                   instances_model=getattr(args, "instances", None))


@dataclass(frozen=True)
class Result:
    """What became of one photo."""

    index: int
    key: str
    ok: bool
    seconds: float
    error: str | None = None  # one line
    bug: bool = False  # the error is an internal error (exit status 1)
    trace: str | None = None  # its traceback, with Request.debug
    sha256: str | None = None  # of the photo the scene was made from
    objects: int = 0
    warnings: tuple[str, ...] = ()
    worker: str = ""  # host:pid


def build(image: str | os.PathLike[str], out: str | os.PathLike[str], req: Request,
          progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """The scene of `image`, written to `out` (atomically); UserError / OSError for bad input."""
    from .. import pipeline
    from ..builders import export

    scene = pipeline.run(image, labels_path=req.labels, names_path=req.label_names, depth_path=req.depth_file,
                         depth_kind=req.depth_kind or "metric", depth_scale=req.depth_scale, seg_model=req.seg_model,
                         depth_model=req.depth_model, models_dir=req.models_dir, options=req.options,
                         focal_px=req.focal_px, fov_deg=req.fov_deg, progress=progress,
                         instances_model=req.instances_model)
    if progress:
        progress("writing", 0.99)
    export(scene, out, look=req.look, photo=image)
    return scene


def message(exc: BaseException) -> str:
    """The one line a user error prints (the CLI's own wording)."""
    from ..cli import _message

    return _message(exc)


def internal_message(exc: BaseException) -> str:
    return (f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())}); rerun with {DEBUG_ENV}=1 "
            f"for the traceback and please report it")


def count_objects(objects: list[dict[str, Any]]) -> int:
    return sum(1 + count_objects(o.get("children", [])) for o in objects)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process(job: Job, req: Request) -> Result:
    """`build` for one job; never raises for the photo's own failure (a bug included)."""
    t0 = time.perf_counter()
    try:
        if req.version != __version__:
            raise UserError(f"this worker runs img2maya {__version__}, the batch needs {req.version}: install "
                            f"the same version on every node")
        scene = build(job.source, job.output, req)
    except (UserError, OSError, MemoryError) as exc:
        return Result(job.index, job.key, False, time.perf_counter() - t0, error=message(exc), sha256=job.sha256,
                      worker=worker_name())
    except Exception as exc:  # noqa: BLE001 - one photo's bug must not lose the batch
        trace = "".join(traceback.format_exception(exc)) if req.debug else None
        return Result(job.index, job.key, False, time.perf_counter() - t0, error=internal_message(exc), bug=True,
                      trace=trace, sha256=job.sha256, worker=worker_name())
    return Result(job.index, job.key, True, time.perf_counter() - t0, sha256=scene["source"].get("sha256"),
                  objects=count_objects(scene["objects"]), warnings=tuple(scene.get("warnings", [])),
                  worker=worker_name())
