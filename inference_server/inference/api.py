"""What the rest of the engine calls: segment, estimate depth, re-segment object crops.

Results are always at the input image's own resolution (types.Segmentation / types.DepthMap). Models are
looked up in the registry (``models_dir`` > ``$IMG2MAYA_MODELS`` > ``~/.img2maya/models``), checked once
(sha256) and then kept warm in a process-wide cache keyed by (model id, folder), so a server pays the load
only once. The networks' frameworks load lazily: LiteRT for the shipped models, torch / TensorFlow only for
the seed models.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference import labelsets, registry
from inference_server.inference.registry import DEFAULT_DEPTH, DEFAULT_INSTANCES, DEFAULT_SEG, ModelSpec
from inference_server.inference.types import DepthMap, Instances, Segmentation

__all__ = ["DEFAULT_DEPTH", "DEFAULT_INSTANCES", "DEFAULT_SEG", "available", "detect_instances", "estimate_depth",
           "load_model", "resegment", "segment", "sky_mask", "clear_cache"]

#: Smallest crop side (pixels) worth sending through a 513-pixel network for recursion.
RESEGMENT_MIN_SIDE = 48

Dir = str | os.PathLike[str] | None


def _deeplab_v3(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.tflite_models import DeepLabV3

    resize = "letterbox" if spec.id == "deeplabv3-mnv2-ade20k32" else "auto"  # measured: docs/MODELS.md
    return DeepLabV3(folder / spec.main_file.name, spec.id, labelsets.names(spec.labels or "ade20k150"),
                     resize=resize)


def _pydnet(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.tflite_models import PyDNet

    return PyDNet(folder / spec.main_file.name, spec.id)


def _yolo_seg(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.yolo_seg import YoloSeg

    return YoloSeg(folder / spec.main_file.name, spec.id, labelsets.names(spec.labels or "coco80"))


def _deeplab_v2(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.seed.deeplab_v2 import DeepLabV2

    return DeepLabV2(folder / spec.main_file.name)


def _monodepth(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.seed.monodepth import Monodepth

    dataset = spec.id.removeprefix("monodepth-")
    return Monodepth(folder / f"model_{dataset}", dataset=dataset)


def _transformers(spec: ModelSpec, folder: Path) -> Any:
    from inference_server.inference.hf.runners import load

    return load(spec, folder)


#: model id -> loader(spec, folder) returning an object with ``.predict(rgb)``.
_LOADERS: dict[str, Callable[[ModelSpec, Path], Any]] = {
    "deeplabv3-mnv2-ade20k150": _deeplab_v3,
    "deeplabv3-mnv2-ade20k32": _deeplab_v3,
    "pydnet-mobile-v1": _pydnet,
    "yolov8n-seg-coco-int8": _yolo_seg,
    "deeplabv2-cocostuff164k": _deeplab_v2,
    "monodepth-cityscapes": _monodepth,
    "monodepth-kitti": _monodepth,
}
#: backend -> loader, for the models of a whole family (Hugging Face checkpoints: inference/hf/).
_BACKEND_LOADERS: dict[str, Callable[[ModelSpec, Path], Any]] = {"transformers": _transformers}
_FRAMEWORK = {"litert": "ai_edge_litert", "torch": "torch", "tensorflow": "tensorflow",
              "transformers": "transformers"}
_EXTRA = {"transformers": "hf"}  # the pip extra that installs a backend's framework (default: seed)

_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def load_model(model_id: str, models_dir: Dir = None) -> Any:
    """The loaded network for ``model_id`` (verified on first use, then cached for the process)."""
    spec = registry.get(model_id)
    folder = registry.model_folder(model_id, models_dir)
    key = (model_id, str(folder.resolve()))
    with _LOCK:
        net = _CACHE.get(key)
        if net is None:
            registry.verify(model_id, models_dir)
            if importlib.util.find_spec(_FRAMEWORK[spec.backend]) is None:
                extra = _EXTRA.get(spec.backend, "seed")
                raise UserError(f"model {model_id} needs the Python package {_FRAMEWORK[spec.backend]!r} "
                                f"(pip install 'img2maya[{extra}]')")
            loader = _LOADERS.get(model_id) or _BACKEND_LOADERS[spec.backend]
            net = _CACHE[key] = loader(spec, folder)
    return net


def clear_cache() -> None:
    """Forget every loaded network (tests; a server never needs it)."""
    with _LOCK:
        _CACHE.clear()


def _check_task(model_id: str, task: str) -> ModelSpec:
    spec = registry.get(model_id)
    if spec.task != task:
        raise UserError(f"model {model_id} is a {spec.task} model, not a {task} model")
    return spec


def available(model: str, models_dir: Dir = None) -> bool:
    """True when the model's files are in place (and valid) and its framework is installed."""
    if model not in registry.MODELS:
        return False
    spec = registry.MODELS[model]
    return registry.available(model, models_dir) and importlib.util.find_spec(_FRAMEWORK[spec.backend]) is not None


def segment(rgb: np.ndarray, model: str = DEFAULT_SEG, models_dir: Dir = None) -> Segmentation:
    """Semantic labels (and confidence where the model has scores) at the image's resolution."""
    _check_task(model, "segmentation")
    seg = load_model(model, models_dir).predict(rgb)
    global _LAST_SKY
    _LAST_SKY = (_fingerprint(rgb), sky_mask(seg))
    return seg


