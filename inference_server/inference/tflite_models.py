"""The shipped networks on LiteRT (ai_edge_litert): DeepLabv3 ADE20K-150 / ADE20K-32 and PyDNet.

Each class wraps one ``.tflite`` file and returns results at the input photo's own resolution.
Preprocessing follows each model's MODEL.md (see docs/MODELS.md); the choices below were measured on the
ground-truth samples with ``benchmarks/bench_quality.py``:

* DeepLab: ``resize="auto"`` stretches photos close to square and letterboxes (aspect kept, grey padding,
  valid region cropped back) wider or taller ones (ratio above ``LETTERBOX_ASPECT``), because stretching a
  2:1 street frame squashes cars and road into shapes the network never saw.
  The ADE20K-32 file letterboxes at every aspect (better on the ADE val images too, as MODEL.md found).
* DeepLab ADE20K-150: logits of the photo and of its mirror image are averaged (``flip=True``).
* Going back to the photo's size: labels = argmax of bilinearly interpolated logits, evaluated only among
  the labels of the four neighbouring network pixels (exact wherever those agree, which is almost
  everywhere); confidence = the network-resolution softmax maximum, interpolated bilinearly.
* PyDNet: stretched to 640x448 (as its app does; letterboxing was better on one KITTI frame and much
  worse on the other), the finest output selected by tensor NAME, the known hot spot near pixel (10, 12)
  removed by a local median, values clipped to the 1..99th percentiles, and its mirror image averaged in
  for photos of ordinary aspect (it pays indoors, it hurts on very wide street frames).

``ai_edge_litert`` is imported inside ``Interpreter`` construction only. An interpreter is not thread-safe,
so every model serialises its own calls with a lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from inference_server.errors import UserError
from inference_server.inference.types import DepthMap, Segmentation

NUM_THREADS = 2
LETTERBOX_ASPECT = 1.5  # letterbox when max(w/h, h/w) exceeds this (measured; see docs/MODELS.md)
PYDNET_OUTPUT = "PSD/resize_images/ResizeBilinear"


def as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    """The image as a (h, w, 3) uint8 array (grey is repeated, alpha dropped); UserError otherwise."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise UserError(f"expected an RGB image (h, w, 3), got an array of shape {a.shape}")
    if a.dtype != np.uint8:
        raise UserError(f"expected uint8 RGB pixels, got {a.dtype}")
    return a[:, :, :3]


def _interpreter(path: str | os.PathLike[str]) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=os.fspath(path), num_threads=NUM_THREADS)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a loadable TFLite model: {' '.join(str(exc).split())[:160]}") from None
    return it


def resize_rgb(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a uint8 RGB image with PIL."""
    from PIL import Image

    if a.shape[1] == w and a.shape[0] == h:
        return a
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR))


def resize_float(a: np.ndarray, w: int, h: int) -> np.ndarray:
    """Bilinear resize of a 2-D float map (PIL 'F' mode: fast, half-pixel centres)."""
    from PIL import Image

    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.shape == (h, w):
        return a
    return np.asarray(Image.fromarray(a, mode="F").resize((w, h), Image.Resampling.BILINEAR))


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weight along one axis (half-pixel centres, edge-clamped)."""
    s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    s = np.clip(s, 0.0, n_in - 1)
    i0 = np.floor(s).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (s - i0).astype(np.float32)


def upsample_labels(logits: np.ndarray | None, labels: np.ndarray, h: int, w: int,
                    mode: str = "bilinear") -> np.ndarray:
    """Labels at (h, w) from network-resolution ``logits`` (H, W, C) and their argmax ``labels`` (H, W).

    "nearest": the label of the nearest network pixel. "bilinear": the argmax of bilinearly interpolated
    logits among the labels of the 4 neighbouring network pixels, so only boundary pixels cost more than
    a gather (151 channels at 2 MP would be 1.2 GB of floats).
    """
    H, W = labels.shape
    y0, y1, wy = _taps(H, h)
    x0, x1, wx = _taps(W, w)
    if mode == "nearest":
        yn = np.where(wy >= 0.5, y1, y0)
        xn = np.where(wx >= 0.5, x1, x0)
        return labels[yn[:, None], xn[None, :]].astype(np.int32)
    corners = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)]
    lab = [labels[yy[:, None], xx[None, :]] for yy, xx in corners]
    out = lab[0].astype(np.int32)
    edge = (lab[0] != lab[1]) | (lab[0] != lab[2]) | (lab[0] != lab[3])
    if logits is None or not edge.any():
        return out
    r, c = np.nonzero(edge)
    ry0, ry1, rwy = y0[r], y1[r], wy[r]
    cx0, cx1, cwx = x0[c], x1[c], wx[c]
    weights = [(1 - rwy) * (1 - cwx), (1 - rwy) * cwx, rwy * (1 - cwx), rwy * cwx]
    idx = [(ry0, cx0), (ry0, cx1), (ry1, cx0), (ry1, cx1)]
    best = np.full(r.size, -np.inf, np.float32)
    best_label = out[r, c].copy()
    for cand in (lb[r, c] for lb in lab):
        val = sum(wt * logits[yy, xx, cand] for wt, (yy, xx) in zip(weights, idx, strict=True))
        better = val > best
        best = np.where(better, val, best)
        best_label = np.where(better, cand, best_label)
    out[r, c] = best_label
    return out


