"""YOLOv8n-seg (COCO 80 classes) on LiteRT: one box, class, score and mask per object.

The file's MODEL.md (docs/MODELS.md) gives the contract, followed here:

* input ``[1, 3, 640, 640]`` float32 NCHW RGB ``/255``, letterboxed: long side 640, aspect kept, the
  photo centred on grey 114 (Ultralytics' convention, including its rounding of the padding);
* outputs picked by rank: 3-D ``[1, 116, 8400]`` (per anchor: box centre x, centre y, width, height
  normalised to the 640 letterbox, 80 sigmoid class scores, 32 mask coefficients) and 4-D
  ``[1, 32, 160, 160]`` (mask prototypes);
* decoding: best class per anchor, score >= ``SCORE_THRESHOLD``, class-wise greedy NMS at IoU
  ``NMS_IOU``, at most ``MAX_DETECTIONS``; mask = coefficients @ prototypes, cropped to the box, read
  bilinearly (as the 4x upsampling does) and thresholded at logit 0 (sigmoid 0.5).

Masks are not rasterised here: each instance keeps its logits on the prototype window under its box
(``types.Instances``), evaluated later on whatever lattice the engine analyses. Everything after the
network is vectorised numpy; the only Python loops run over detections (NMS keeps, mask windows).
"""

from __future__ import annotations

import os
import time

import numpy as np

from inference_server.errors import UserError
from inference_server.inference.tflite_models import _Lite, resize_rgb
from inference_server.inference.types import Instances, as_rgb_uint8

SCORE_THRESHOLD = 0.25
NMS_IOU = 0.45
MAX_DETECTIONS = 300
MAX_CANDIDATES = 3000  # boxes entering NMS (best scores first), as Ultralytics' max_nms bounds its work
PAD_VALUE = 114
BOX_SLACK_NET_PX = 6.0  # MODEL.md: the int8 file's box edges snap to about 6 px of the 640 input
N_COEF = 32


