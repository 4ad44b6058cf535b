"""The pipeline both front doors share: photo -> (networks) -> scene engine -> scene@1 dict.

Two stages, so the server can cache the expensive one keyed by the photo's sha256:
`infer` (the networks, seconds) and `analyse` (the scene engine, fast). `run` does both for the
CLI, skipping a network whose output the user brings (labels and/or depth files). Networks and
the engine are imported inside the functions, so `img2maya scene` with the user's own labels and
depth never imports torch, tensorflow or LiteRT.
"""

from __future__ import annotations

import collections
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError
from .imageio import Photo, load_depth, load_labels, load_names, load_photo
from .limits import check_focal_px, check_fov_deg, clip_metric_depth, fov_ok, rescale_unitless_depth

if TYPE_CHECKING:
    from .analysis.engine import SceneEngine, SceneOptions
    from .analysis.stage_cache import StageCache
    from .inference.types import DepthMap, Instances, Segmentation

Progress = Callable[[str, float], None]
DEPTH_KINDS = ("metric", "disparity", "relative")
NETWORKS_HINT = "pass --labels/--label-names/--depth, or install the models: img2maya models list"


def _api() -> Any:
    """inference.api, or a UserError saying how to run without it."""
    try:
        from .inference import api
    except ImportError as exc:
        raise UserError(f"the networks are not available ({' '.join(str(exc).split())}): {NETWORKS_HINT}") from None
    return api


_PREFETCHED: set[str] = set()


def prefetch(*modules: str) -> None:
    """Import ``modules`` on a daemon thread, once per process: the camera estimate's SciPy
    (scipy.optimize, ~0.25 s of a cold `img2maya scene`) loads while the networks run, which release
    the GIL. Python's per-module import locks make a concurrent import of the same module wait for it;
    an import error here is left for the real import to report."""
    todo = [m for m in modules if m not in _PREFETCHED]
    if not todo:
        return
    _PREFETCHED.update(todo)

    def load() -> None:
        import importlib

        for name in todo:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001
                pass

    threading.Thread(target=load, name="img2maya-prefetch", daemon=True).start()


