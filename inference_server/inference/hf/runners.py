"""Hugging Face checkpoints run with ``transformers``: outputs turned into the engine's types.

``load(spec, folder)`` builds the network of a registry entry (backend "transformers") from its folder:
``config.json`` checked for the expected architecture, the weights loaded from ``model.safetensors``
with every tensor accounted for (a config that does not match the weights is a UserError, never a
silently re-initialised layer), the preprocessing done by the checkpoint's own transformers image
processor (``AutoImageProcessor`` on ``preprocessor_config.json``). Results are at the photo's resolution:

* ``HFDepth.predict`` -> ``DepthMap``: "disparity" (Depth Anything V2), "metric" in metres (metric
  fine-tunes; Depth Pro). Depth Pro also reports its field of view; its canonical inverse depth is made
  metric with the focal length the caller gives (user or EXIF) or else with the network's own, which is
  then offered to the camera as ``extras["network_focal_px"]`` (pipeline.camera).
* ``HFSemantic.predict`` -> ``Segmentation`` with softmax confidence, upsampled from the logit grid by
  ``tflite_models.upsample_labels`` (no dense C-channel upsampling).
* ``HFPanoptic.predict`` -> ``Segmentation``; ``HFPanoptic.instances`` -> ``Instances`` (one per "thing"
  segment, masks kept on the post-processing grid), both from one network run per photo.

Imports torch and transformers; only api.load_model imports this module.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference import labelsets
from inference_server.inference.hf import files, specs
from inference_server.inference.tflite_models import upsample_float, upsample_labels
from inference_server.inference.types import DepthMap, Instances, Segmentation, as_rgb_uint8
from inference_server.limits import DEPTH_MAX_M, DEPTH_MIN_M, fov_ok, rescale_unitless_depth

#: Panoptic post-processing grid: the photo scaled so that its longer side is at most this (the
#: 100 query masks are interpolated to it: 100 x 640 x 480 floats = 123 MB, not 800 MB at 2 MP).
PANOPTIC_MAX_SIDE = 640
PANOPTIC_THRESHOLD = 0.8  # transformers' (and Mask2Former's demo) score threshold for a segment
UNLABELED = "unlabeled"  # the panoptic class of pixels no segment claims
DEFAULT_FOV_DEG = 60.0  # the engine's default camera, for Depth Pro when its own FOV is unusable
_COCO_THINGS = frozenset(labelsets.names("coco80"))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(exc).__name__


def _frameworks(model_id: str) -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise UserError(f"model {model_id} needs the Python packages torch and transformers "
                        f"(pip install 'img2maya[hf]'): {_one_line(exc)}") from None
    transformers.utils.logging.set_verbosity_error()  # its loading report would bury our one line
    transformers.utils.logging.disable_progress_bar()  # and its "Loading weights" bar the CLI's own
    return torch, transformers


def _processor(transformers: Any, folder: Path, hf: specs.HFModel) -> Any:
    """The checkpoint's own image processor; Depth Pro's needs torchvision, so without it the same
    settings go through transformers' PIL-backed DPT processor (see specs: a small numeric difference)."""
    try:
        return transformers.AutoImageProcessor.from_pretrained(str(folder), local_files_only=True)
    except ImportError:
        if hf.model_type != "depth_pro":
            raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"model {hf.id}: {folder / 'preprocessor_config.json'} is not a usable image "
                        f"processor config ({_one_line(exc)})") from None
    import json

    try:
        cfg = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
        size = cfg.get("size", {"height": 1536, "width": 1536})
        cls = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
        return cls(do_resize=cfg.get("do_resize", True), size=size, keep_aspect_ratio=False,
                   ensure_multiple_of=1, resample=cfg.get("resample", 2), do_rescale=cfg.get("do_rescale", True),
                   rescale_factor=cfg.get("rescale_factor", 1 / 255), do_normalize=cfg.get("do_normalize", True),
                   image_mean=cfg.get("image_mean", [0.5, 0.5, 0.5]), image_std=cfg.get("image_std", [0.5, 0.5, 0.5]),
                   do_pad=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"model {hf.id}: {folder / 'preprocessor_config.json'} is not a usable image "
                        f"processor config ({_one_line(exc)})") from None