def letterbox_geometry(h: int, w: int, size: int) -> tuple[float, int, int, int, int]:
    """(scale, new w, new h, left pad, top pad) of Ultralytics' letterbox for an h x w photo."""
    s = min(size / h, size / w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    dw, dh = (size - nw) / 2.0, (size - nh) / 2.0
    return s, nw, nh, int(round(dw - 0.1)), int(round(dh - 0.1))


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = NMS_IOU,
        max_keep: int = MAX_DETECTIONS) -> np.ndarray:
    """Indices kept by class-wise greedy non-maximum suppression, best score first.

    Boxes of different classes never suppress each other (each class is shifted far away, the usual
    trick), so one pairwise IoU matrix serves every class; the loop runs over kept boxes only.
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.intp)
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float64)
    span = float(max(b[:, 2].max(), b[:, 3].max(), 1.0)) + 1.0
    b = b + (classes[order].astype(np.float64) * 2.0 * span)[:, None]
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    ix = np.maximum(0.0, np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]))
    iy = np.maximum(0.0, np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]))
    inter = ix * iy
    with np.errstate(invalid="ignore", divide="ignore"):
        ious = inter / (area[:, None] + area[None, :] - inter)
    suppressed = np.zeros(n, bool)
    keep: list[int] = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_keep:
            break
        suppressed |= ious[i] > iou
    return order[np.asarray(keep, np.intp)]


def decode(pred: np.ndarray, protos: np.ndarray, *, h: int, w: int, size: int, model: str,
           class_names: list[str], score_threshold: float = SCORE_THRESHOLD, iou: float = NMS_IOU,
           max_detections: int = MAX_DETECTIONS) -> Instances:
    """Instances of an h x w photo from the raw outputs: ``pred`` (116, A), ``protos`` (32, ph, pw).

    Boxes go back through the letterbox to photo pixels and are clipped to the photo; a box left with
    no area (entirely in the padding) is dropped. Non-finite network values are treated as no detection.
    """
    n_cls = pred.shape[0] - 4 - N_COEF
    if n_cls <= 0 or protos.ndim != 3 or protos.shape[0] != N_COEF:
        raise UserError(f"model {model}: unexpected output shapes {pred.shape} and {protos.shape}")
    s, _, _, left, top = letterbox_geometry(h, w, size)
    cls_scores = np.nan_to_num(pred[4:4 + n_cls], nan=0.0, posinf=0.0, neginf=0.0)
    best = cls_scores.argmax(axis=0)
    conf = cls_scores[best, np.arange(cls_scores.shape[1])]
    geo = pred[:4]
    ok = (conf >= score_threshold) & np.isfinite(geo).all(axis=0) & np.isfinite(pred[4 + n_cls:]).all(axis=0)
    cand = np.flatnonzero(ok)
    if len(cand) > MAX_CANDIDATES:
        cand = cand[np.argsort(-conf[cand], kind="stable")[:MAX_CANDIDATES]]
    cx, cy, bw, bh = (geo[k, cand].astype(np.float64) * size for k in range(4))
    boxes = np.stack([(cx - bw / 2 - left) / s, (cy - bh / 2 - top) / s,
                      (cx + bw / 2 - left) / s, (cy + bh / 2 - top) / s], axis=1)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0.0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0.0, h)
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    cand, boxes = cand[has_area], boxes[has_area]
    keep = nms(boxes, conf[cand], best[cand], iou, max_detections)
    cand, boxes = cand[keep], boxes[keep]
    coef = pred[4 + n_cls:, cand].T.astype(np.float32)  # (n, 32)
    ph, pw = protos.shape[1:]
    stride = size / pw / s  # photo pixels per prototype knot
    offset = ((left - 0.5 * size / pw) / s, (top - 0.5 * size / ph) / s)
    logits: list[np.ndarray] = []
    origin = np.zeros((len(cand), 2), np.int32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):  # one small matrix product per detection
        gx0 = int(np.clip(np.floor((x0 + offset[0]) / stride) - 1, 0, pw - 1))
        gy0 = int(np.clip(np.floor((y0 + offset[1]) / stride) - 1, 0, ph - 1))
        gx1 = int(np.clip(np.ceil((x1 + offset[0]) / stride) + 2, gx0 + 1, pw))
        gy1 = int(np.clip(np.ceil((y1 + offset[1]) / stride) + 2, gy0 + 1, ph))
        win = protos[:, gy0:gy1, gx0:gx1]
        logits.append(np.tensordot(coef[i], win, axes=1).astype(np.float32))
        origin[i] = (gx0, gy0)
    return Instances(boxes=boxes.astype(np.float32), class_ids=best[cand].astype(np.int32),
                     scores=conf[cand].astype(np.float32), class_names=list(class_names), model=model,
                     width=w, height=h, mask_logits=logits, mask_origin=origin, mask_stride=float(stride),
                     mask_offset=(float(offset[0]), float(offset[1])), box_slack=BOX_SLACK_NET_PX / s)


class YoloSeg:
    """The YOLOv8n-seg TFLite file; ``predict(rgb)`` -> ``Instances`` in the photo's pixels."""

    def __init__(self, path: str | os.PathLike[str], model_id: str, class_names: list[str]) -> None:
        self.model_id = model_id
        try:
            self.net = _Lite(path)
        except UserError as exc:
            raise UserError(f"model {model_id}: {exc}") from None
        shape = [int(v) for v in self.net.inp["shape"]]
        outs = list(self.net.outputs.values())
        ranks = sorted(len(d["shape"]) for d in outs)
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or ranks != [3, 4]:
            raise UserError(f"model {model_id}: {path} is not a YOLOv8-seg file (input {shape}, "
                            f"outputs of rank {ranks})")
        self.size = shape[2]
        pred_shape = next(d["shape"] for d in outs if len(d["shape"]) == 3)
        if int(pred_shape[1]) - 4 - N_COEF != len(class_names):
            raise UserError(f"model {model_id}: {path} predicts {int(pred_shape[1]) - 4 - N_COEF} classes, "
                            f"its label set has {len(class_names)}")
        self.pred_out = next(d["name"] for d in outs if len(d["shape"]) == 3)
        self.proto_out = next(d["name"] for d in outs if len(d["shape"]) == 4)
        self.class_names = list(class_names)
        self.timings: dict[str, float] = {}

    def network_input(self, rgb: np.ndarray) -> np.ndarray:
        """The (1, 3, size, size) float32 letterboxed input of a photo."""
        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        _, nw, nh, left, top = letterbox_geometry(h, w, self.size)
        x = np.full((self.size, self.size, 3), PAD_VALUE, np.uint8)
        x[top:top + nh, left:left + nw] = resize_rgb(np.ascontiguousarray(a), nw, nh)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two outputs for a photo: predictions (116, 8400) and prototypes (32, 160, 160)."""
        x = self.network_input(rgb)
        with self.net.lock:
            it = self.net.it
            it.set_tensor(self.net.inp["index"], x)
            it.invoke()
            pred = it.get_tensor(self.net.outputs[self.pred_out]["index"])[0].copy()
            protos = it.get_tensor(self.net.outputs[self.proto_out]["index"])[0].copy()
        return pred, protos

    def predict(self, rgb: np.ndarray, *, score_threshold: float = SCORE_THRESHOLD) -> Instances:
        a = as_rgb_uint8(rgb)
        h, w = a.shape[:2]
        t0 = time.perf_counter()
        pred, protos = self.raw(a)
        t1 = time.perf_counter()
        out = decode(pred, protos, h=h, w=w, size=self.size, model=self.model_id, class_names=self.class_names,
                     score_threshold=score_threshold)
        self.timings = {"network": t1 - t0, "decode": time.perf_counter() - t1}
        return out