def _sub(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A stage's progress mapped into [lo, hi] of the caller's."""
    if progress is None:
        return None
    return lambda stage, frac: progress(stage, lo + (hi - lo) * min(max(float(frac), 0.0), 1.0))


def infer(photo: Photo, seg_model: str | None, depth_model: str | None, models_dir: str | None = None,
          progress: Progress | None = None, *, sky_from: Segmentation | None = None, focal_px: float | None = None,
          fov_deg: float | None = None) -> tuple[Segmentation | None, DepthMap | None]:
    """Run the networks on the analysed photo; a model of None is skipped (its result is None).

    The depth network gets the photo's focal length in analysed pixels (user > EXIF > default: it
    makes a metric model's scale right) and the sky of the segmentation (this run's, else
    `sky_from`, e.g. the user's own labels), where depth is set to "none".
    """
    api = _api()
    seg = depth = None
    try:
        if seg_model is not None:
            if progress:
                progress("segmentation", 0.0)
            seg = api.segment(photo.rgb, model=seg_model, models_dir=models_dir)
        if depth_model is not None:
            if progress:
                progress("depth", 0.5 if seg_model is not None else 0.0)
            intr = intrinsics(photo, focal_px=focal_px, fov_deg=fov_deg)
            f: float | None = intr.focal_px
            if intr.source == "default" and _estimates_focal(depth_model):
                f = None  # Depth Pro: its own field of view beats the 60 degree guess (then a camera source)
            depth = api.estimate_depth(photo.rgb, model=depth_model, models_dir=models_dir,
                                       sky_mask=seg if seg is not None else sky_from, focal_px=f)
    except ImportError as exc:  # a framework (torch / tensorflow / LiteRT) missing at run time
        raise UserError(f"the networks are not available ({' '.join(str(exc).split())}): {NETWORKS_HINT}") from None
    if progress:
        progress("networks", 1.0)
    return seg, depth


def _estimates_focal(model: str | None) -> bool:
    """A depth model that estimates the field of view itself (inference/hf/specs.py: Depth Pro)."""
    from .inference.hf.specs import estimates_focal

    return estimates_focal(model)


def _is_panoptic(model: str | None) -> bool:
    """A segmentation model that also gives instances (inference/hf/specs.py: Mask2Former panoptic)."""
    from .inference.hf.specs import is_panoptic

    return is_panoptic(model)


INSTANCES_AUTO = ("auto", "default")


def resolve_instances(model: str | None, models_dir: str | None = None) -> str | None:
    """The instance model a request means: None/"auto" = the registry's one when its folder is installed
    (else None: it is optional), "none"/"" = None, an id = that id."""
    if model is not None and model.lower() in ("none", ""):
        return None
    if model is None or model.lower() in INSTANCES_AUTO:
        from .inference import registry

        mid = registry.DEFAULT_INSTANCES
        return mid if registry.model_folder(mid, models_dir).is_dir() else None
    return model


def detect_instances(photo: Photo, model: str | None = None, models_dir: str | None = None, *,
                     explicit: bool | None = None) -> tuple[Instances | None, str | None]:
    """(instances, warning) of the analysed photo from an instance model (analysis/fusion.py fuses them).

    ``model``: None or "auto" = the registry's instance model when its file is installed (a bad file
    then gives no instances and a warning saying why; an absent one, silently none: it is optional);
    "none" = no instances; a model id = that model, and any problem with it is a UserError naming it.
    ``explicit``: whether an id was asked for by the user (default: unless it is None/"auto"); the
    server passes the id it resolved with `resolve_instances` and says which it was.
    """
    if explicit is None:
        explicit = not (model is None or model.lower() in INSTANCES_AUTO)
    mid = resolve_instances(model, models_dir)
    if mid is None:
        return None, None
    try:
        return _api().detect_instances(photo.rgb, model=mid, models_dir=models_dir), None
    except (UserError, ImportError) as exc:
        if explicit:
            msg = str(exc) if mid in str(exc) else f"instance model {mid}: {exc}"
            raise UserError(" ".join(msg.split())) from None
        return None, f"instances: {' '.join(str(exc).split())}; the scene was built without instances"


def intrinsics(photo: Photo, *, focal_px: float | None = None, fov_deg: float | None = None,
               ignore_exif: bool = False) -> Any:
    """The camera at ANALYSIS resolution: user focal (full-resolution pixels) or FOV > EXIF > default
    (`ignore_exif`: a cropped or scanned photo's EXIF lies). The photo's lines come after: `camera`."""
    from .analysis.camera import Intrinsics, intrinsics_for

    if focal_px is not None:  # physical ranges: inference_server/limits.py
        focal_px = check_focal_px(focal_px, photo.full_width)
    if fov_deg is not None:
        fov_deg = check_fov_deg(fov_deg)
    exif = not ignore_exif
    full = intrinsics_for(photo.full_width, photo.full_height, focal_px=focal_px, fov_deg=fov_deg,
                          exif_focal_mm=photo.exif_focal_mm if exif else None,
                          exif_focal_35mm=photo.exif_focal_35mm if exif else None,
                          exif_sensor_width_mm=photo.exif_sensor_width_mm if exif else None)
    if full.source.startswith("exif") and not fov_ok(full.hfov_deg):  # EXIF nonsense (a 5000 mm "35 mm equiv.")
        full = intrinsics_for(photo.full_width, photo.full_height)
    h, w = photo.shape
    # sx (= w / full_width) is the exact analysis scale; the principal point stays the image centre.
    return Intrinsics(full.focal_px * w / photo.full_width, w / 2.0, h / 2.0, w, h, full.source)


def check_ids(labels: np.ndarray, names: list[str], labels_what: str = "labels",
              names_what: str = "the label names") -> None:
    """UserError when a label id has no name (ids < 0 mean 'unlabelled' and are allowed), or when
    no pixel has a class at all."""
    if labels.size and int(labels.max()) < 0:
        raise UserError(f"{labels_what} give no pixel a class (every id is negative, i.e. unlabelled)")
    if labels.size and int(labels.max()) >= len(names):
        bad = np.unique(labels[labels >= len(names)])
        shown = ", ".join(str(int(b)) for b in bad[:5]) + (", ..." if bad.size > 5 else "")
        n = len(names)
        raise UserError(f"{labels_what} use id(s) {shown} but {names_what} list only {n} name{'s' * (n != 1)} "
                        f"(ids 0..{n - 1})")


def analyse(photo: Photo, seg: Segmentation, depth: DepthMap | None, options: SceneOptions, *,
            focal_px: float | None = None, fov_deg: float | None = None, progress: Progress | None = None,
            resegment: Callable[..., Any] | None = None, inputs: dict[str, Any] | None = None,
            instances: Instances | None = None) -> dict[str, Any]:
    """The scene@1 dict for an analysed photo and its network (or user) outputs (`instances`: an
    instance model's output on the same photo, fused with the labels: analysis/fusion.py)."""
    return _engine(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg, progress=progress,
                   resegment=resegment, inputs=inputs, instances=instances).run()


def prepare(photo: Photo, seg: Segmentation, depth: DepthMap | None, options: SceneOptions, *,
            focal_px: float | None = None, fov_deg: float | None = None, progress: Progress | None = None,
            resegment: Callable[..., Any] | None = None, inputs: dict[str, Any] | None = None,
            stages: StageCache | None = None, instances: Instances | None = None) -> SceneEngine:
    """`analyse`'s engine with everything but the recursion done (SceneEngine.prepare):
    `engine.assemble(r)` is the scene `analyse` gives with recursion r, for any r, as often as needed
    (the server keeps it warm for `regenerate`). `stages`: another engine's `stages` for the same
    photo, network output and camera: what the options change does not touch is reused from it."""
    engine = _engine(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg, progress=progress,
                     resegment=resegment, inputs=inputs, stages=stages, instances=instances)
    engine.prepare()
    return engine


_CAMERA_MEMO: collections.OrderedDict[tuple[Any, ...], Any] = collections.OrderedDict()
_CAMERA_LOCK = threading.Lock()
CAMERA_MEMO_SIZE = 16  # estimates and photo lines kept: a regenerate reuses them (a typed FOV: the lines)


_DIGESTS: dict[int, tuple[weakref.ref[np.ndarray], int]] = {}  # id -> (the array, its digest)


def _digest(a: np.ndarray) -> int:
    """hash(a.tobytes()), computed once per array object (inputs are never changed in place: the
    stage cache relies on the same), so a typed FOV's memo lookup costs nothing (~10 ms at 2 MP).
    Plain dict operations (atomic): a weakref callback may run anywhere, even under a lock."""
    key = id(a)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0]() is a:
        return hit[1]
    value = hash(a.tobytes())

    def gone(ref: weakref.ref[np.ndarray], key: int = key) -> None:
        if _DIGESTS.get(key, (None,))[0] is ref:
            _DIGESTS.pop(key, None)

    _DIGESTS[key] = (weakref.ref(a, gone), value)
    return value


def camera(photo: Photo, seg: Segmentation, options: SceneOptions, *, focal_px: float | None = None,
           fov_deg: float | None = None, network_focal_px: float | None = None) -> tuple[Any, Any]:
    """(intrinsics, CameraEstimate or None) at analysis resolution: the focal of `intrinsics`, or the
    photo's vanishing points' when neither the user nor EXIF gives one and the lines determine it; the
    estimate also gives pitch, roll and the scene's axes to the engine (docs/CAMERA.md).
    `network_focal_px`: a depth network's own focal length (analysed pixels; Depth Pro), used when
    neither the user nor EXIF gives one (source "depth-model", trusted like EXIF: the lines then give
    only pitch and roll)."""
    intr = intrinsics(photo, focal_px=focal_px, fov_deg=fov_deg, ignore_exif=options.ignore_exif)
    if intr.source == "default" and network_focal_px is not None and network_focal_px > 0:
        intr = replace(intr, focal_px=float(network_focal_px), source="depth-model")
    if not options.estimate_camera:
        return intr, None
    from .analysis.shapes import load_table
    from .calib import estimate_camera, photo_lines

    labels = np.asarray(seg.labels)
    known = intr.source != "default"
    photo_key = (photo.sha256, photo.shape, labels.shape, _digest(labels), tuple(seg.names),
                 options.shapes_table)
    key = (*photo_key, round(intr.focal_px, 6), known)
    with _CAMERA_LOCK:
        est, lines = _CAMERA_MEMO.get(key), _CAMERA_MEMO.get(photo_key)
    if est is None:
        if lines is None:  # the segments and their vanishing points do not depend on the focal: a typed FOV reuses them
            table = load_table(options.shapes_table)
            lines = photo_lines(photo.rgb, labels, [table.lookup(n).role for n in seg.names])
        est = estimate_camera(photo.rgb, intr.focal_px, focal_known=known, lines=lines)
        with _CAMERA_LOCK:
            _CAMERA_MEMO[key], _CAMERA_MEMO[photo_key] = est, lines
            while len(_CAMERA_MEMO) > CAMERA_MEMO_SIZE:
                _CAMERA_MEMO.popitem(last=False)
    if est.focal_px is not None and not known:
        intr = replace(intr, focal_px=est.focal_px, source="vanishing-points")
    return intr, est


def _engine(photo: Photo, seg: Segmentation, depth: DepthMap | None, options: SceneOptions, *,
            focal_px: float | None, fov_deg: float | None, progress: Progress | None,
            resegment: Callable[..., Any] | None, inputs: dict[str, Any] | None,
            stages: StageCache | None = None, instances: Instances | None = None) -> SceneEngine:
    from .analysis.engine import SceneEngine

    labels = np.asarray(seg.labels)
    check_ids(labels, list(seg.names))
    net_f = (depth.extras or {}).get("network_focal_px") if depth is not None else None
    intr, cam = camera(photo, seg, options, focal_px=focal_px, fov_deg=fov_deg,
                       network_focal_px=float(net_f) if isinstance(net_f, int | float) else None)
    if depth is not None:
        if depth.kind not in DEPTH_KINDS:
            raise UserError(f"depth kind must be one of {', '.join(DEPTH_KINDS)}, got {depth.kind!r}")
        options = replace(options, depth_kind=depth.kind)
    src_inputs = dict(inputs or {})
    if depth is not None:
        src_inputs.setdefault("depth_kind", depth.kind)
    source: dict[str, Any] = {
        "image": photo.path, "width": photo.full_width, "height": photo.full_height, "sha256": photo.sha256,
        "models": {"segmentation": str(seg.model), "depth": str(depth.model) if depth is not None else "none"},
        "inputs": src_inputs,
    }
    if instances is not None:  # absent without one: a scene built without instances is what it was
        source["models"]["instances"] = str(instances.model)
    return SceneEngine(photo.rgb, labels, list(seg.names), None if depth is None else depth.depth, intr, options,
                       source=source, confidence=getattr(seg, "confidence", None),
                       full_size=(photo.full_width, photo.full_height), progress=progress, resegment=resegment,
                       stages=stages, camera=cam, instances=instances)


def _resegmenter(api: Any, seg_model: str, models_dir: str | None) -> Callable[..., Any] | None:
    fn = getattr(api, "resegment", None)
    if fn is None:
        return None

    def resegment(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("model", seg_model)
        kwargs.setdefault("models_dir", models_dir)
        return fn(*args, **kwargs)

    return resegment


def run(photo_path: str | os.PathLike[str], *, labels_path: str | os.PathLike[str] | None = None,
        names_path: str | os.PathLike[str] | None = None, depth_path: str | os.PathLike[str] | None = None,
        depth_kind: str = "metric", depth_scale: float | None = None, seg_model: str | None = None,
        depth_model: str | None = None, models_dir: str | None = None, options: SceneOptions | None = None,
        focal_px: float | None = None, fov_deg: float | None = None, progress: Progress | None = None,
        max_analysis_pixels: int | None = None, instances_model: str | None = None) -> dict[str, Any]:
    """Photo file -> scene dict. User labels/depth replace the matching network; the other runs.

    `depth_model="none"` (or "") means no depth at all: objects are placed from class size priors.
    `instances_model`: see `detect_instances` (None = the instance model when installed, except with
    the user's own labels, where only an explicit model id runs one).
    """
    prefetch(f"{__package__}.calib")  # loads while the photo decodes and the networks run
    from .analysis.engine import SceneOptions
    from .imageio import DEFAULT_DEPTH_PNG_SCALE, DEFAULT_MAX_ANALYSIS_PIXELS
    from .inference.types import DepthMap, Segmentation

    options = options if options is not None else SceneOptions()
    if depth_kind not in DEPTH_KINDS:
        raise UserError(f"depth kind must be one of {', '.join(DEPTH_KINDS)}, got {depth_kind!r}")
    if labels_path is not None and names_path is None:
        raise UserError("--labels needs --label-names (a text file, line k = name of id k, "
                        "or a shipped set such as ade20k150)")
    if names_path is not None and labels_path is None:
        raise UserError("--label-names needs --labels (the label image it names)")
    photo = load_photo(photo_path, max_analysis_pixels if max_analysis_pixels is not None
                       else DEFAULT_MAX_ANALYSIS_PIXELS)
    intrinsics(photo, focal_px=focal_px, fov_deg=fov_deg)  # a bad camera is refused before any network runs
    if progress:
        progress("photo", 0.02)
    inputs: dict[str, Any] = {}
    seg = depth = None
    if labels_path is not None:
        names = load_names(names_path)  # type: ignore[arg-type]
        labels = load_labels(labels_path, photo.shape, photo.full_shape)
        check_ids(labels, names, f"labels {labels_path}", f"label names {names_path}")
        seg = Segmentation(labels=labels, names=names, model="user")
        inputs.update(labels=str(labels_path), label_names=str(names_path))
    if depth_path is not None:
        d = load_depth(depth_path, photo.shape, photo.full_shape,
                       png_scale=depth_scale if depth_scale is not None else DEFAULT_DEPTH_PNG_SCALE)
        if depth_kind == "metric":  # metres outside limits.DEPTH_MIN_M..DEPTH_MAX_M: no depth (or refused)
            d = clip_metric_depth(d, f"depth {depth_path}")
        else:  # no unit: a scale far from 1 only risks float32 overflow
            d = rescale_unitless_depth(d)
        depth = DepthMap(depth=d, kind=depth_kind, model="user")
        inputs.update(depth=str(depth_path))
        if depth_scale is not None:
            inputs["depth_scale"] = float(depth_scale)
    no_depth = depth_path is None and depth_model is not None and depth_model.lower() in ("none", "")
    need_seg, need_depth = seg is None, depth is None and not no_depth
    resegment = None
    if need_seg or need_depth:
        api = _api()
        seg_id = (seg_model or api.DEFAULT_SEG) if need_seg else None
        depth_id = (depth_model or api.DEFAULT_DEPTH) if need_depth else None
        try:
            net_seg, net_depth = infer(photo, seg_id, depth_id, models_dir=models_dir,
                                       progress=_sub(progress, 0.02, 0.6), sky_from=seg, focal_px=focal_px,
                                       fov_deg=fov_deg)
        except UserError as exc:
            available = getattr(api, "available", None)
            missing = available is not None and any(m is not None and m in str(exc) and not available(m, models_dir)
                                                    for m in (seg_id, depth_id))
            if missing:  # the registry says which file goes where; add how to do without it
                raise UserError(f"{exc}; or skip the networks with --labels/--label-names/--depth") from None
            raise
        if need_seg:
            seg = net_seg
            if options.recursion > 0 and seg_id is not None:
                resegment = _resegmenter(api, seg_id, models_dir)
        if need_depth:
            depth = net_depth
    assert seg is not None
    auto = instances_model is None or instances_model.lower() in INSTANCES_AUTO
    if auto and need_seg and _is_panoptic(seg_id):  # its own things, from the run that made the labels
        instances_model, auto = seg_id, False
    instances, note = (None, None) if auto and labels_path is not None else detect_instances(
        photo, instances_model, models_dir)
    scene = analyse(photo, seg, depth, options, focal_px=focal_px, fov_deg=fov_deg,
                    progress=_sub(progress, 0.6 if (need_seg or need_depth) else 0.05, 0.98),
                    resegment=resegment, inputs=inputs, instances=instances)
    if note:
        scene.setdefault("warnings", []).append(note)
    return scene