def _fingerprint(rgb: np.ndarray) -> tuple[int, tuple[int, ...], bytes]:
    """Cheap identity of an image: object id, shape and a sparse sample of its pixels."""
    a = np.asarray(rgb)
    return id(rgb), a.shape, a[::61, ::67].tobytes()


#: (fingerprint, sky mask) of the last segmented image, used by estimate_depth when no mask is passed.
_LAST_SKY: tuple[tuple[int, tuple[int, ...], bytes], np.ndarray] | None = None


def sky_mask(seg: Segmentation) -> np.ndarray:
    """Boolean mask of the segmentation's sky classes."""
    ids = labelsets.sky_ids(seg.names)
    return np.isin(seg.labels, ids) if ids else np.zeros(seg.labels.shape, bool)


_sky_of = sky_mask  # estimate_depth's parameter of the same name shadows the function


def estimate_depth(rgb: np.ndarray, model: str = DEFAULT_DEPTH, models_dir: Dir = None,
                   sky_mask: np.ndarray | Segmentation | None = None, *,
                   focal_px: float | None = None, mask_sky: bool = True) -> DepthMap:
    """Depth at the image's resolution; pixels of ``sky_mask`` become NaN (no depth).

    Pass the photo's segmentation (or a bool mask) as ``sky_mask``: PyDNet, trained indoors, puts the sky
    NEAR. Without one, the sky of the last image that ``segment`` saw is used when it is this same image
    (same array object, shape and pixels), so ``segment(rgb)`` then ``estimate_depth(rgb)`` does the right
    thing; ``mask_sky=False`` turns that off. ``focal_px`` (pixels, this image) makes Monodepth metric;
    PyDNet is relative regardless.
    """
    _check_task(model, "depth")
    if sky_mask is None and mask_sky and _LAST_SKY is not None and _LAST_SKY[0] == _fingerprint(rgb):
        sky_mask = _LAST_SKY[1]
    if isinstance(sky_mask, Segmentation):
        sky_mask = _sky_of(sky_mask)
    h, w = np.asarray(rgb).shape[:2]
    if sky_mask is not None and np.asarray(sky_mask).shape != (h, w):
        raise UserError(f"sky mask shape {np.asarray(sky_mask).shape} does not match the photo {(h, w)}")
    net = load_model(model, models_dir)
    if registry.get(model).backend == "transformers":  # Depth Pro uses the focal length for its scale
        return net.predict(rgb, sky_mask=sky_mask, focal_px=focal_px)
    if model.startswith("monodepth-"):
        out = net.predict(rgb, focal_px=focal_px)
        if sky_mask is not None:
            out.depth = np.where(np.asarray(sky_mask, bool), np.float32(np.nan), out.depth).astype(np.float32)
        return out
    return net.predict(rgb, sky_mask=sky_mask)


def detect_instances(rgb: np.ndarray, model: str = DEFAULT_INSTANCES, models_dir: Dir = None) -> Instances:
    """One box, class, score and mask per object (an instance model, or a panoptic segmentation model:
    its things, from the same run as its labels), in the image's own pixels."""
    if registry.get(model).output != "panoptic":
        _check_task(model, "instances")
    net = load_model(model, models_dir)
    return net.instances(rgb) if hasattr(net, "instances") else net.predict(rgb)


def resegment(crops: np.ndarray | Sequence[np.ndarray], masks: np.ndarray | Sequence[np.ndarray],
              model: str = DEFAULT_SEG, models_dir: Dir = None
              ) -> tuple[np.ndarray, list[str]] | None | list[tuple[np.ndarray, list[str]] | None]:
    """Segment object crops again (recursion): each crop is masked to its object and run on its own.

    ``crops``: (h, w, 3) uint8 crops (or one crop); ``masks``: matching (h, w) bool object masks. Pixels
    outside the object are set to neutral grey before the network sees them, so the crop's sub-classes
    (a car's windows, a facade's doors) come from the object alone. Returns, per crop, ``(labels, names)``
    with labels at the crop's size (-1 outside the mask), or None for a crop too small to be worth it
    (under ``RESEGMENT_MIN_SIDE`` pixels on a side). One crop in, one answer out (the engine's hook);
    a list in, a list out.
    """
    _check_task(model, "segmentation")
    single = isinstance(crops, np.ndarray) and crops.ndim == 3
    crop_list = [crops] if single else list(crops)
    mask_list = [masks] if single else list(masks)
    if len(crop_list) != len(mask_list):
        raise UserError(f"resegment got {len(crop_list)} crops but {len(mask_list)} masks")
    from inference_server.inference.tflite_models import DeepLabV3

    out: list[tuple[np.ndarray, list[str]] | None] = []
    if not crop_list:
        return out
    net = load_model(model, models_dir)
    for crop, mask in zip(crop_list, mask_list, strict=True):
        crop = np.asarray(crop)
        m = np.asarray(mask, dtype=bool)
        if crop.ndim != 3 or m.shape != crop.shape[:2]:
            raise UserError(f"resegment: mask shape {m.shape} does not match crop shape {crop.shape}")
        if min(m.shape) < RESEGMENT_MIN_SIDE or not m.any():
            out.append(None)
            continue
        grey = np.where(m[:, :, None], crop[:, :, :3], np.uint8(128)).astype(np.uint8)
        # one network run per crop: mirror averaging would double the cost of deep recursion for
        # sub-labels that only steer a split
        seg = net.predict(grey, flip=False) if isinstance(net, DeepLabV3) else net.predict(grey)
        labels = np.where(m, seg.labels, -1).astype(np.int32)
        out.append((labels, list(seg.names)))
    return out[0] if single else out