class _Lite:
    """One interpreter plus a lock; inputs and outputs found by name or position."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.it = _interpreter(path)
        self.inp = self.it.get_input_details()[0]
        self.outputs = {d["name"]: d for d in self.it.get_output_details()}
        self.lock = threading.Lock()
        _, self.in_h, self.in_w, _ = (int(v) for v in self.inp["shape"])

    def run(self, x: np.ndarray, output: str | None = None,
            take: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Invoke on one (1, h, w, 3) batch; return ``take(view)`` of the output (by name, else the first).

        ``take`` reads the interpreter's own output buffer (no copy of the whole 513x513x151 tensor, which
        alone costs ~50 ms) and must return an array that does not alias it; default: a full copy.
        """
        d = self.outputs[output] if output else next(iter(self.outputs.values()))
        with self.lock:
            self.it.set_tensor(self.inp["index"], x)
            self.it.invoke()
            view = self.it.tensor(d["index"])()
            out = take(view) if take is not None else view.copy()
            del view  # the interpreter refuses to run again while a view is alive
            return out


def _fit(h: int, w: int, size_h: int, size_w: int, resize: str) -> tuple[int, int, bool]:
    """(valid h, valid w, letterboxed) of the photo inside the network input for a resize mode."""
    if resize == "auto":
        resize = "letterbox" if max(w / h, h / w) > LETTERBOX_ASPECT else "stretch"
    if resize == "stretch":
        return size_h, size_w, False
    if resize != "letterbox":
        raise UserError(f"unknown resize mode {resize!r}: use auto, stretch or letterbox")
    s = min(size_h / h, size_w / w)
    return max(1, round(h * s)), max(1, round(w * s)), True