def load(spec: Any, folder: Path) -> Any:
    """The runner of registry entry ``spec`` from ``folder`` (already verified: files present and whole)."""
    hf = specs.get(spec.id)
    if hf is None:
        raise UserError(f"model {spec.id} is not a Hugging Face model")
    problem = files.config_problem(folder / "config.json", hf.model_type)
    if problem:
        raise UserError(f"model {hf.id}: {folder / 'config.json'} is {problem}; put the config.json of "
                        f"{hf.tree_url} there")
    torch, transformers = _frameworks(hf.id)
    cls = getattr(transformers, hf.architecture)
    try:
        model, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        if "size mismatch" in str(exc) or "mismatch" in str(exc).lower():
            raise UserError(f"model {hf.id}: {folder / 'config.json'} does not match "
                            f"{folder / 'model.safetensors'} (tensor shapes differ): put the pair of "
                            f"{hf.tree_url} there") from None
        raise UserError(f"model {hf.id}: cannot load {folder} ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"model {hf.id}: cannot load {folder / 'model.safetensors'} ({_one_line(exc)})") from None
    missing = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    if missing:
        raise UserError(f"model {hf.id}: {folder / 'config.json'} does not match {folder / 'model.safetensors'} "
                        f"({len(missing)} weights missing or of another shape, e.g. {str(missing[0])!r}): put the "
                        f"pair of {hf.tree_url} there")
    model = model.float().eval()  # float16 checkpoints (Depth Pro) run in float32 on a CPU
    processor = _processor(transformers, folder, hf)
    runner: type[_Runner] = {"panoptic": HFPanoptic, "semantic": HFSemantic}.get(hf.output, HFDepth)
    return runner(hf, model, processor, torch)


class _Runner:
    """One loaded checkpoint; one forward pass at a time (the server's worker and a warm-up may share it)."""

    def __init__(self, hf: specs.HFModel, model: Any, processor: Any, torch: Any) -> None:
        self.hf, self.model, self.processor, self.torch = hf, model, processor, torch
        self.model_id = hf.id
        self.lock = threading.Lock()
        self.timings: dict[str, float] = {}

    def _forward(self, a: np.ndarray) -> tuple[Any, Any]:
        """(processor inputs, model outputs) for a uint8 RGB photo."""
        t0 = time.perf_counter()
        inputs = self.processor(images=a, return_tensors="pt")
        t1 = time.perf_counter()
        try:
            with self.lock, self.torch.inference_mode():
                out = self.model(**inputs)
        except (RuntimeError, ValueError) as exc:
            raise UserError(f"model {self.model_id} failed on the photo ({_one_line(exc)}): its config.json "
                            f"and weights may not be the ones of {self.hf.tree_url}") from None
        self.timings = {"preprocess": t1 - t0, "network": time.perf_counter() - t1}
        return inputs, out


class HFDepth(_Runner):
    """Depth Anything V2 (disparity or metric) and Depth Pro (metric + field of view)."""

    def predict(self, rgb: np.ndarray, sky_mask: np.ndarray | None = None, *,
                focal_px: float | None = None) -> DepthMap:
        """Depth at the photo's resolution; ``sky_mask`` pixels become NaN. ``focal_px`` (pixels of this
        image): Depth Pro's metric scale uses it instead of its own field of view."""
        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        if sky_mask is not None and np.asarray(sky_mask).shape != (h, w):
            raise UserError(f"sky mask shape {np.asarray(sky_mask).shape} does not match the photo {(h, w)}")
        inputs, out = self._forward(a)
        t0 = time.perf_counter()
        net_h, net_w = (int(v) for v in inputs["pixel_values"].shape[-2:])
        extras: dict[str, Any] = {"network_size": [net_w, net_h], "output": self.hf.output,
                                  "sky_masked": sky_mask is not None}
        if self.hf.output == "metric+focal":
            depth = self._depth_pro(out, h, w, focal_px, extras)
        else:
            pred = self.processor.post_process_depth_estimation(out, target_sizes=[(h, w)])[0]["predicted_depth"]
            depth = pred.detach().float().cpu().numpy().astype(np.float32)
        depth = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
        if self.hf.output == "disparity":
            depth[~(depth > 0)] = np.nan  # zero disparity = infinitely far: no depth
            depth = rescale_unitless_depth(depth)  # no unit: keep the calibration's float32 arithmetic sane
        else:  # metres: outside the engine's physical range is no depth
            depth[~((depth >= DEPTH_MIN_M) & (depth <= DEPTH_MAX_M))] = np.nan
        if sky_mask is not None:
            depth[np.asarray(sky_mask, bool)] = np.nan
        self.timings["postprocess"] = time.perf_counter() - t0
        return DepthMap(depth=depth, kind=self.hf.depth_kind or "metric", model=self.model_id, extras=extras)

    def _depth_pro(self, out: Any, h: int, w: int, focal_px: float | None, extras: dict[str, Any]) -> np.ndarray:
        """Metric depth from Depth Pro's canonical inverse depth (depth Pro, eq. 1: inverse depth x width /
        focal length), with the caller's focal, else the network's (its FOV), else the default camera's."""
        torch = self.torch
        fov = getattr(out, "field_of_view", None)
        fov_deg = float(fov.reshape(-1)[0]) if fov is not None else float("nan")
        net_focal = 0.5 * w / math.tan(math.radians(0.5 * fov_deg)) if fov_ok(fov_deg) else None
        extras["network_fov_deg"] = round(fov_deg, 4) if math.isfinite(fov_deg) else None
        if net_focal is not None:
            extras["network_focal_px"] = float(net_focal)
        if focal_px is not None and focal_px > 0:
            f, extras["focal_from"] = float(focal_px), "given"
        elif net_focal is not None:
            f, extras["focal_from"] = net_focal, "network"
        else:
            f, extras["focal_from"] = 0.5 * w / math.tan(math.radians(0.5 * DEFAULT_FOV_DEG)), "default"
        extras["focal_px_used"] = float(f)
        inv = out.predicted_depth.detach().float()[:1] * (w / f)  # (1, h', w') metric inverse depth
        inv = torch.nn.functional.interpolate(inv[:, None], size=(h, w), mode="bilinear", align_corners=False)
        return (1.0 / torch.clamp(inv[0, 0], min=1e-4, max=1e4)).cpu().numpy().astype(np.float32)


def _config_names(model: Any) -> list[str]:
    """The checkpoint's class names (config id2label) in id order, COCO-panoptic "-merged" suffixes
    dropped so that the names are COCO-Stuff's (sky-other, wall-other, tree, ...)."""
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
    return [id2label.get(i, f"class {i}").strip().removesuffix("-merged") for i in range(len(id2label))]


def _fingerprint(a: np.ndarray) -> tuple[tuple[int, ...], str]:
    return a.shape, hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()


class HFSemantic(_Runner):
    """SegFormer: semantic labels with softmax confidence."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        n = int(self.model.config.num_labels)
        if self.hf.labels in labelsets.LABEL_FILES:
            self.names = labelsets.names(self.hf.labels)
            if n + self.hf.label_offset != len(self.names):
                raise UserError(f"model {self.model_id}: its config.json has {n} classes, the {self.hf.labels} "
                                f"label set {len(self.names) - self.hf.label_offset}: not the checkpoint of "
                                f"{self.hf.tree_url}")
        else:
            self.names = _config_names(self.model)

    def predict(self, rgb: np.ndarray, *, flip: bool | None = None) -> Segmentation:
        """Labels and confidence at the photo's resolution (``flip`` is accepted and ignored)."""
        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        _, out = self._forward(a)
        t0 = time.perf_counter()
        lg = out.logits[0].detach().float().permute(1, 2, 0).cpu().numpy()  # (H', W', C): the whole photo
        small = lg.argmax(-1).astype(np.int32)
        labels = upsample_labels(lg, small, h, w) + np.int32(self.hf.label_offset)
        p = 1.0 / np.exp(lg - lg.max(-1, keepdims=True)).sum(-1)
        conf = np.clip(upsample_float(p.astype(np.float32), h, w), 0.0, 1.0).astype(np.float32)
        self.timings["postprocess"] = time.perf_counter() - t0
        return Segmentation(labels=labels.astype(np.int32), names=list(self.names), model=self.model_id,
                            confidence=conf)


class HFPanoptic(_Runner):
    """Mask2Former panoptic: every pixel's class (stuff and things) and one instance per thing."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # + "unlabeled" (COCO-Stuff's name, which the shapes table skips) for pixels no segment claims, so that
        # every pixel has a class id and the label files (outputs.py) never clip -1 onto class 0
        self.names = [*_config_names(self.model), UNLABELED]
        self.thing = np.array([n in _COCO_THINGS for n in self.names], bool)
        self._memo: tuple[Any, Segmentation, Instances] | None = None
        self._memo_lock = threading.Lock()

    def predict(self, rgb: np.ndarray, *, flip: bool | None = None) -> Segmentation:
        return self.run(rgb)[0]

    def instances(self, rgb: np.ndarray) -> Instances:
        """The things of the photo's panoptic segmentation (the run ``predict`` made, when it was this photo)."""
        return self.run(rgb)[1]

    def run(self, rgb: np.ndarray) -> tuple[Segmentation, Instances]:
        a = as_rgb_uint8(rgb)
        key = _fingerprint(a)
        with self._memo_lock:
            if self._memo is not None and self._memo[0] == key:
                return self._memo[1], self._memo[2]
        seg, inst = self._panoptic(a)
        with self._memo_lock:
            self._memo = (key, seg, inst)
        return seg, inst

    def _panoptic(self, a: np.ndarray) -> tuple[Segmentation, Instances]:
        h, w = a.shape[:2]
        _, out = self._forward(a)
        t0 = time.perf_counter()
        s = min(1.0, PANOPTIC_MAX_SIDE / max(h, w))
        ph, pw = max(1, round(h * s)), max(1, round(w * s))
        stuff = {i for i in range(len(self.names) - 1) if not self.thing[i]}
        res = self.processor.post_process_panoptic_segmentation(
            out, threshold=PANOPTIC_THRESHOLD, label_ids_to_fuse=stuff, target_sizes=[(ph, pw)])[0]
        ids = res["segmentation"].detach().cpu().numpy().astype(np.int64)
        info = list(res["segments_info"])
        top = int(max([int(i["id"]) for i in info] + [int(ids.max(initial=0)), 0])) + 1
        lut_label = np.full(top + 1, len(self.names) - 1, np.int32)  # segment id -> class ("unlabeled")
        lut_score = np.zeros(top + 1, np.float32)
        for seg in info:
            lut_label[int(seg["id"])] = int(seg["label_id"])
            lut_score[int(seg["id"])] = float(seg["score"])
        ids = np.clip(ids, -1, top)
        small = lut_label[ids]  # ids of -1 index the last entry: "unlabeled"
        labels = upsample_labels(None, small, h, w, "nearest")
        conf = np.clip(upsample_float(lut_score[ids], h, w), 0.0, 1.0).astype(np.float32)
        seg_out = Segmentation(labels=labels.astype(np.int32), names=list(self.names), model=self.model_id,
                               confidence=conf)
        inst = self._things(ids, info, h, w, ph, pw)
        self.timings["postprocess"] = time.perf_counter() - t0
        return seg_out, inst

    def _things(self, ids: np.ndarray, info: list[dict[str, Any]], h: int, w: int, ph: int, pw: int) -> Instances:
        """One instance per thing segment: box from its pixels, mask as +1/-1 logits on the post-processing
        grid (knot (r, c) at the centre of grid cell (r, c); types.Instances evaluates it on any lattice)."""
        sx, sy = w / pw, h / ph
        stride = sx  # the grid keeps the photo's aspect ratio (to rounding)
        boxes, classes, scores, logits, origins = [], [], [], [], []
        for seg in sorted(info, key=lambda s: -float(s["score"])):
            k = int(seg["label_id"])
            if not (0 <= k < len(self.names)) or not self.thing[k]:
                continue
            m = ids == int(seg["id"])
            rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
            if rows.size == 0:
                continue
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            gy0, gx0 = max(0, r0 - 1), max(0, c0 - 1)
            win = m[gy0:min(ph, r1 + 1), gx0:min(pw, c1 + 1)]
            logits.append(np.where(win, np.float32(1.0), np.float32(-1.0)))
            origins.append((gx0, gy0))
            boxes.append((min(w, c0 * sx), min(h, r0 * sy), min(w, c1 * sx), min(h, r1 * sy)))
            classes.append(k)
            scores.append(float(seg["score"]))
        return Instances(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), class_ids=np.asarray(classes, np.int32),
                         scores=np.asarray(scores, np.float32), class_names=list(self.names), model=self.model_id,
                         width=w, height=h, mask_logits=logits, mask_origin=np.asarray(origins, np.int32).reshape(-1, 2),
                         mask_stride=float(stride), mask_offset=(-0.5 * stride, -0.5 * stride), box_slack=float(stride))