class DeepLabV3:
    """DeepLabv3 MobileNetV2 TFLite: the float-logit ADE20K-150 file or the uint8 ArgMax ADE20K-32 file.

    ``predict(rgb)`` -> Segmentation at the photo's resolution; confidence is the softmax maximum for the
    logit model and None for the ArgMax model (it exposes no scores).
    """

    def __init__(self, path: str | os.PathLike[str], model_id: str, names: list[str], *,
                 resize: str = "auto", flip: bool | None = None, upsample: str = "bilinear") -> None:
        self.net = _Lite(path)
        self.model_id = model_id
        self.names = list(names)
        self.quantized = self.net.inp["dtype"] == np.uint8
        self.resize = resize
        self.flip = (not self.quantized) if flip is None else bool(flip)
        self.upsample = upsample
        self.timings: dict[str, float] = {}

    def _input(self, small: np.ndarray, vh: int, vw: int) -> np.ndarray:
        size_h, size_w = self.net.in_h, self.net.in_w
        if self.quantized:  # uint8 fed as is; the quantisation maps it to (x - 128) / 128. Pad = grey 128.
            x = np.full((1, size_h, size_w, 3), 128, np.uint8)
            x[0, :vh, :vw] = small
        else:  # float: normalise ourselves; pad 0 = grey 127.5
            x = np.zeros((1, size_h, size_w, 3), np.float32)
            x[0, :vh, :vw] = small.astype(np.float32) / 127.5 - 1.0
        return x

    def network_output(self, rgb: np.ndarray, *, flip: bool | None = None,
                       resize: str | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(logits (vh, vw, C) or None, labels (vh, vw)) over the photo's valid region at network size."""
        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        flip = self.flip if flip is None else flip
        vh, vw, _ = _fit(h, w, self.net.in_h, self.net.in_w, resize or self.resize)
        small = resize_rgb(a, vw, vh)
        out = self.net.run(self._input(small, vh, vw), take=lambda v: v[0, :vh, :vw].copy())
        if self.quantized:  # ArgMax output: no scores, so no averaging with the mirror image
            return None, out.astype(np.int32)
        if flip:  # the mirror of the resized image: resizing commutes with a horizontal flip

            def add_mirrored(v: np.ndarray) -> np.ndarray:
                return np.add(out, v[0, :vh, :vw][:, ::-1], out=out)

            self.net.run(self._input(small[:, ::-1], vh, vw), take=add_mirrored)
            out *= 0.5
        return out, out.argmax(-1).astype(np.int32)

    def predict(self, rgb: np.ndarray, *, flip: bool | None = None) -> Segmentation:
        """Segment an RGB uint8 image; ``flip`` overrides the model's mirror averaging for this call."""
        import time

        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        t0 = time.perf_counter()
        logits, small = self.network_output(a, flip=flip)
        t1 = time.perf_counter()
        labels = upsample_labels(logits, small, h, w, self.upsample)
        conf = None
        if logits is not None:
            # Softmax probability of the argmax class, on every 2nd row and column: the logits are a
            # bilinear upsampling of a 1/16 grid inside the network, so this loses nothing visible.
            sub = logits[::2, ::2]
            p = 1.0 / np.exp(sub - sub.max(-1, keepdims=True)).sum(-1)
            conf = np.clip(resize_float(p, w, h), 0.0, 1.0)
        self.timings = {"network": t1 - t0, "upsample": time.perf_counter() - t1}
        return Segmentation(labels=labels, names=list(self.names), model=self.model_id, confidence=conf)


class PyDNet:
    """PyDNet mobile v1: relative depth (larger = farther) at the photo's resolution."""

    def __init__(self, path: str | os.PathLike[str], model_id: str = "pydnet-mobile-v1", *,
                 flip: bool | str = "auto", clean: bool = True) -> None:
        self.net = _Lite(path)
        if PYDNET_OUTPUT not in self.net.outputs:
            raise UserError(f"{path} has no output {PYDNET_OUTPUT!r}: not the PyDNet mobile v1 file")
        self.model_id = model_id
        self.flip = flip
        self.clean = clean
        self.timings: dict[str, float] = {}

    def _run(self, small: np.ndarray) -> np.ndarray:
        x = small.astype(np.float32)[None] / 255.0
        d = self.net.run(x, PYDNET_OUTPUT, take=lambda v: v[0, :, :, 0].copy())
        return clean_pydnet(d) if self.clean else d

    def network_depth(self, rgb: np.ndarray, *, flip: bool | str | None = None) -> np.ndarray:
        """Cleaned depth at the network's 448x640 grid.

        ``flip`` "auto": average with the mirror image only for photos no wider (or taller) than
        ``LETTERBOX_ASPECT``: measured, it helps indoor 4:3 frames and hurts stretched 3.3:1 KITTI frames.
        """
        a = as_rgb_uint8(rgb)
        small = resize_rgb(a, self.net.in_w, self.net.in_h)
        d = self._run(small)
        flip = self.flip if flip is None else flip
        if flip == "auto":
            h, w = a.shape[:2]
            flip = max(w / h, h / w) <= LETTERBOX_ASPECT
        if flip:
            d = 0.5 * (d + self._run(small[:, ::-1])[:, ::-1])
        return d.astype(np.float32)

    def predict(self, rgb: np.ndarray, sky_mask: np.ndarray | None = None) -> DepthMap:
        """Depth for the photo; pixels of ``sky_mask`` (photo-sized bool) become NaN (no depth)."""
        import time

        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        t0 = time.perf_counter()
        d = self.network_depth(a)
        t1 = time.perf_counter()
        depth = resize_float(d, w, h)
        depth = np.maximum(depth, np.float32(1e-3))  # "<= 0 means no depth" must not happen by accident
        if sky_mask is not None:
            sky = np.asarray(sky_mask, dtype=bool)
            if sky.shape != (h, w):
                raise UserError(f"sky mask shape {sky.shape} does not match the photo {(h, w)}")
            depth = depth.copy()
            depth[sky] = np.nan
        self.timings = {"network": t1 - t0, "resize": time.perf_counter() - t1}
        return DepthMap(depth=depth, kind="relative", model=self.model_id,
                        extras={"network_size": [self.net.in_w, self.net.in_h],
                                "sky_masked": sky_mask is not None})


def clean_pydnet(d: np.ndarray) -> np.ndarray:
    """Remove PyDNet's fixed hot spot near (row 10, col 12) and clip the map to its 1..99th percentiles.

    The hot spot (3-10x the median, in every image) sits in the top-left corner; a 9x9 median over the
    corner block replaces it with its surroundings; the percentile clip then bounds what is left.
    """
    from scipy import ndimage

    d = np.asarray(d, dtype=np.float32).copy()
    corner = d[:40, :48]
    d[:40, :48] = ndimage.median_filter(corner, size=9, mode="nearest")
    lo, hi = np.percentile(d, (1.0, 99.0))
    return np.clip(d, lo, hi)
